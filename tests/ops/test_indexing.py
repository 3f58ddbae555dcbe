"""x[idx] and x[idx] = v against torch: integer and bool tensor indices, lists, broadcasting,
negative indices, mixing with ints/slices/None/Ellipsis (torch's rule for where the indexed
dims go), gradients, in-place writes through views, and errors (never a crash)."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import framework as fw
from tests.oracle import assert_close

_rng = np.random.default_rng(11)
X = _rng.uniform(-2, 2, size=(3, 4, 5))
MASK_01 = _rng.random((3, 4)) > 0.5
MASK_12 = _rng.random((4, 5)) > 0.4
MASK_0 = np.array([True, False, True])


def _fw_t(v, dtype=None):
    return fw.tensor(v, dtype=dtype)


def _torch_t(v, dtype=None):
    return torch.tensor(v, dtype=None if dtype is None else {fw.int64: torch.int64}[dtype])


# Each index is built with T = fw.tensor or torch.tensor, so both sides index the same way.
INDICES = {
    "int-tensor": lambda T: T([0, 2, -1]),
    "list": lambda T: [0, -1, 1],
    "broadcast-2": lambda T: (T([[0], [2]]), T([1, 3, -4])),
    "slice-then-tensor": lambda T: (slice(None), T([3, 0])),
    "int-slice-tensor": lambda T: (0, slice(None), T([1, 3])),
    "apart": lambda T: (T([1, 0]), slice(None), T([4, 1])),
    "apart-int": lambda T: (T([1, 0]), 2, T([4, 1])),
    "none-apart": lambda T: (None, T([0, 1]), Ellipsis, T([1, 2])),
    "none-between": lambda T: (T([0, 1]), None, T([1, 2])),
    "ellipsis-2d": lambda T: (Ellipsis, T([[0, 1], [2, 3]])),
    "step-slice": lambda T: (slice(None, None, 2), T([0, 3])),
    "tensor-then-slice": lambda T: (T([2, 2, 0]), slice(1, 3)),
    "mask-01": lambda T: T(MASK_01),
    "mask-12": lambda T: (slice(None), T(MASK_12)),
    "mask-0-int": lambda T: (T(MASK_0), 1),
    "bool-list": lambda T: [True, False, True],
    "true": lambda T: True,
    "false": lambda T: (False, 0),
    "0d-int-tensor": lambda T: (T(1), T([0, 3])),
    "0d-bool-tensor": lambda T: T(True),
    "empty": lambda T: T([], dtype=fw.int64) if T is _fw_t else torch.tensor([], dtype=torch.int64),
    "mask-and-tensor": lambda T: (T(MASK_0), slice(None), T([4, 0])),
}


def _pair(name):
    return INDICES[name](_fw_t), INDICES[name](_torch_t)


@pytest.mark.parametrize("name", sorted(INDICES))
def test_getitem_matches_torch(name):
    fi, ti = _pair(name)
    got = fw.tensor(X)[fi]
    expected = torch.tensor(X)[ti]
    assert_close(got, expected, what=name)


@pytest.mark.parametrize("name", ["int-tensor", "broadcast-2", "apart", "mask-12", "none-apart", "int-slice-tensor"])
def test_getitem_grad_matches_torch(name):
    fi, ti = _pair(name)
    x = fw.tensor(X, requires_grad=True)
    xt = torch.tensor(X, requires_grad=True)
    out, out_t = x[fi], xt[ti]
    w = _rng.uniform(0.5, 1.5, size=tuple(out_t.shape))
    (out * fw.tensor(w)).sum().backward()
    (out_t * torch.tensor(w)).sum().backward()
    assert_close(x.grad, xt.grad, what=name)


def test_getitem_grad_accumulates_duplicate_indices():
    x = fw.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[fw.tensor([0, 0, 2, 0])].sum().backward()
    assert x.grad.tolist() == [3.0, 0.0, 1.0]


def test_getitem_int64_and_int32_tensors():
    x = fw.arange(10) * 3
    assert x[fw.tensor([9, -10])].tolist() == [27, 0]
    assert x[fw.tensor([1, 2], dtype=fw.int32)].tolist() == [3, 6]
    assert x[fw.tensor([1, 2])].dtype is fw.int64


@pytest.mark.parametrize("name", ["int-tensor", "list", "broadcast-2", "slice-then-tensor", "int-slice-tensor",
                                  "apart", "none-apart", "mask-01", "mask-12", "mask-0-int", "true",
                                  "0d-int-tensor", "empty", "mask-and-tensor"])
@pytest.mark.parametrize("value_kind", ["scalar", "tensor"])
def test_setitem_matches_torch(name, value_kind):
    fi, ti = _pair(name)
    x, xt = fw.tensor(X), torch.tensor(X)
    shape = tuple(xt[ti].shape)
    if value_kind == "scalar":
        v, vt = 7.5, 7.5
    else:  # broadcast along the leading dim
        arr = _rng.uniform(-1, 1, size=(1,) + shape[1:]) if shape else _rng.uniform(-1, 1, size=())
        v, vt = fw.tensor(arr), torch.tensor(arr)
    version = x._version.value
    x[fi] = v
    xt[ti] = vt
    assert_close(x, xt, what=name)
    assert x._version.value > version


def test_setitem_through_a_view_writes_the_base():
    x = fw.zeros(4, 3)
    y = x[1:]
    y[fw.tensor([0, 2]), 1] = 5.0
    assert x.tolist() == [[0, 0, 0], [0, 5, 0], [0, 0, 0], [0, 5, 0]]


def test_setitem_value_dtype_must_match_like_torch():
    x = fw.zeros(5, dtype=fw.int64)
    with pytest.raises(RuntimeError, match="dtypes match"):
        x[fw.tensor([1, 3])] = fw.tensor([2.9, -1.2])
    x[fw.tensor([1, 3])] = 2  # Python numbers take x's dtype
    assert x.tolist() == [0, 2, 0, 2, 0]


def test_index_put_accumulate_matches_torch():
    idx = np.array([0, 2, 0, 0])
    v = np.array([1.0, 2.0, 3.0, 4.0])
    x = fw.zeros(3, 2)
    xt = torch.zeros(3, 2)
    x.index_put_((fw.tensor(idx),), fw.tensor(v, dtype=fw.float32).unsqueeze(1), accumulate=True)
    xt.index_put_((torch.tensor(idx),), torch.tensor(v, dtype=torch.float32).unsqueeze(1), accumulate=True)
    assert_close(x, xt)


def test_index_put_grad_matches_torch():
    x = fw.tensor(X, requires_grad=True)
    v = fw.tensor(_rng.uniform(size=(2, 5)), requires_grad=True)
    xt = torch.tensor(X, requires_grad=True)
    vt = torch.tensor(v.detach().numpy(), requires_grad=True)
    idx = ([0, 2], [1, 3])
    out = fw.index_put(x, tuple(fw.tensor(i) for i in idx), v)
    out_t = torch.index_put(xt, tuple(torch.tensor(i) for i in idx), vt)
    assert_close(out, out_t)
    w = _rng.uniform(size=X.shape)
    (out * fw.tensor(w)).sum().backward()
    (out_t * torch.tensor(w)).sum().backward()
    assert_close(x.grad, xt.grad)
    assert_close(v.grad, vt.grad)


# ---- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("index,dim,size", [(fw.tensor([0, 5]), 0, 3), (fw.tensor([-4]), 0, 3),
                                            ((slice(None), fw.tensor([1, 4])), 1, 4),
                                            ((0, 0, fw.tensor([[9]])), 0, 5)])
def test_getitem_out_of_range_raises_index_error(index, dim, size):
    x = fw.zeros(3, 4, 5)
    with pytest.raises(IndexError, match=f"out of bounds for dimension {dim} with size {size}"):
        x[index]


def test_getitem_error_names_the_index():
    with pytest.raises(IndexError, match="index 5 is out of bounds"):
        fw.zeros(3)[fw.tensor([1, 5])]


def test_setitem_out_of_range_raises_and_leaves_tensor_unchanged():
    x = fw.zeros(3, 2)
    with pytest.raises(IndexError, match="index 3 is out of bounds for dimension 0 with size 3"):
        x[fw.tensor([0, 3])] = 1.0
    assert x.tolist() == [[0, 0]] * 3


def test_index_errors():
    x = fw.zeros(3, 4)
    with pytest.raises(IndexError, match="shape mismatch"):
        x[fw.tensor([0, 1]), fw.tensor([0, 1, 2])]
    with pytest.raises(IndexError, match="shape of the mask"):
        x[fw.tensor([True, False])]
    with pytest.raises(IndexError, match="long, int, byte or bool"):
        x[fw.tensor([0.0, 1.0])]
    with pytest.raises(IndexError, match="too many indices"):
        x[fw.tensor([0]), fw.tensor([0]), fw.tensor([0])]
    with pytest.raises(RuntimeError, match="shape mismatch: value tensor"):
        x[fw.tensor([0, 1])] = fw.ones(3, 4)


def test_gather_scatter_index_select_out_of_range_raise():
    x = fw.zeros(3, 4)
    with pytest.raises(RuntimeError, match="index 4 is out of bounds for dimension 1 with size 4"):
        fw.gather(x, 1, fw.tensor([[4]]))
    with pytest.raises(RuntimeError, match="index -1 is out of bounds"):
        x.scatter(0, fw.tensor([[-1]]), 1.0)
    with pytest.raises(RuntimeError, match="out of bounds"):
        fw.scatter_add(x, 0, fw.tensor([[3]]), fw.ones(1, 1))
    with pytest.raises(IndexError, match="index 7 is out of bounds for dimension 0 with size 3"):
        fw.index_select(x, 0, fw.tensor([7]))
    with pytest.raises(RuntimeError, match="int64"):
        fw.gather(x, 0, fw.tensor([[0]], dtype=fw.int32))


def test_bad_index_does_not_kill_the_process():
    code = textwrap.dedent("""
        import framework as fw
        x = fw.zeros(4, 3)
        caught = 0
        for idx in ([10**12], [-10**12], [2**62]):
            try:
                x[fw.tensor(idx)]
            except IndexError:
                caught += 1
            try:
                x[fw.tensor(idx), 0] = 1.0
            except IndexError:
                caught += 1
        try:
            fw.gather(x, 0, fw.tensor([[2**40]]))
        except RuntimeError:
            caught += 1
        print("caught", caught)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "caught 7" in r.stdout


# ---- property test: random mixes of index kinds against torch ---------------------------------

from hypothesis import given, strategies as st  # noqa: E402


@st.composite
def _index_case(draw):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    items = []
    adv_shape = draw(st.sampled_from([(2,), (3,), (2, 1), (1, 3), ()]))
    for size in shape:
        kind = draw(st.sampled_from(["slice", "int", "tensor", "tensor", "none-slice", "mask"]))
        if kind == "slice":
            items.append(("slice", slice(draw(st.integers(-size, size)), None, draw(st.integers(1, 2)))))
        elif kind == "int":
            items.append(("int", draw(st.integers(-size, size - 1))))
        elif kind == "tensor":
            n = int(np.prod(adv_shape)) if adv_shape else 1
            vals = draw(st.lists(st.integers(-size, size - 1), min_size=n, max_size=n))
            items.append(("tensor", np.array(vals, dtype=np.int64).reshape(adv_shape)))
        elif kind == "mask":
            items.append(("mask", np.array(draw(st.lists(st.booleans(), min_size=size, max_size=size)))))
        else:
            items.append(("none", None))
            items.append(("slice", slice(None)))
    return shape, items


def _build(items, T):
    return tuple(T(v) if k in ("tensor", "mask") else v for k, v in items)


@given(_index_case())
def test_random_index_mixes_match_torch(case):
    shape, items = case
    x = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    n_masks = sum(k == "mask" for k, _ in items)
    try:
        expected = torch.tensor(x)[_build(items, torch.tensor)]
    except (IndexError, RuntimeError) as e:
        with pytest.raises(type(e)):
            fw.tensor(x)[_build(items, fw.tensor)]
        return
    assert_close(fw.tensor(x)[_build(items, fw.tensor)], expected, what=str(items))
    if n_masks == 0:  # writes too (masks with tensors may repeat positions)
        xf, xt = fw.tensor(x), torch.tensor(x)
        xf[_build(items, fw.tensor)] = -1.0
        xt[_build(items, torch.tensor)] = -1.0
        assert_close(xf, xt, what=f"setitem {items}")
