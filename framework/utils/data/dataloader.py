"""DataLoader and default_collate. With num_workers > 0, batches are fetched and collated
in worker processes (_worker.py) and come back in the sampler's order."""

from __future__ import annotations

import collections.abc
import importlib.util
import itertools
import multiprocessing
import multiprocessing.connection
import numbers
import os
import socket
import time
import weakref

import numpy as np

from ... import dtypes as D
from ...creation import from_numpy, tensor
from ...tensor import Tensor
from . import _worker
from .dataset import IterableDataset, TensorDataset
from .sampler import BatchSampler, RandomSampler, SequentialSampler


def _stack(items):
    from ...nn.modules._util import stack

    return stack(items, 0)


def default_collate(batch):
    """Stacks tensors / numpy arrays / numbers into batch tensors, recursing into tuples, lists
    and dicts like torch's default_collate."""
    elem = batch[0]
    if isinstance(elem, Tensor):
        return _stack(batch)
    if isinstance(elem, np.ndarray):
        return _stack([from_numpy(np.ascontiguousarray(b)) for b in batch])
    if isinstance(elem, np.generic):
        return tensor(np.array(batch))
    if isinstance(elem, bool):
        return tensor(batch, dtype=D.bool_)
    if isinstance(elem, numbers.Integral):
        return tensor(batch, dtype=D.int64)
    if isinstance(elem, float):
        return tensor(batch, dtype=D.float64)
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        return {k: default_collate([d[k] for d in batch]) for k in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return type(elem)(*(default_collate(s) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        if any(len(e) != len(elem) for e in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        return [default_collate(s) for s in zip(*batch)]  # a list, like torch (also for tuples)
    raise TypeError(
        f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
        f"found {type(elem)}"
    )


def _default_convert(x):
    return x


class _Fetcher:
    """Fetches one batch, in the main process (num_workers=0) and in workers alike."""

    def __init__(self, loader):
        self.dataset = loader.dataset
        self.iterable = isinstance(loader.dataset, IterableDataset)
        self.auto_collation = loader.batch_sampler is not None or (
            self.iterable and loader.batch_size is not None)
        self.batch_size, self.drop_last = loader.batch_size, loader.drop_last
        self.collate_fn = loader.collate_fn
        # A TensorDataset with the default collate: a batch is one advanced-indexing op per
        # tensor (when the index op is registered) instead of per-sample rows and a stack.
        self.tensor_rows = (
            type(loader.dataset) is TensorDataset
            and self.auto_collation
            and self.collate_fn is default_collate
            and importlib.util.find_spec("framework.ops.gather") is not None
        )
        self._it = None

    def start(self):
        """Starts an epoch: a fresh iterator over an IterableDataset."""
        if self.iterable:
            self._it = iter(self.dataset)

    def fetch(self, indices):
        """The batch of `indices` (map-style) or the stream's next batch (iterable: raises
        _worker.StreamEnd at its end)."""
        if self.iterable:
            if not self.auto_collation:
                try:
                    item = next(self._it)
                except StopIteration:
                    raise _worker.StreamEnd from None
                return self.collate_fn(item)
            items = list(itertools.islice(self._it, self.batch_size))
            if not items or (self.drop_last and len(items) < self.batch_size):
                raise _worker.StreamEnd
            return self.collate_fn(items)
        if not self.auto_collation:
            return self.collate_fn(self.dataset[indices])
        if self.tensor_rows:
            idx = tensor(list(indices), dtype=D.int64)
            return [t[idx] for t in self.dataset.tensors]
        ds = self.dataset
        items = ds.__getitems__(indices) if hasattr(ds, "__getitems__") else [ds[i] for i in indices]
        return self.collate_fn(items)


class DataLoader:
    """Iterates over a dataset in batches (torch.utils.data.DataLoader). num_workers > 0
    fetches and collates batches in that many worker processes (prefetch_factor batches
    ahead per worker); batches come back pickled through pipes, in the sampler's order."""

    def __init__(
        self,
        dataset,
        batch_size=1,
        shuffle=None,
        sampler=None,
        batch_sampler=None,
        num_workers: int = 0,
        collate_fn=None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn=None,
        multiprocessing_context=None,
        generator=None,
        *,
        prefetch_factor=None,
        persistent_workers: bool = False,
        pin_memory_device: str = "",
    ):
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(
                "num_workers option should be non-negative; use num_workers=0 to disable multiprocessing."
            )
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError(
                "prefetch_factor option could only be specified in multiprocessing. "
                "let num_workers > 0 to enable multiprocessing, otherwise set prefetch_factor to None."
            )
        if prefetch_factor is not None and (not isinstance(prefetch_factor, int) or prefetch_factor < 1):
            raise ValueError(f"prefetch_factor option should be a positive integer, got {prefetch_factor!r}")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        if isinstance(dataset, IterableDataset):
            if shuffle not in (None, False):
                raise ValueError(
                    f"DataLoader with IterableDataset: expected unspecified shuffle option, but got shuffle={shuffle}"
                )
            if sampler is not None:
                raise ValueError(
                    f"DataLoader with IterableDataset: expected unspecified sampler option, but got sampler={sampler}"
                )
            if batch_sampler is not None:
                raise ValueError(
                    "DataLoader with IterableDataset: expected unspecified batch_sampler option, "
                    f"but got batch_sampler={batch_sampler}"
                )
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None and (
            batch_size != 1 or shuffle or sampler is not None or drop_last
        ):
            raise ValueError(
                "batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, "
                "and drop_last"
            )
        if isinstance(multiprocessing_context, str):
            multiprocessing_context = multiprocessing.get_context(multiprocessing_context)
        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = 2 if num_workers and prefetch_factor is None else prefetch_factor
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.persistent_workers = persistent_workers
        self.pin_memory = pin_memory  # CPU only: batches are already in host memory
        self.generator = generator
        if isinstance(dataset, IterableDataset):
            sampler = itertools.repeat(None)  # a task per batch; the workers' streams decide the end
        elif sampler is None:
            sampler = (
                RandomSampler(dataset, generator=generator)
                if shuffle
                else SequentialSampler(dataset)
            )
        if batch_size is not None and batch_sampler is None and not isinstance(dataset, IterableDataset):
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        if collate_fn is None:
            auto = batch_sampler is not None or (isinstance(dataset, IterableDataset) and batch_size is not None)
            collate_fn = default_collate if auto else _default_convert
        self.collate_fn = collate_fn
        self._iterator = None

    def _base_seed(self) -> int:
        """The epoch's worker seed base, drawn from the loader's generator (as torch does, in
        both modes, so a seeded shuffle gives the same order with or without workers)."""
        from ...creation import default_generator

        return (self.generator or default_generator).next_seed()

    def __iter__(self):
        if self.num_workers == 0:
            return self._single_process_iter()
        if self.persistent_workers and self._iterator is not None and self._iterator._finalizer.alive:
            self._iterator.reset()  # (an error shut the workers down: start new ones below)
            return self._iterator
        it = _MultiProcessingIter(self)
        if self.persistent_workers:
            self._iterator = it
        return it

    def _single_process_iter(self):
        fetcher = _Fetcher(self)
        self._base_seed()
        fetcher.start()
        indices_iter = iter(self.batch_sampler if self.batch_sampler is not None else self.sampler)

        def batches():
            for indices in indices_iter:
                try:
                    batch = fetcher.fetch(indices)
                except _worker.StreamEnd:
                    return
                yield batch
        return batches()

    def __len__(self) -> int:
        if isinstance(self.dataset, IterableDataset):
            n = len(self.dataset)  # a TypeError when the stream has no length, as in torch
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        return len(self.sampler)


class _MultiProcessingIter:
    """Batches from num_workers worker processes, in the sampler's order.

    Tasks (send index, indices) go round-robin to the workers' task queues, prefetch_factor
    per worker ahead; results come back over one socket per worker (with the memfds of big
    arrays, _worker.to_shared) and wait in `_tasks` until their turn. Waiting watches the
    sockets and the processes' sentinels together, so a worker that dies is reported at
    once (not after a poll), and `timeout` bounds each wait."""

    def __init__(self, loader: DataLoader):
        self._loader = loader
        self._fetcher = _Fetcher(loader)
        self._num_workers = loader.num_workers
        self._timeout = loader.timeout
        self._persistent = loader.persistent_workers
        ctx = loader.multiprocessing_context or multiprocessing
        base = loader._base_seed()
        self._task_queues, self._conns, self._socks, self._workers = [], [], [], []
        self._finalizer = weakref.finalize(self, _stop_workers, self._task_queues, self._conns, self._socks,
                                           self._workers)
        try:
            for w in range(self._num_workers):
                q = ctx.Queue()
                reader, writer = ctx.Pipe(duplex=True)  # a socket pair: it carries the batches' fds
                p = ctx.Process(
                    target=_worker.worker_loop,
                    args=(self._fetcher, q, writer, (base + w) & ((1 << 63) - 1), loader.worker_init_fn, w,
                          self._num_workers),
                    daemon=True,
                )
                p.start()
                writer.close()  # the worker holds it: a dead worker's socket reads EOF here
                self._task_queues.append(q)
                self._conns.append(reader)
                self._socks.append(socket.fromfd(reader.fileno(), socket.AF_UNIX, socket.SOCK_STREAM)
                                   if _worker._HAS_MEMFD else None)
                self._workers.append(p)
        except BaseException:
            self._shutdown_workers()
            raise
        self._send_idx = 0  # task ids grow across epochs (persistent workers): a result with an id
        self._start_epoch()  # below the epoch's first is a stale one from an epoch cut short

    def _start_epoch(self):
        loader = self._loader
        self._epoch_first = self._rcvd_idx = self._send_idx
        self._tasks = {}  # send index -> [worker] or [worker, data]
        self._active = [True] * self._num_workers
        self._next_worker = 0
        self._indices = iter(loader.batch_sampler if loader.batch_sampler is not None else loader.sampler)
        for _ in range(loader.prefetch_factor * self._num_workers):
            self._put_task()

    def reset(self):
        """A new epoch on the same (persistent) workers."""
        self._loader._base_seed()
        if self._fetcher.iterable:
            for q in self._task_queues:
                q.put((-1, None))
        self._start_epoch()

    def _put_task(self):
        if not any(self._active):
            return
        try:
            indices = next(self._indices)
        except StopIteration:
            return
        while not self._active[self._next_worker]:
            self._next_worker = (self._next_worker + 1) % self._num_workers
        w = self._next_worker
        self._next_worker = (w + 1) % self._num_workers
        self._task_queues[w].put((self._send_idx, indices))
        self._tasks[self._send_idx] = [w]
        self._send_idx += 1

    def __iter__(self):
        return self

    def __next__(self):
        while True:
            while self._rcvd_idx < self._send_idx:  # skip tasks of workers whose stream ended
                info = self._tasks[self._rcvd_idx]
                if len(info) == 2 or self._active[info[0]]:
                    break
                del self._tasks[self._rcvd_idx]
                self._rcvd_idx += 1
            else:
                if not self._persistent:
                    self._shutdown_workers()
                raise StopIteration
            info = self._tasks[self._rcvd_idx]
            if len(info) == 2:
                del self._tasks[self._rcvd_idx]
                self._rcvd_idx += 1
                return self._process(info[1])
            idx, data = self._get()
            if idx < self._epoch_first:
                continue  # from an epoch cut short
            if isinstance(data, _worker.IterableStop):
                self._active[data.worker_id] = False
                continue
            self._tasks[idx].append(data)

    def _process(self, data):
        self._put_task()
        if isinstance(data, _worker.ExceptionWrapper):
            data.reraise()
        return data

    def _get(self):
        """The next (send index, data) from any worker."""
        timeout = self._timeout if self._timeout > 0 else None
        sentinels = {p.sentinel: p for p in self._workers}
        while True:
            alive = [c for c in self._conns if not c.closed]
            ready = multiprocessing.connection.wait(alive + list(sentinels), timeout)
            if not ready:
                self._shutdown_workers(grace=0.1)
                raise RuntimeError(f"DataLoader timed out after {self._timeout} seconds")
            for r in ready:  # data first: a worker may send and then die
                if r in sentinels:
                    continue
                try:
                    idx, data, nfds = r.recv()
                    if nfds:  # the batch's shared arrays: their memfds follow the message
                        _, fds, _, _ = socket.recv_fds(self._socks[self._conns.index(r)], 1, nfds)
                        if len(fds) != nfds:  # the worker died between the two
                            for fd in fds:
                                os.close(fd)
                            raise EOFError
                        data = _worker.from_shared(data, fds)
                    return idx, data
                except EOFError:
                    r.close()  # its worker is gone; its sentinel tells how
            dead = [p for p in self._workers if p.exitcode is not None]
            if dead:
                desc = ", ".join(f"pid {p.pid}, exit code {p.exitcode}" for p in dead)
                self._shutdown_workers(grace=0.1)
                raise RuntimeError(f"DataLoader worker ({desc}) exited unexpectedly")

    def _shutdown_workers(self, grace: float = _worker._PARENT_CHECK_S):
        stop = self._finalizer.detach()  # None once done: shutting down runs once
        if stop is not None:
            _, fn, args, _ = stop
            fn(*args, grace=grace)

    def __len__(self):
        return len(self._loader)


def _stop_workers(task_queues, conns, socks, workers, grace=_worker._PARENT_CHECK_S):
    """Tells the workers to end, waits up to `grace` s in all, then terminates the rest.
    Run by a weakref.finalize, which keeps these objects alive until it has run: a __del__
    on the iterator could run after the garbage collector finalized them."""
    for q in task_queues:
        try:
            q.put(None)
        except (OSError, ValueError):
            pass
    for c in conns + [s for s in socks if s is not None]:
        c.close()  # a worker blocked sending a batch gets a broken pipe
    deadline = time.monotonic() + grace
    for p in workers:
        p.join(timeout=max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.terminate()
            p.join()
    for q in task_queues:
        q.cancel_join_thread()
        q.close()
