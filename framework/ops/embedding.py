"""Index-based NN ops with torch.nn.functional names: embedding (with a registered
embedding_backward that skips padding_idx) and one_hot. Bad indices raise IndexError /
RuntimeError from the kernel's range check, never a crash. Kernels: csrc/kernels/embedding.cpp."""

from __future__ import annotations

import numpy as np

from .. import dtypes as D
from ._common import arg
from .dispatch import dispatch
from .registry import Sample, defop


def _as_index(t, op):
    if t.dtype is D.int32:
        from .elementwise import to

        return to(t, D.int64)
    if t.dtype is not D.int64:
        raise RuntimeError(
            f"{op}: Expected tensor for argument #1 'indices' to have one of the following scalar "
            f"types: Long, Int; but got {t.dtype.name} instead"
        )
    return t.contiguous()


@defop(
    name="embedding_backward",
    inputs=("grad_output", "indices"),
    attrs=("num_weights", "padding_idx", "scale_grad_by_freq"),
    infer=lambda g, idx, n, pad, freq: [((n, g.shape[-1]), g.dtype)],
    promote=None,
    differentiable=False,
    tags=("backward",),
    samples=lambda dt: [
        Sample((arg((2, 3, 4), dt), np.array([[0, 2, 2], [1, 0, 3]]), 5, None, False), grad=False)
    ],
)
def embedding_backward(
    grad_output, indices, num_weights, padding_idx=None, scale_grad_by_freq=False
):
    """Gradient of embedding w.r.t. its weight: rows of grad_output summed per index."""
    return dispatch(
        embedding_backward.opdef,
        [grad_output.contiguous(), _as_index(indices, "embedding_backward")],
        (int(num_weights), padding_idx, bool(scale_grad_by_freq)),
    )


def _embedding_grad(c, g):
    idx, w = c.inputs[0], c.inputs[1]
    pad, freq = c.attrs
    return (None, embedding_backward(g, idx, w.shape[0], pad, freq))


@defop(
    name="embedding_renorm",
    inputs=("weight", "indices"),
    attrs=("max_norm", "norm_type"),
    infer=lambda w, idx, max_norm, p: [(tuple(w.shape), w.dtype)],
    promote=None,
    differentiable=False,
    samples=lambda dt: [Sample((arg((5, 3), dt), np.array([0, 2, 2]), 1.0, 2.0), grad=False)],
)
def embedding_renorm(weight, indices, max_norm, norm_type=2.0):
    """weight with the rows named by indices scaled down to p-norm max_norm (a copy; the
    in-place form is embedding_renorm_)."""
    return dispatch(
        embedding_renorm.opdef,
        [weight.contiguous(), _as_index(indices, "embedding_renorm")],
        (float(max_norm), float(norm_type)),
    )


def embedding_renorm_(weight, indices, max_norm, norm_type=2.0):
    """torch.embedding_renorm_: renormalizes the indexed rows of weight in place (no grad)."""
    from .. import autograd as AG
    from .dispatch import _copy_into

    with AG.no_grad():
        _copy_into(weight, embedding_renorm(weight, indices, max_norm, norm_type))
    return weight


def _embedding_samples(dt):
    idx = np.array([[0, 2, 4], [4, 3, 1]], dtype=np.int64)
    return [
        Sample((idx, arg((5, 3), dt))),
        Sample((idx, arg((5, 3), dt)), {"padding_idx": 4}, note="padding_idx"),
        Sample((idx, arg((5, 3), dt)), {"padding_idx": -1}, note="negative padding_idx"),
        Sample(
            (np.array([1, 1, 2, 1]), arg((3, 2), dt)),
            {"scale_grad_by_freq": True},
            grad=False,
            note="scale by freq (not a true gradient: checked vs torch in test_nn_ops)",
        ),
        Sample((np.array(2), arg((3, 4), dt)), note="0-d index"),
        Sample((np.zeros((0,), dtype=np.int64), arg((3, 4), dt)), note="empty"),
    ]


@defop(
    name="embedding",
    inputs=("indices", "weight"),
    attrs=("padding_idx", "scale_grad_by_freq"),
    infer=lambda idx, w, pad, freq: [(tuple(idx.shape) + (w.shape[1],), w.dtype)],
    grad=_embedding_grad,
    promote=None,
    dispatch_input=1,
    torch_ref="torch.nn.functional.embedding",
    samples=_embedding_samples,
)
def embedding(
    input,
    weight,
    padding_idx=None,
    max_norm=None,
    norm_type=2.0,
    scale_grad_by_freq=False,
    sparse=False,
):
    """Rows of `weight` picked by the integer `input`; the padding_idx row gets no gradient."""
    if weight.ndim != 2:
        raise RuntimeError(f"embedding: 'weight' must be 2-D, got shape {list(weight.shape)}")
    if sparse:
        raise NotImplementedError("embedding: sparse gradients are not supported")
    if padding_idx is not None:
        n = weight.shape[0]
        if not -n <= padding_idx < n:
            raise AssertionError("Padding_idx must be within num_embeddings")
        padding_idx = int(padding_idx) % n
    idx = _as_index(input, "embedding")
    if max_norm is not None:  # like torch: renormalize the looked-up rows of weight in place first
        embedding_renorm_(weight, idx, max_norm, norm_type)
    return dispatch(
        embedding.opdef, [idx, weight.contiguous()], (padding_idx, bool(scale_grad_by_freq))
    )


@defop(
    name="one_hot",
    inputs=("x",),
    attrs=("num_classes",),
    infer=lambda x, n: [(tuple(x.shape) + (n,), D.int64)],
    promote=None,
    differentiable=False,
    dtypes=(D.int64,),
    torch_ref="torch.nn.functional.one_hot",
    samples=lambda dt: [
        Sample((np.array([0, 3, 1, 3]), 5)),
        Sample((np.array([[2, 0], [1, 2]]),), note="infer"),
        Sample((np.array(1), 3), note="0-d"),
        Sample((np.zeros((0, 2), dtype=np.int64), 3), note="empty"),
    ],
)
def one_hot(tensor, num_classes=-1):
    """int64 tensor (..., num_classes) with a 1 at each index (num_classes=-1 infers max+1)."""
    if tensor.dtype is not D.int64:
        raise RuntimeError(
            f"one_hot is only applicable to index tensor of type LongTensor, got {tensor.dtype.name}"
        )
    if num_classes == -1:
        if tensor.numel() == 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        num_classes = int(tensor.amax().item()) + 1
    if num_classes < 0:
        raise RuntimeError(f"one_hot: num_classes should be -1 or non-negative, got {num_classes}")
    return dispatch(one_hot.opdef, [tensor.contiguous()], (int(num_classes),))


__all__ = ["embedding", "embedding_renorm_", "one_hot"]
