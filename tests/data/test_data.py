"""utils.data: datasets, samplers, DataLoader batching/shuffling/drop_last/collate, splits."""

from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest

import framework as fw
from framework.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    TensorDataset,
    default_collate,
    random_split,
)


def make_ds(n=10):
    x = fw.arange(n * 3, dtype=fw.float32).reshape(n, 3)
    y = fw.arange(n)
    return TensorDataset(x, y)


def test_tensor_dataset_and_sequential_loader():
    ds = make_ds()
    assert len(ds) == 10
    x0, y0 = ds[2]
    assert x0.tolist() == [6.0, 7.0, 8.0] and y0.item() == 2
    batches = list(DataLoader(ds, batch_size=4))
    assert [b[0].shape for b in batches] == [fw.Size([4, 3]), fw.Size([4, 3]), fw.Size([2, 3])]
    assert batches[1][1].tolist() == [4, 5, 6, 7]
    assert batches[0][1].dtype is fw.int64
    assert len(DataLoader(ds, batch_size=4)) == 3
    assert len(DataLoader(ds, batch_size=4, drop_last=True)) == 2
    assert len(list(DataLoader(ds, batch_size=4, drop_last=True))) == 2


def test_shuffle_is_a_permutation_and_seeded():
    ds = make_ds(20)

    def order(seed):
        g = fw.Generator().manual_seed(seed)
        return [
            int(v)
            for b in DataLoader(ds, batch_size=6, shuffle=True, generator=g)
            for v in b[1].tolist()
        ]

    a, b, c = order(1), order(1), order(2)
    assert sorted(a) == list(range(20))
    assert a == b and a != c and a != list(range(20))
    loader = DataLoader(ds, batch_size=20, shuffle=True, generator=fw.Generator().manual_seed(3))
    e1, e2 = next(iter(loader))[1].tolist(), next(iter(loader))[1].tolist()
    assert e1 != e2  # a new permutation each epoch


def test_collate_fn_sampler_and_batch_sampler():
    ds = make_ds()
    got = list(DataLoader(ds, batch_size=3, collate_fn=lambda items: len(items)))
    assert got == [3, 3, 3, 1]
    sampler = [9, 0, 5]
    assert [b[1].tolist() for b in DataLoader(ds, batch_size=2, sampler=sampler)] == [[9, 0], [5]]
    bs = BatchSampler(SequentialSampler(range(5)), 2, drop_last=False)
    assert list(bs) == [[0, 1], [2, 3], [4]]
    assert [b[1].tolist() for b in DataLoader(ds, batch_sampler=[[1, 2], [3]])] == [[1, 2], [3]]
    assert [x[1].item() for x in DataLoader(ds, batch_size=None)][:3] == [0, 1, 2]
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(ds, sampler=sampler, shuffle=True)
    rs = list(
        RandomSampler(
            range(5), replacement=True, num_samples=8, generator=fw.Generator().manual_seed(0)
        )
    )
    assert len(rs) == 8 and all(0 <= i < 5 for i in rs)


def test_default_collate_structures():
    Point = namedtuple("Point", "x y")
    out = default_collate(
        [
            {"a": 1, "b": np.ones(2, np.float32), "c": "s", "p": Point(1.0, True)},
            {"a": 2, "b": np.zeros(2, np.float32), "c": "t", "p": Point(2.0, False)},
        ]
    )
    assert out["a"].tolist() == [1, 2] and out["a"].dtype is fw.int64
    assert out["b"].shape == fw.Size([2, 2])
    assert out["c"] == ["s", "t"]
    assert out["p"].x.dtype is fw.float64 and out["p"].y.dtype is fw.bool
    assert [t.tolist() for t in default_collate([[1, 2], [3, 4]])] == [[1, 3], [2, 4]]


def test_random_split_and_subset():
    ds = make_ds(10)
    a, b = random_split(ds, [7, 3], generator=fw.Generator().manual_seed(0))
    assert len(a) == 7 and len(b) == 3
    ids = sorted([a[i][1].item() for i in range(7)] + [b[i][1].item() for i in range(3)])
    assert ids == list(range(10))
    c, d = random_split(ds, [0.5, 0.5])
    assert len(c) + len(d) == 10
    with pytest.raises(ValueError, match="Sum of input lengths"):
        random_split(ds, [3, 3])
    s = Subset(ds, [4, 1])
    assert s[0][1].item() == 4 and len(s) == 2


def test_custom_dataset():
    class Squares(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return fw.tensor([float(i * i)]), i

    xs, ys = next(iter(DataLoader(Squares(), batch_size=5)))
    assert xs.reshape(-1).tolist() == [0.0, 1.0, 4.0, 9.0, 16.0] and ys.tolist() == list(range(5))


def test_tensor_dataset_batches_equal_per_sample_collate():
    ds = TensorDataset(fw.randn(23, 2, 3), fw.arange(23))
    fast = list(DataLoader(ds, batch_size=5, shuffle=True, generator=fw.Generator().manual_seed(4)))
    slow = list(
        DataLoader(
            ds,
            batch_size=5,
            shuffle=True,
            generator=fw.Generator().manual_seed(4),
            collate_fn=lambda b: default_collate(b),
        )
    )
    assert len(fast) == len(slow) == 5
    for (fx, fy), (sx, sy) in zip(fast, slow):
        assert fx.shape == sx.shape and fy.dtype is sy.dtype is fw.int64
        np.testing.assert_array_equal(fx.numpy(), sx.numpy())
        np.testing.assert_array_equal(fy.numpy(), sy.numpy())
    assert isinstance(fast[0], list) and isinstance(slow[0], list)
