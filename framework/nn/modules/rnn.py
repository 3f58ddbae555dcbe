"""RNN, LSTM and GRU (multi-layer, batch_first, bidirectional, inter-layer dropout) with torch's
parameter names (weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, ..._reverse) and init,
and the single-step RNNCell, LSTMCell and GRUCell (weight_ih, weight_hh, bias_ih, bias_hh).
Composed from registered ops: the input projection for all steps is one linear, then each step
is linear + sigmoid/tanh + mul/add; outputs are stacked."""

from __future__ import annotations

import math

from ... import creation as C
from ...ops import elementwise as E
from ...ops import shape as S
from .. import functional as F
from .. import init
from ..parameter import Parameter
from ._util import chunk, stack
from .module import Module


class RNNBase(Module):
    _gates = 1
    _mode = "RNN"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
    ):
        super().__init__()
        if proj_size:
            raise NotImplementedError("proj_size is not supported")
        if not 0 <= dropout <= 1:
            raise ValueError("dropout should be a number in range [0, 1]")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        dirs = 2 if bidirectional else 1
        g = self._gates * hidden_size
        self._flat_weights_names = []
        for layer in range(num_layers):
            for d in range(dirs):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                in_size = input_size if layer == 0 else hidden_size * dirs
                names = [("weight_ih" + sfx, (g, in_size)), ("weight_hh" + sfx, (g, hidden_size))]
                if bias:
                    names += [("bias_ih" + sfx, (g,)), ("bias_hh" + sfx, (g,))]
                for name, shape in names:
                    setattr(self, name, Parameter(C.empty(shape, dtype=dtype)))
                    self._flat_weights_names.append(name)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for w in self.parameters():
            init.uniform_(w, -stdv, stdv)

    @property
    def all_weights(self):
        return [getattr(self, n) for n in self._flat_weights_names]

    def _weights(self, layer: int, d: int):
        sfx = f"_l{layer}" + ("_reverse" if d else "")
        b_ih = getattr(self, "bias_ih" + sfx) if self.bias else None
        b_hh = getattr(self, "bias_hh" + sfx) if self.bias else None
        return getattr(self, "weight_ih" + sfx), getattr(self, "weight_hh" + sfx), b_ih, b_hh

    def _cell(self, gi, h, c, w_hh, b_hh):
        raise NotImplementedError

    def _run(self, x, h0, c0):
        """x: (L, N, in); h0/c0: (layers*dirs, N, H). Returns output, [h_n], [c_n]."""
        dirs = 2 if self.bidirectional else 1
        hs, cs = [], []
        steps = x.shape[0]
        for layer in range(self.num_layers):
            outs = []
            for d in range(dirs):
                w_ih, w_hh, b_ih, b_hh = self._weights(layer, d)
                idx = layer * dirs + d
                h = h0[idx]
                c = c0[idx] if c0 is not None else None
                gi_all = F.linear(x, w_ih, b_ih)  # (L, N, gates*H) for every step at once
                seq = [None] * steps
                order = range(steps - 1, -1, -1) if d else range(steps)
                for t in order:
                    h, c = self._cell(gi_all[t], h, c, w_hh, b_hh)
                    seq[t] = h
                outs.append(stack(seq, 0))
                hs.append(h)
                cs.append(c)
            x = outs[0] if dirs == 1 else _cat_last(outs)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        return x, hs, cs

    def forward(self, input, hx=None):
        batched = input.ndim == 3
        if input.ndim not in (2, 3):
            raise ValueError(
                f"{self._mode}: Expected input to be 2D or 3D, got {input.ndim}D instead"
            )
        x = input if batched else S.unsqueeze(input, 1)
        if self.batch_first and batched:
            x = S.transpose(x, 0, 1)
        if x.shape[-1] != self.input_size:
            raise RuntimeError(
                f"input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                f"got {x.shape[-1]}"
            )
        n = x.shape[1]
        dirs = 2 if self.bidirectional else 1
        h0, c0 = self._initial_state(hx, n, dirs, batched, x.dtype)
        out, hs, cs = self._run(x, h0, c0)
        if self.batch_first and batched:
            out = S.transpose(out, 0, 1)
        h_n = stack(hs, 0)
        c_n = stack(cs, 0) if self._mode == "LSTM" else None
        if not batched:
            out = S.squeeze(out, 1)
            h_n = S.squeeze(h_n, 1)
            c_n = S.squeeze(c_n, 1) if c_n is not None else None
        return out, ((h_n, c_n) if self._mode == "LSTM" else h_n)

    def _initial_state(self, hx, n, dirs, batched, dtype):
        shape = (self.num_layers * dirs, n, self.hidden_size)
        if hx is None:
            h0 = C.zeros(shape, dtype=dtype)
            return h0, (C.zeros(shape, dtype=dtype) if self._mode == "LSTM" else None)
        if self._mode == "LSTM":
            h0, c0 = hx
        else:
            h0, c0 = hx, None
        if not batched:
            h0 = S.unsqueeze(h0, 1)
            c0 = S.unsqueeze(c0, 1) if c0 is not None else None
        for t, name in ((h0, "hidden"), (c0, "cell")):
            if t is not None and tuple(t.shape) != shape:
                raise RuntimeError(f"Expected {name} size {shape}, got {tuple(t.shape)}")
        return h0, c0

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


def _cat_last(parts):
    fn = F._op("cat")
    if fn is not None:
        return fn(parts, -1)
    a, b = parts
    h = a.shape[-1]
    out = C.zeros(tuple(a.shape[:-1]) + (2 * h,), dtype=a.dtype)
    out = S.slice_scatter(out, a, -1, 0, h)
    return S.slice_scatter(out, b, -1, h, 2 * h)


class LSTM(RNNBase):
    """Long short-term memory; returns output, (h_n, c_n). Gate order i, f, g, o."""

    _gates = 4
    _mode = "LSTM"

    def _cell(self, gi, h, c, w_hh, b_hh):
        gates = gi + F.linear(h, w_hh, b_hh)
        i, f, g, o = chunk(gates, 4, -1)
        i, f, g, o = E.sigmoid(i), E.sigmoid(f), E.tanh(g), E.sigmoid(o)
        c = f * c + i * g
        return o * E.tanh(c), c


class GRU(RNNBase):
    """Gated recurrent unit; returns output, h_n. Gate order r, z, n."""

    _gates = 3
    _mode = "GRU"

    def _cell(self, gi, h, c, w_hh, b_hh):
        gh = F.linear(h, w_hh, b_hh)
        i_r, i_z, i_n = chunk(gi, 3, -1)
        h_r, h_z, h_n = chunk(gh, 3, -1)
        r = E.sigmoid(i_r + h_r)
        z = E.sigmoid(i_z + h_z)
        n = E.tanh(i_n + r * h_n)
        return (1 - z) * n + z * h, None


class RNN(RNNBase):
    """Elman RNN, h' = tanh (or relu)(W_ih x + b_ih + W_hh h + b_hh); returns output, h_n."""

    _gates = 1
    _mode = "RNN"

    def __init__(self, input_size, hidden_size, num_layers: int = 1, nonlinearity: str = "tanh", *args, **kwargs):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, *args, **kwargs)

    def _cell(self, gi, h, c, w_hh, b_hh):
        pre = gi + F.linear(h, w_hh, b_hh)
        return (E.tanh(pre) if self.nonlinearity == "tanh" else E.relu(pre)), None


class _CellBase(Module):
    """One step of an RNN layer: parameters weight_ih, weight_hh, bias_ih, bias_hh."""

    _layer = RNNBase

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        g = self._layer._gates * hidden_size
        self.weight_ih = Parameter(C.empty((g, input_size), dtype=dtype))
        self.weight_hh = Parameter(C.empty((g, hidden_size), dtype=dtype))
        if bias:
            self.bias_ih = Parameter(C.empty((g,), dtype=dtype))
            self.bias_hh = Parameter(C.empty((g,), dtype=dtype))
        else:
            self.bias_ih = self.bias_hh = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for w in self.parameters():
            init.uniform_(w, -stdv, stdv)

    def _step(self, input, h, c):
        if input.ndim not in (1, 2):
            raise ValueError(f"{type(self).__name__}: Expected input to be 1D or 2D, got {input.ndim}D instead")
        batched = input.ndim == 2
        x = input if batched else S.unsqueeze(input, 0)
        zeros = C.zeros((x.shape[0], self.hidden_size), dtype=x.dtype)
        h = zeros if h is None else (h if batched else S.unsqueeze(h, 0))
        if self._layer is LSTM:
            c = zeros if c is None else (c if batched else S.unsqueeze(c, 0))
        gi = F.linear(x, self.weight_ih, self.bias_ih)
        h, c = self._layer._cell(self, gi, h, c, self.weight_hh, self.bias_hh)
        if not batched:
            h = S.squeeze(h, 0)
            c = S.squeeze(c, 0) if c is not None else None
        return h, c

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


class RNNCell(_CellBase):
    """h' = tanh (or relu)(W_ih x + b_ih + W_hh h + b_hh)."""

    _layer = RNN

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity: {nonlinearity}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def forward(self, input, hx=None):
        return self._step(input, hx, None)[0]


class LSTMCell(_CellBase):
    """One LSTM step; returns (h', c'). Gate order i, f, g, o."""

    _layer = LSTM

    def forward(self, input, hx=None):
        h, c = (None, None) if hx is None else hx
        return self._step(input, h, c)


class GRUCell(_CellBase):
    """One GRU step; returns h'. Gate order r, z, n."""

    _layer = GRU

    def forward(self, input, hx=None):
        return self._step(input, hx, None)[0]
