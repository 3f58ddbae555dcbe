"""DataLoader with worker processes (num_workers > 0): the same batches in the same order
as num_workers=0, IterableDataset sharding as torch does it, seeds, worker_init_fn,
persistent workers, and errors (a raising sample, an unpicklable batch, a dead worker, a
timeout) that reach the main process as exceptions instead of hangs."""

from __future__ import annotations

import gc
import os
import signal
import time

import numpy as np
import pytest
import torch

import framework as fw
from framework.utils.data import (
    BatchSampler,
    ChainDataset,
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
    SequentialSampler,
    TensorDataset,
    get_worker_info,
)


def make_ds(n=23):
    return TensorDataset(fw.arange(n * 2, dtype=fw.float32).reshape(n, 2), fw.arange(n))


def as_lists(batches):
    def conv(b):
        if isinstance(b, fw.Tensor):
            return b.tolist()
        if isinstance(b, (list, tuple)):
            return [conv(v) for v in b]
        if isinstance(b, dict):
            return {k: conv(v) for k, v in b.items()}
        return b
    return [conv(b) for b in batches]


class Squares(Dataset):
    """Map-style samples of mixed structure, so default_collate runs in the workers."""

    def __len__(self):
        return 17

    def __getitem__(self, i):
        return {"x": np.full(3, i, np.float32), "i": i, "sq": (float(i * i), [i, -i])}


@pytest.mark.parametrize("num_workers", [1, 2, 3])
@pytest.mark.parametrize("kw", [
    dict(batch_size=4),
    dict(batch_size=5, shuffle=True, drop_last=True),
    dict(batch_size=None),
    dict(batch_sampler=BatchSampler(SequentialSampler(range(23)), 6, drop_last=False)),
    dict(batch_size=3, collate_fn=lambda items: [int(t[1]) for t in items]),
])
def test_workers_give_the_single_process_batches_in_order(num_workers, kw):
    def run(nw):
        g = fw.Generator().manual_seed(11)
        return as_lists(DataLoader(make_ds(), num_workers=nw, generator=g, **kw))

    assert run(num_workers) == run(0)
    assert len(run(0)) == len(DataLoader(make_ds(), **kw))


def test_workers_collate_nested_samples_like_the_main_process():
    got = as_lists(DataLoader(Squares(), batch_size=4, num_workers=2, prefetch_factor=1))
    assert got == as_lists(DataLoader(Squares(), batch_size=4))
    assert got[1]["i"] == [4, 5, 6, 7] and got[1]["sq"][1] == [[4, 5, 6, 7], [-4, -5, -6, -7]]


class Stream(IterableDataset):
    """range(n), each worker taking every num_workers-th item (torch's sharding recipe)."""

    def __init__(self, n, info=get_worker_info):
        self.n, self.info = n, info

    def __iter__(self):
        wi = self.info()
        lo, step = (0, 1) if wi is None else (wi.id, wi.num_workers)
        return iter(range(lo, self.n, step))

    def __len__(self):
        return self.n


class TorchStream(torch.utils.data.IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        wi = torch.utils.data.get_worker_info()
        lo, step = (0, 1) if wi is None else (wi.id, wi.num_workers)
        return iter(range(lo, self.n, step))


@pytest.mark.parametrize("num_workers,batch_size,drop_last", [(0, 4, False), (2, 4, False), (3, 5, True),
                                                              (2, None, False)])
def test_iterable_dataset_batches_match_torch(num_workers, batch_size, drop_last):
    got = as_lists(DataLoader(Stream(23), batch_size=batch_size, num_workers=num_workers, drop_last=drop_last))
    want = [b.tolist() if isinstance(b, torch.Tensor) else b for b in torch.utils.data.DataLoader(
        TorchStream(23), batch_size=batch_size, num_workers=num_workers, drop_last=drop_last)]
    assert got == want


def test_iterable_dataset_length_and_argument_checks():
    assert len(DataLoader(Stream(23), batch_size=4)) == 6
    assert len(DataLoader(Stream(23), batch_size=4, drop_last=True)) == 5

    class NoLen(IterableDataset):
        def __iter__(self):
            return iter(range(3))

    with pytest.raises(TypeError):
        len(DataLoader(NoLen(), batch_size=2))
    for bad in (dict(shuffle=True), dict(sampler=[0, 1]), dict(batch_sampler=[[0]], batch_size=1)):
        with pytest.raises(ValueError, match="IterableDataset"):
            DataLoader(Stream(4), **bad)
    assert as_lists(DataLoader(ChainDataset([Stream(3), Stream(2)]), batch_size=2)) == [[0, 1], [2, 0], [1]]
    with pytest.raises(TypeError, match="IterableDataset"):
        ConcatDataset([make_ds(), Stream(3)])


@pytest.mark.parametrize("bad,match", [
    (dict(num_workers=-1), "num_workers"),
    (dict(prefetch_factor=2), "prefetch_factor"),
    (dict(num_workers=1, prefetch_factor=0), "prefetch_factor"),
    (dict(persistent_workers=True), "persistent_workers"),
    (dict(timeout=-1), "timeout"),
])
def test_bad_worker_options_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        DataLoader(make_ds(), **bad)


class WhoAmI(Dataset):
    """Each sample: the worker's info, its pid, and draws from its framework, numpy and
    Python random streams."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        import random

        wi = get_worker_info()
        return (wi.id, wi.num_workers, wi.seed, wi.dataset is self, os.getpid(),
                float(fw.rand(1).item()), float(np.random.rand()), random.random())


def test_worker_info_seeds_and_init_fn():
    assert get_worker_info() is None
    seen = []

    def init(worker_id):
        seen.append(worker_id)  # runs in the worker: the main's list stays empty
        assert get_worker_info().id == worker_id

    def epoch(seed):
        dl = DataLoader(WhoAmI(), batch_size=None, num_workers=2, worker_init_fn=init,
                        generator=fw.Generator().manual_seed(seed))
        return list(dl)

    a, b, c = epoch(1), epoch(1), epoch(2)
    assert seen == []
    assert [s[0] for s in a] == [0, 1] * 4 and all(s[1] == 2 and s[3] for s in a)
    assert a[0][2] != a[1][2] and a[0][4] != a[1][4] and os.getpid() not in {s[4] for s in a}
    # the two workers draw different streams; the same loader seed repeats them
    assert a[0][5:] != a[1][5:]
    assert [s[5:] for s in a] == [s[5:] for s in b] and [s[5:] for s in a] != [s[5:] for s in c]


def test_persistent_workers_keep_their_processes_across_epochs():
    dl = DataLoader(WhoAmI(), batch_size=None, num_workers=2, persistent_workers=True)
    pids1 = {s[4] for s in dl}
    it = iter(dl)
    next(it)  # an epoch cut short: its prefetched batches must not leak into the next one
    e3 = list(dl)
    assert {s[4] for s in e3} == pids1 and len(e3) == 8
    # a stream restarts each epoch on the same workers
    sdl = DataLoader(Stream(9), batch_size=2, num_workers=2, persistent_workers=True)
    first = as_lists(sdl)
    assert first == as_lists(sdl) == as_lists(DataLoader(Stream(9), batch_size=2, num_workers=2))
    workers = sdl._iterator._workers
    # an epoch after a worker's exception runs on the same workers; after a timeout shut
    # them down, the next epoch starts new ones
    fdl = DataLoader(Failing(ValueError("sample 3 is bad")), batch_size=None, num_workers=2, persistent_workers=True)
    for _ in range(2):
        with pytest.raises(ValueError, match="sample 3"):
            list(fdl)
    slow = DataLoader(Slow(), batch_size=None, num_workers=1, persistent_workers=True, timeout=0.5)
    with pytest.raises(RuntimeError, match="timed out"):
        list(slow)
    first = slow._iterator
    assert next(iter(slow)) == 0 and slow._iterator is not first
    slow._iterator._shutdown_workers(grace=0.1)  # its worker sleeps in sample 2
    del dl, it, sdl, fdl, slow, first
    gc.collect()
    for p in workers:
        p.join(5)
        assert not p.is_alive()


def test_workers_end_when_an_epoch_is_cut_short():
    it = iter(DataLoader(make_ds(), batch_size=2, num_workers=2))
    next(it)
    workers = it._workers
    del it
    gc.collect()
    for p in workers:
        p.join(5)
        assert not p.is_alive()


class Failing(Dataset):
    def __init__(self, exc):
        self.exc = exc

    def __len__(self):
        return 6

    def __getitem__(self, i):
        if i == 3:
            raise self.exc
        return i


class NeedsTwoArgs(Exception):
    def __init__(self, a, b):
        super().__init__(a, b)


@pytest.mark.parametrize("exc,cls", [(ValueError("sample 3 is bad"), ValueError),
                                     (KeyError("sample 3 is bad"), KeyError),
                                     (NeedsTwoArgs("sample 3", "is bad"), RuntimeError)])
def test_a_worker_exception_reaches_the_main_process(exc, cls):
    dl = DataLoader(Failing(exc), batch_size=2, num_workers=2)
    with pytest.raises(cls, match="(?s)in DataLoader worker process 1.*sample 3"):
        list(dl)


def test_init_fn_and_pickling_errors_are_raised():
    def bad_init(worker_id):
        raise RuntimeError(f"init of worker {worker_id} failed")

    with pytest.raises(RuntimeError, match="init of worker 0 failed"):
        list(DataLoader(make_ds(), batch_size=2, num_workers=1, worker_init_fn=bad_init))
    unpicklable = DataLoader(make_ds(4), batch_size=2, num_workers=1, collate_fn=lambda items: (lambda: 0))
    with pytest.raises(Exception, match="while sending a batch"):
        list(unpicklable)


class Dies(Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, i):
        if i == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        return i


class Slow(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        time.sleep(30 if i == 2 else 0)
        return i


def test_a_dead_worker_or_a_timeout_raises_instead_of_hanging():
    t0 = time.perf_counter()
    with pytest.raises(RuntimeError, match=r"DataLoader worker \(pid \d+, exit code -9\) exited unexpectedly"):
        list(DataLoader(Dies(), batch_size=2, num_workers=2))
    with pytest.raises(RuntimeError, match="timed out after 0.5 seconds"):
        list(DataLoader(Slow(), batch_size=1, num_workers=1, timeout=0.5))
    assert time.perf_counter() - t0 < 20  # the slow worker was terminated, not waited for


def test_spawned_workers():
    got = as_lists(DataLoader(Stream(7), batch_size=3, num_workers=2, multiprocessing_context="spawn"))
    assert got == [[0, 2, 4], [1, 3, 5], [6]]


class BigSamples(Dataset):
    """Samples whose batches pass the shared-memory threshold, of several dtypes."""

    def __len__(self):
        return 12

    def __getitem__(self, i):
        return {"img": np.full((3, 40, 40), i, np.float32), "idx": np.full(9000, i, np.int64),
                "mask": np.arange(70000) % (i + 2) == 0, "small": i, "arr": np.full(20000, i, np.float64)}


def test_big_batches_travel_in_shared_memory_intact():
    from framework.utils.data import _worker

    def collate(items):  # a numpy array left as numpy, the rest through default_collate
        out = fw.utils.data.default_collate([{k: v for k, v in it.items() if k != "arr"} for it in items])
        out["arr"] = np.stack([it["arr"] for it in items])
        return out

    fds_before = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        got = list(DataLoader(BigSamples(), batch_size=4, num_workers=2, collate_fn=collate))
        want = list(DataLoader(BigSamples(), batch_size=4, collate_fn=collate))
        assert len(got) == len(want) == 3
        for g, w in zip(got, want):
            assert g["img"].dtype is fw.float32 and g["idx"].dtype is fw.int64 and g["mask"].dtype is fw.bool
            assert isinstance(g["arr"], np.ndarray) and g["arr"].dtype == np.float64
            for k in ("img", "idx", "mask", "small"):
                assert g[k].tolist() == w[k].tolist(), k
            np.testing.assert_array_equal(g["arr"], w["arr"])
            g["img"].add_(1)  # the mapped batch is an ordinary writable tensor
            assert g["img"].tolist() == (w["img"] + 1).tolist()
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) <= fds_before + 1  # no memfd or socket left open
    if _worker._HAS_MEMFD:  # the big arrays were shared, not pickled: their fds went through
        fds = []
        shared = _worker.to_shared({"a": fw.zeros(20000), "b": fw.zeros(10)}, fds)
        assert isinstance(shared["a"], _worker.SharedArray) and isinstance(shared["b"], fw.Tensor)
        back = _worker.from_shared(shared, fds)
        assert back["a"].tolist() == [0.0] * 20000
