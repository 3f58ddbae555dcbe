"""More torch.nn modules over registered ops (nn.functional's composites): activations
(PReLU, SELU, CELU, GLU, Softmin, Softmax2d, Threshold, Hardshrink, Softshrink,
Tanhshrink), padding (ZeroPad / ConstantPad / ReflectionPad / ReplicationPad, 1d and 2d),
Upsample, InstanceNorm1d/2d, RMSNorm, Dropout1d/2d and margin / likelihood losses."""

from __future__ import annotations

from ... import creation as C
from .. import functional as F
from .. import init
from ..parameter import Parameter
from .loss import _Loss
from .module import Module

# ---- activations ----------------------------------------------------------------------------


class PReLU(Module):
    """max(0, x) + a * min(0, x) with a learned slope a (one, or one per channel)."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters = num_parameters
        self.weight = Parameter(C.full((num_parameters,), init, dtype=dtype))

    def forward(self, input):
        return F.prelu(input, self.weight)


def _set_fields(module, fields, args, kwargs):
    """module.<field> = the positional or keyword argument for it, else its default."""
    values = dict(zip([f for f, _ in fields], args))
    values.update(kwargs)
    for f, default in fields:
        setattr(module, f, values.get(f, default))


def _simple(name, fn_name, doc, *fields):
    """A module class whose forward is F.<fn_name>(input, *its fields)."""

    def __init__(self, *args, **kwargs):
        Module.__init__(self)
        _set_fields(self, fields, args, kwargs)

    def forward(self, input):
        return getattr(F, fn_name)(input, *[getattr(self, f) for f, _ in fields])

    def extra_repr(self):
        return ", ".join(f"{f}={getattr(self, f)}" for f, _ in fields)

    return type(name, (Module,), {"__init__": __init__, "forward": forward, "extra_repr": extra_repr, "__doc__": doc})


SELU = _simple("SELU", "selu", "scale * elu(x, alpha) with torch's constants.", ("inplace", False))
CELU = _simple("CELU", "celu", "max(0, x) + min(0, alpha * (exp(x / alpha) - 1)).", ("alpha", 1.0),
               ("inplace", False))
GLU = _simple("GLU", "glu", "a * sigmoid(b) for the halves a, b of dim.", ("dim", -1))
Softmin = _simple("Softmin", "softmin", "softmax(-x) over dim.", ("dim", None))
Threshold = _simple("Threshold", "threshold", "x where x > threshold, else value.", ("threshold", 0.0),
                    ("value", 0.0), ("inplace", False))
Hardshrink = _simple("Hardshrink", "hardshrink", "x where |x| > lambd, else 0.", ("lambd", 0.5))
Softshrink = _simple("Softshrink", "softshrink", "x - lambd * sign(x) where |x| > lambd, else 0.", ("lambd", 0.5))
Tanhshrink = _simple("Tanhshrink", "tanhshrink", "x - tanh(x).")


class Softmax2d(Module):
    """softmax over the channels of (N, C, H, W) or (C, H, W)."""

    def forward(self, input):
        if input.ndim not in (3, 4):
            raise ValueError(f"Softmax2d: expected input to be 3D or 4D, got {input.ndim}D instead")
        return F.softmax(input, -3)


# ---- padding and resizing ------------------------------------------------------------------------


class _Pad(Module):
    _mode, _dims = "constant", 2

    def __init__(self, padding, value: float = 0.0):
        super().__init__()
        self.padding = (padding,) * (2 * self._dims) if isinstance(padding, int) else tuple(padding)
        self.value = value

    def forward(self, input):
        if self._mode == "constant":
            return F.pad(input, self.padding, "constant", self.value)
        return F.pad(input, self.padding, self._mode)

    def extra_repr(self):
        return f"{self.padding}" + (f", value={self.value}" if self._mode == "constant" and self.value else "")


def _pad_class(name, mode, dims):
    return type(name, (_Pad,), {"_mode": mode, "_dims": dims, "__doc__": f"{mode} padding of the last {dims} dim(s)."})


ConstantPad1d, ConstantPad2d = _pad_class("ConstantPad1d", "constant", 1), _pad_class("ConstantPad2d", "constant", 2)
ReflectionPad1d, ReflectionPad2d = _pad_class("ReflectionPad1d", "reflect", 1), _pad_class("ReflectionPad2d", "reflect", 2)
ReplicationPad1d = _pad_class("ReplicationPad1d", "replicate", 1)
ReplicationPad2d = _pad_class("ReplicationPad2d", "replicate", 2)


class ZeroPad1d(ConstantPad1d):
    def __init__(self, padding):
        super().__init__(padding, 0.0)


class ZeroPad2d(ConstantPad2d):
    def __init__(self, padding):
        super().__init__(padding, 0.0)


class Upsample(Module):
    """F.interpolate as a module (size or scale_factor; nearest, bilinear, ...)."""

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        self.size, self.scale_factor, self.mode = size, scale_factor, mode
        self.align_corners, self.recompute_scale_factor = align_corners, recompute_scale_factor

    def forward(self, input):
        return F.interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                             recompute_scale_factor=self.recompute_scale_factor)


class UpsamplingNearest2d(Upsample):
    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, "nearest")


class UpsamplingBilinear2d(Upsample):
    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, "bilinear", align_corners=True)


# ---- normalization ---------------------------------------------------------------------------------


class _InstanceNorm(Module):
    _dims = 2

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = False,
                 track_running_stats: bool = False, device=None, dtype=None):
        super().__init__()
        if track_running_stats:
            raise NotImplementedError(f"{type(self).__name__}: track_running_stats=True is not supported")
        self.num_features, self.eps, self.momentum, self.affine = num_features, eps, momentum, affine
        self.track_running_stats = False
        if affine:
            self.weight = Parameter(C.ones(num_features, dtype=dtype))
            self.bias = Parameter(C.zeros(num_features, dtype=dtype))
        else:
            self.weight = self.bias = None

    def forward(self, input):
        return F.instance_norm(input, weight=self.weight, bias=self.bias, eps=self.eps)


class InstanceNorm1d(_InstanceNorm):
    """Normalizes each (sample, channel) of (N, C, L) over L."""

    _dims = 1


class InstanceNorm2d(_InstanceNorm):
    """Normalizes each (sample, channel) of (N, C, H, W) over H, W."""


class RMSNorm(Module):
    """x / sqrt(mean(x^2) + eps) over the last len(normalized_shape) dims, times weight."""

    def __init__(self, normalized_shape, eps=None, elementwise_affine: bool = True, device=None, dtype=None):
        super().__init__()
        self.normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        self.weight = Parameter(C.ones(*self.normalized_shape, dtype=dtype)) if elementwise_affine else None

    def forward(self, input):
        return F.rms_norm(input, self.normalized_shape, self.weight, self.eps)

    def reset_parameters(self):
        if self.weight is not None:
            init.ones_(self.weight)


# ---- dropout ---------------------------------------------------------------------------------------


class _ChannelDropout(Module):
    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if p < 0 or p > 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, input):
        return self._fn(input, self.p, self.training)


class Dropout1d(_ChannelDropout):
    """Zeroes whole channels of (N, C, L) with probability p (training only)."""

    _fn = staticmethod(F.dropout1d)


class Dropout2d(_ChannelDropout):
    """Zeroes whole channels of (N, C, H, W) with probability p (training only)."""

    _fn = staticmethod(F.dropout2d)


# ---- losses ----------------------------------------------------------------------------------------


def _loss(name, fn_name, doc, *fields):
    def __init__(self, *args, size_average=None, reduce=None, reduction: str = "mean", **kwargs):
        _Loss.__init__(self, size_average, reduce, reduction)
        _set_fields(self, fields, args, kwargs)

    def forward(self, *inputs):
        return getattr(F, fn_name)(*inputs, **{f: getattr(self, f) for f, _ in fields}, reduction=self.reduction)

    return type(name, (_Loss,), {"__init__": __init__, "forward": forward, "__doc__": doc})


MarginRankingLoss = _loss("MarginRankingLoss", "margin_ranking_loss", "max(0, -y (x1 - x2) + margin).",
                          ("margin", 0.0))
HingeEmbeddingLoss = _loss("HingeEmbeddingLoss", "hinge_embedding_loss",
                           "x where y = 1, max(0, margin - x) where y = -1.", ("margin", 1.0))
SoftMarginLoss = _loss("SoftMarginLoss", "soft_margin_loss", "log(1 + exp(-y x)), averaged.")
CosineEmbeddingLoss = _loss("CosineEmbeddingLoss", "cosine_embedding_loss",
                            "1 - cos(x1, x2) where y = 1, max(0, cos(x1, x2) - margin) where y = -1.",
                            ("margin", 0.0))
TripletMarginLoss = _loss("TripletMarginLoss", "triplet_margin_loss",
                          "max(d(a, p) - d(a, n) + margin, 0) with p-norm distances.", ("margin", 1.0),
                          ("p", 2.0), ("eps", 1e-6), ("swap", False))
MultiLabelSoftMarginLoss = _loss("MultiLabelSoftMarginLoss", "multilabel_soft_margin_loss",
                                 "the mean over classes of the binary cross-entropy with logits.",
                                 ("weight", None))
GaussianNLLLoss = _loss("GaussianNLLLoss", "gaussian_nll_loss", "0.5 (log(var) + (input - target)^2 / var).",
                        ("full", False), ("eps", 1e-6))
PoissonNLLLoss = _loss("PoissonNLLLoss", "poisson_nll_loss",
                       "exp(input) - target * input (log_input) or input - target * log(input + eps).",
                       ("log_input", True), ("full", False), ("eps", 1e-8))
