"""MultiheadAttention, TransformerEncoderLayer, TransformerEncoder, TransformerDecoderLayer,
TransformerDecoder with torch's parameters (in_proj_weight is the stacked q/k/v projection,
3E x E), masks (bool True = masked out, or float added) and batch_first handling."""

from __future__ import annotations

import copy
import math

from ... import autograd as AG
from ... import creation as C
from ... import dtypes as D
from ...ops import elementwise as E
from ...ops import linalg as L
from ...ops import reduce as R
from ...ops import shape as S
from ...ops.fused import linear_act
from .. import functional as F
from .. import init
from ..parameter import Parameter
from .container import ModuleList
from .linear import Linear
from .misc import Dropout
from .module import Module
from .normalization import LayerNorm


class NonDynamicallyQuantizableLinear(Linear):
    """A Linear (torch uses this name for MultiheadAttention.out_proj)."""


def _float_mask(mask, dtype):
    """A bool mask (True = masked) becomes an additive float mask of 0 / -inf."""
    if mask is None:
        return None
    if mask.dtype is D.bool_:
        return E.where(mask, float("-inf"), 0.0).to(dtype)
    return mask.to(dtype)


class MultiheadAttention(Module):
    """Multi-head attention (torch.nn.MultiheadAttention)."""

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim=None,
        vdim=None,
        batch_first: bool = False,
        device=None,
        dtype=None,
    ):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(
                f"embed_dim and num_heads must be greater than 0, got embed_dim={embed_dim} "
                f"and num_heads={num_heads} instead"
            )
        if add_bias_kv or add_zero_attn:
            raise NotImplementedError("add_bias_kv / add_zero_attn are not supported")
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        if self.head_dim * num_heads != embed_dim:
            raise AssertionError("embed_dim must be divisible by num_heads")
        if not self._qkv_same_embed_dim:
            self.q_proj_weight = Parameter(C.empty(embed_dim, embed_dim, dtype=dtype))
            self.k_proj_weight = Parameter(C.empty(embed_dim, self.kdim, dtype=dtype))
            self.v_proj_weight = Parameter(C.empty(embed_dim, self.vdim, dtype=dtype))
            self.register_parameter("in_proj_weight", None)
        else:
            self.in_proj_weight = Parameter(C.empty(3 * embed_dim, embed_dim, dtype=dtype))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(C.empty(3 * embed_dim, dtype=dtype))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(
            embed_dim, embed_dim, bias=bias, dtype=dtype
        )
        self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)

    def _projections(self):
        e = self.embed_dim
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            ws = [S.narrow(w, 0, i * e, e) for i in range(3)]
        else:
            ws = [self.q_proj_weight, self.k_proj_weight, self.v_proj_weight]
        b = self.in_proj_bias
        bs = [S.narrow(b, 0, i * e, e) for i in range(3)] if b is not None else [None] * 3
        return ws, bs

    def _merged_mask(self, attn_mask, key_padding_mask, bsz, tgt_len, src_len, dtype):
        """attn_mask and key_padding_mask as one additive float mask broadcastable to
        (N, H, L, S), or None."""
        h = self.num_heads
        mask = _float_mask(attn_mask, dtype)
        if mask is not None:
            if mask.ndim == 2:
                if tuple(mask.shape) != (tgt_len, src_len):
                    raise RuntimeError(
                        f"The shape of the 2D attn_mask is {tuple(mask.shape)}, but should be "
                        f"{(tgt_len, src_len)}."
                    )
            elif mask.ndim == 3:
                if tuple(mask.shape) != (bsz * h, tgt_len, src_len):
                    raise RuntimeError(
                        f"The shape of the 3D attn_mask is {tuple(mask.shape)}, but should be "
                        f"{(bsz * h, tgt_len, src_len)}."
                    )
                mask = S.reshape(mask, (bsz, h, tgt_len, src_len))
            else:
                raise RuntimeError(f"attn_mask's dimension {mask.ndim} is not supported")
        kpm = _float_mask(key_padding_mask, dtype)
        if kpm is not None:
            if tuple(kpm.shape) != (bsz, src_len):
                raise RuntimeError(
                    f"expecting key_padding_mask shape of {(bsz, src_len)}, but got "
                    f"{tuple(kpm.shape)}"
                )
            kpm = S.reshape(kpm, (bsz, 1, 1, src_len))
            mask = kpm if mask is None else mask + kpm
        return mask

    def forward(
        self,
        query,
        key,
        value,
        key_padding_mask=None,
        need_weights: bool = True,
        attn_mask=None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ):
        """Returns (attn_output, attn_weights or None)."""
        batched = query.ndim == 3
        self_attention = query is key and key is value and self._qkv_same_embed_dim
        if not batched:
            query, key, value = (S.unsqueeze(t, 1) for t in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = S.unsqueeze(key_padding_mask, 0)
        # layout of the inputs: (N, L, E) when batch_first (and batched), else (L, N, E)
        seq_first = not (batched and self.batch_first)
        ld, bd = (0, 1) if seq_first else (1, 0)
        qshape = query.shape
        tgt_len, bsz, e = qshape[ld], qshape[bd], qshape[2]
        src_len = tgt_len if key is query else key.shape[ld]
        h, hd = self.num_heads, self.head_dim
        if e != self.embed_dim:
            raise AssertionError(
                f"was expecting embedding dimension of {self.embed_dim}, but got {e}"
            )
        if self_attention:
            # one (.., 3E) projection of x in its own layout, then q, k, v as views
            qkv = F.linear(query, self.in_proj_weight, self.in_proj_bias)
            order = (2, 1, 3, 0, 4) if seq_first else (2, 0, 3, 1, 4)
            # one copy into (3, N, H, L, hd): q, k, v are then contiguous views (three
            # separate copies for the attention kernel cost 3x the dispatch)
            qkv = S.contiguous(S.permute(S.reshape(qkv, tuple(qshape[:2]) + (3, h, hd)), order))
            q, k, v = S.select(qkv, 0, 0), S.select(qkv, 0, 1), S.select(qkv, 0, 2)
        else:
            (wq, wk, wv), (bq, bk, bv) = self._projections()

            def heads(t, w, b, n):  # input layout -> (N, H, n, hd)
                t = F.linear(t, w, b)
                shape = (n, bsz, h, hd) if seq_first else (bsz, n, h, hd)
                return S.permute(S.reshape(t, shape), (1, 2, 0, 3) if seq_first else (0, 2, 1, 3))

            q, k, v = heads(query, wq, bq, tgt_len), heads(key, wk, bk, src_len), heads(value, wv, bv, src_len)
        if is_causal and attn_mask is None:
            attn_mask = E.lt(S.unsqueeze(C.arange(tgt_len), 1), S.unsqueeze(C.arange(src_len), 0))
        mask = self._merged_mask(attn_mask, key_padding_mask, bsz, tgt_len, src_len, q.dtype)
        p = self.dropout if self.training else 0.0
        if not need_weights:
            # the fused attention op (softmax(q k^T / sqrt(hd) + mask) v in one kernel when registered)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
            attn = None
        else:
            scores = L.matmul(q, S.transpose(k, -2, -1)) * (1.0 / math.sqrt(hd))
            if mask is not None:
                scores = scores + mask
            attn = F.softmax(scores, -1)
            weights_for_out = F.dropout(attn, p, True) if p > 0.0 else attn
            out = L.matmul(weights_for_out, v)  # (N, H, L, hd)
        if seq_first:
            out = S.reshape(S.permute(out, (2, 0, 1, 3)), (tgt_len, bsz, e))
        else:
            out = S.reshape(S.permute(out, (0, 2, 1, 3)), (bsz, tgt_len, e))
        out = self.out_proj(out)
        if not batched:
            out = S.squeeze(out, 1)
        weights = None
        if attn is not None:
            weights = R.mean(attn, 1) if average_attn_weights else attn
            if not batched:
                weights = S.squeeze(weights, 0)
        return out, weights


def _needs_grad(x, module) -> bool:
    """Whether autograd would record a call on x with module's parameters."""
    if not AG.is_grad_enabled():
        return False
    return bool(getattr(x, "requires_grad", False)) or any(p.requires_grad for p in module.parameters())


def _get_activation(activation):
    if callable(activation):
        return activation
    if activation == "relu":
        return F.relu
    if activation == "gelu":
        return F.gelu
    raise RuntimeError(f"activation should be relu/gelu, not {activation}")


# Activations the feed-forward block applies in linear_act's store at inference.
_FUSED_ACTS = {F.relu: "relu", F.gelu: "gelu"}


class TransformerEncoderLayer(Module):
    """Self-attention + feed-forward block (post-norm by default, norm_first for pre-norm)."""

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation="relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device=None,
        dtype=None,
    ):
        super().__init__()
        self.self_attn = MultiheadAttention(
            d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, dtype=dtype
        )
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = _get_activation(activation)

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal=False):
        x = self.self_attn(
            x,
            x,
            x,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            need_weights=False,
            is_causal=is_causal,
        )[0]
        return self.dropout1(x)

    def _ff_block(self, x):
        l1 = self.linear1
        act = _FUSED_ACTS.get(self.activation)
        if act is not None and not l1._forward_hooks and not l1._forward_pre_hooks and not _needs_grad(x, l1):
            # inference: the activation in the GEMM's store (linear_act), no separate pass over
            # the hidden layer (the graph passes fuse the same pair, fuse_linear_activation)
            h = linear_act(x, l1.weight, l1.bias, act)
        else:
            h = self.activation(l1(x))
        return self.dropout2(self.linear2(self.dropout(h)))

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal: bool = False):
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x


class TransformerEncoder(Module):
    """A stack of num_layers copies of encoder_layer (keys layers.0..., and norm if given)."""

    def __init__(
        self,
        encoder_layer,
        num_layers: int,
        norm=None,
        enable_nested_tensor: bool = True,
        mask_check: bool = True,
    ):
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        out = src
        for mod in self.layers:
            out = mod(
                out,
                src_mask=mask,
                src_key_padding_mask=src_key_padding_mask,
                is_causal=bool(is_causal),
            )
        if self.norm is not None:
            out = self.norm(out)
        return out


class TransformerDecoderLayer(Module):
    """Self-attention, cross-attention over memory, and feed-forward."""

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation="relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device=None,
        dtype=None,
    ):
        super().__init__()
        self.self_attn = MultiheadAttention(
            d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, dtype=dtype
        )
        self.multihead_attn = MultiheadAttention(
            d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, dtype=dtype
        )
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)
        self.activation = _get_activation(activation)

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal=False):
        x = self.self_attn(
            x,
            x,
            x,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            is_causal=is_causal,
            need_weights=False,
        )[0]
        return self.dropout1(x)

    def _mha_block(self, x, mem, attn_mask, key_padding_mask, is_causal=False):
        x = self.multihead_attn(
            x,
            mem,
            mem,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            is_causal=is_causal,
            need_weights=False,
        )[0]
        return self.dropout2(x)

    def _ff_block(self, x):
        return self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(
        self,
        tgt,
        memory,
        tgt_mask=None,
        memory_mask=None,
        tgt_key_padding_mask=None,
        memory_key_padding_mask=None,
        tgt_is_causal: bool = False,
        memory_is_causal: bool = False,
    ):
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(
                self.norm2(x), memory, memory_mask, memory_key_padding_mask, memory_is_causal
            )
            x = x + self._ff_block(self.norm3(x))
        else:
            x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
            x = self.norm2(
                x
                + self._mha_block(x, memory, memory_mask, memory_key_padding_mask, memory_is_causal)
            )
            x = self.norm3(x + self._ff_block(x))
        return x


class TransformerDecoder(Module):
    """A stack of num_layers copies of decoder_layer."""

    def __init__(self, decoder_layer, num_layers: int, norm=None):
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(decoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(
        self,
        tgt,
        memory,
        tgt_mask=None,
        memory_mask=None,
        tgt_key_padding_mask=None,
        memory_key_padding_mask=None,
        tgt_is_causal=None,
        memory_is_causal: bool = False,
    ):
        out = tgt
        for mod in self.layers:
            out = mod(
                out,
                memory,
                tgt_mask=tgt_mask,
                memory_mask=memory_mask,
                tgt_key_padding_mask=tgt_key_padding_mask,
                memory_key_padding_mask=memory_key_padding_mask,
                tgt_is_causal=bool(tgt_is_causal),
                memory_is_causal=memory_is_causal,
            )
        if self.norm is not None:
            out = self.norm(out)
        return out
