"""Data-movement functions composed from registered ops (stack, split, chunk, tensor_split,
unbind, tile, argsort, take_along_dim, masked_select), in-place variants, and error
messages, against torch. Ops with an OpDef are covered by test_opinfo.py."""

import numpy as np
import pytest
import torch

import framework as fw
from tests.oracle import assert_close

_rng = np.random.default_rng(21)
A = _rng.uniform(-2, 2, size=(4, 5))


def both(arr):
    return fw.tensor(arr), torch.tensor(arr)


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_stack_matches_torch(dim):
    xs = [_rng.uniform(size=(2, 3)) for _ in range(3)]
    assert_close(fw.stack([fw.tensor(x) for x in xs], dim), torch.stack([torch.tensor(x) for x in xs], dim))


def test_cat_and_stack_of_many_tensors():
    xs = [_rng.uniform(size=(2,)) for _ in range(300)]
    assert_close(fw.stack([fw.tensor(x) for x in xs], 1), torch.stack([torch.tensor(x) for x in xs], 1))
    a = fw.ones(2, requires_grad=True)
    fw.cat([a] * 40).sum().backward()
    assert a.grad.tolist() == [40.0, 40.0]


def test_stack_grad_and_errors():
    a, b = fw.ones(2, requires_grad=True), fw.ones(2, requires_grad=True)
    (fw.stack([a, b], 1) * fw.tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
    assert a.grad.tolist() == [1.0, 3.0] and b.grad.tolist() == [2.0, 4.0]
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
        fw.stack([fw.ones(2), fw.ones(3)])


@pytest.mark.parametrize("arg,dim", [(2, 0), (2, 1), ([1, 3, 1], -1), (4, 0), (10, 1), ([0, 4], 0)])
def test_split_matches_torch(arg, dim):
    x, xt = both(A)
    got, expected = fw.split(x, arg, dim), torch.split(xt, arg, dim)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert_close(g, e)
    assert_close(x.split(arg, dim)[0], expected[0])


@pytest.mark.parametrize("chunks,dim", [(2, 0), (3, 1), (5, 1), (7, 0)])
def test_chunk_matches_torch(chunks, dim):
    x, xt = both(A)
    got, expected = x.chunk(chunks, dim), torch.chunk(xt, chunks, dim)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert_close(g, e)


def test_chunk_and_split_of_empty_dims_match_torch():
    for got, expected in [(fw.chunk(fw.zeros(0, 2), 3), torch.chunk(torch.zeros(0, 2), 3)),
                          (fw.split(fw.zeros(0), 2), torch.split(torch.zeros(0), 2))]:
        assert [tuple(g.shape) for g in got] == [tuple(e.shape) for e in expected]


def test_split_pieces_are_views_and_grads_flow():
    x = fw.tensor(A, requires_grad=True)
    a, b = x.split([1, 3])
    (a.sum() * 2 + b.sum()).backward()
    assert x.grad[0].tolist() == [2.0] * 5 and x.grad[1:].sum().item() == 15.0
    with pytest.raises(RuntimeError, match="split_with_sizes expects split_sizes to sum exactly to 4"):
        fw.split(x, [1, 1])
    with pytest.raises(RuntimeError, match="chunk expects `chunks` to be greater than 0"):
        fw.chunk(x, 0)


@pytest.mark.parametrize("arg", [3, [1, 4], 2])
def test_tensor_split_and_unbind_match_torch(arg):
    x, xt = both(A)
    for g, e in zip(fw.tensor_split(x, arg, 1), torch.tensor_split(xt, arg, 1)):
        assert_close(g, e)
    for g, e in zip(x.unbind(1), xt.unbind(1)):
        assert_close(g, e)


@pytest.mark.parametrize("reps", [(2,), (2, 1), (1, 2, 3), 3])
def test_tile_matches_torch(reps):
    x, xt = both(A[:2, :3])
    assert_close(fw.tile(x, reps), torch.tile(xt, reps if isinstance(reps, tuple) else (reps,)))


def test_repeat_errors():
    with pytest.raises(RuntimeError, match="can not be smaller"):
        fw.ones(2, 3).repeat(2)


@pytest.mark.parametrize("dim,descending", [(-1, False), (0, True)])
def test_argsort_matches_torch(dim, descending):
    x, xt = both(np.argsort(_rng.random((4, 5)), axis=1).astype(np.float64))
    assert_close(fw.argsort(x, dim, descending, stable=True), torch.argsort(xt, dim=dim, descending=descending,
                                                                            stable=True))


def test_sort_orders_nan_like_torch():
    v = [3.0, float("nan"), -1.0, 2.0]
    for desc in (False, True):
        got = fw.sort(fw.tensor(v), descending=desc)
        expected = torch.sort(torch.tensor(v), descending=desc)
        assert_close(got.values, expected.values)
        assert_close(got.indices, expected.indices)


def test_topk_unsorted_returns_the_same_set():
    x, xt = both(_rng.permutation(20).reshape(4, 5).astype(np.float32))
    got = fw.topk(x, 3, sorted=False)
    expected = torch.topk(xt, 3, sorted=False)
    assert sorted(got.values.tolist()[0]) == sorted(expected.values.tolist()[0])
    with pytest.raises(RuntimeError, match="k out of range"):
        fw.topk(x, 6)


@pytest.mark.parametrize("dim", [None, 0, 1, -1])
def test_take_along_dim_matches_torch(dim):
    x, xt = both(A)
    if dim is None:
        idx = _rng.integers(0, A.size, size=(6,))
    else:
        idx = np.argsort(A, axis=dim)
    assert_close(fw.take_along_dim(x, fw.tensor(idx), dim), torch.take_along_dim(xt, torch.tensor(idx), dim))


def test_take_along_dim_broadcasts():
    x, xt = both(A)
    idx = np.array([[0], [2], [4], [1]])
    assert_close(fw.take_along_dim(x, fw.tensor(idx), 1), torch.take_along_dim(xt, torch.tensor(idx), 1))


def test_masked_select_matches_torch_with_broadcast_and_grad():
    mask = _rng.random((5,)) > 0.5
    x = fw.tensor(A, requires_grad=True)
    xt = torch.tensor(A, requires_grad=True)
    got, expected = fw.masked_select(x, fw.tensor(mask)), torch.masked_select(xt, torch.tensor(mask))
    assert_close(got, expected)
    got.sum().backward()
    expected.sum().backward()
    assert_close(x.grad, xt.grad)
    with pytest.raises(RuntimeError, match="BoolTensor"):
        fw.masked_select(x, fw.ones(5))


def test_nonzero_of_all_zeros_and_0d():
    for arr in (np.zeros((3, 2)), np.array(0.0), np.array(2.0)):
        x, xt = both(arr)
        assert_close(fw.nonzero(x), torch.nonzero(xt))
        for g, e in zip(fw.nonzero(x, as_tuple=True), torch.nonzero(xt, as_tuple=True)):
            assert_close(g, e)


def test_nonzero_as_tuple_and_where_single_argument():
    x, xt = both(np.array([[0, 1, 2], [3, 0, 0]]))
    for g, e in zip(fw.where(x != 0), torch.where(xt != 0)):
        assert_close(g, e)
    assert_close(fw.argwhere(x), torch.argwhere(xt))


def test_scatter_inplace_methods_match_torch():
    idx = np.array([[0, 2], [1, 0]])
    src = np.array([[1.0, 2.0], [3.0, 4.0]])
    x, xt = both(np.zeros((3, 3)))
    x.scatter_(0, fw.tensor(idx), fw.tensor(src))
    xt.scatter_(0, torch.tensor(idx), torch.tensor(src))
    assert_close(x, xt)
    x.scatter_add_(1, fw.tensor(idx), fw.tensor(src))
    xt.scatter_add_(1, torch.tensor(idx), torch.tensor(src))
    assert_close(x, xt)
    x.scatter_(1, fw.tensor(idx), 9.0)
    xt.scatter_(1, torch.tensor(idx), 9.0)
    assert_close(x, xt)


def test_scatter_multiply_matches_torch():
    idx = np.array([[0, 1, 0]])
    x, xt = both(np.full((2, 3), 2.0))
    s = np.array([[3.0, 4.0, 5.0]])
    assert_close(fw.scatter(x, 0, fw.tensor(idx), fw.tensor(s), reduce="multiply"),
                 torch.scatter(xt, 0, torch.tensor(idx), torch.tensor(s), reduce="multiply"))


def test_tril_triu_inplace():
    x, xt = both(A.copy())
    x.tril_(1)
    xt.tril_(1)
    assert_close(x, xt)
    x.triu_(-1)
    xt.triu_(-1)
    assert_close(x, xt)
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        fw.tril(fw.ones(3))


def test_cat_errors_and_promotion():
    with pytest.raises(RuntimeError, match="Sizes of tensors must match except in dimension 0"):
        fw.cat([fw.ones(2, 3), fw.ones(2, 4)])
    with pytest.raises(RuntimeError, match="same number of dimensions"):
        fw.cat([fw.ones(2, 3), fw.ones(3)])
    with pytest.raises(RuntimeError, match="zero-dimensional"):
        fw.cat([fw.tensor(1.0)])
    got = fw.cat([fw.ones(2, dtype=fw.int64), fw.ones(1, dtype=fw.float32)])
    assert got.dtype is fw.float32 and got.tolist() == [1.0, 1.0, 1.0]
    assert fw.cat([fw.ones(2, 2), fw.zeros(0)]).shape == (2, 2)


def test_flip_and_roll_errors():
    with pytest.raises(RuntimeError, match="appears multiple times"):
        fw.flip(fw.ones(2, 2), [0, 0])
    with pytest.raises(RuntimeError, match="shifts and dimensions must align"):
        fw.roll(fw.ones(2, 2), (1, 2), 0)
    x, xt = both(A)
    assert_close(fw.roll(x, -7), torch.roll(xt, -7))
    assert_close(x.fliplr(), xt.fliplr())
    assert_close(x.flipud(), xt.flipud())


def test_sort_topk_bool_and_int32_kernels_run():
    b = fw.tensor([True, False, True])
    assert fw.sort(b).values.tolist() == [False, True, True]
    i = fw.tensor([3, 1, 2], dtype=fw.int32)
    assert fw.topk(i, 2).indices.tolist() == [0, 2]
    assert fw.gather(i, 0, fw.tensor([2, 2])).tolist() == [2, 2]
