"""DataLoader worker processes: what a worker runs, what it can ask about itself
(get_worker_info), and how its exceptions travel back to the main process.

A worker takes tasks (send index, indices; a negative index restarts its IterableDataset
stream for a new epoch) from its own task queue, fetches and collates the batch, and sends
(send index, batch, fd count) back over its own socket. Tensors and arrays of 64 KiB or
more are copied into memfds whose descriptors follow the message (SCM_RIGHTS), so the main
process maps them instead of unpickling a copy. Sending pickles in the worker itself, so a
batch that cannot be pickled comes back as that error instead of being dropped by a
queue's feeder thread (which would leave the main process waiting).
"""

from __future__ import annotations

import mmap
import os
import queue
import random
import socket
import sys
import traceback
from dataclasses import dataclass

import numpy as np

# How often (s) a worker waiting for a task checks that its parent is still alive: a
# SIGKILLed main process cannot tell its workers to stop.
_PARENT_CHECK_S = 5.0


@dataclass(frozen=True)
class WorkerInfo:
    """What a DataLoader worker knows about itself (torch.utils.data.get_worker_info())."""

    id: int
    num_workers: int
    seed: int
    dataset: object


_worker_info: WorkerInfo | None = None


def get_worker_info() -> WorkerInfo | None:
    """In a DataLoader worker process: its id, the number of workers, its seed and its copy
    of the dataset (to shard an IterableDataset). None in the main process."""
    return _worker_info


class ExceptionWrapper:
    """An exception raised in a worker, carried to the main process as its type and text
    (the exception object itself may not pickle)."""

    def __init__(self, where: str, exc_info=None):
        exc_info = exc_info or sys.exc_info()
        self.exc_type = exc_info[0]
        self.exc_msg = "".join(traceback.format_exception(*exc_info))
        self.where = where

    def reraise(self):
        """Raises the worker's exception (same type when it can be built from a message)."""
        msg = f"Caught {self.exc_type.__name__} {self.where}.\nOriginal {self.exc_msg}"
        if self.exc_type is KeyError:
            msg = KeyErrorMessage(msg)  # KeyError quotes its argument: keep the text readable
        try:
            exc = self.exc_type(msg)
        except Exception:
            raise RuntimeError(msg) from None
        raise exc


class KeyErrorMessage(str):
    """A str whose repr is itself, so a KeyError built from it prints the traceback text."""

    def __repr__(self):
        return self


class StreamEnd(Exception):
    """Raised by a fetch at the end of an IterableDataset's stream."""


class IterableStop:
    """Sent by a worker whose IterableDataset iterator is exhausted."""

    def __init__(self, worker_id: int):
        self.worker_id = worker_id


# Arrays of at least this many bytes travel in shared memory (a memfd whose descriptor
# follows the message over the socket), not pickled through it; at most _MAX_FDS per batch.
SHARE_MIN_BYTES = 1 << 16
_MAX_FDS = 64


class SharedArray:
    """Stands in a message for an array whose bytes are in a memfd sent after it."""

    __slots__ = ("shape", "dtype", "is_tensor")

    def __init__(self, shape, dtype, is_tensor):
        self.shape, self.dtype, self.is_tensor = shape, dtype, is_tensor

    def __reduce__(self):
        return SharedArray, (self.shape, self.dtype, self.is_tensor)


def _map(data, fn):
    """data with fn applied to its tensors and arrays, through lists, tuples and dicts."""
    from ...tensor import Tensor

    if isinstance(data, (Tensor, np.ndarray, SharedArray)):
        return fn(data)
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(_map(v, fn) for v in data))
    if isinstance(data, (list, tuple)):
        return type(data)(_map(v, fn) for v in data)
    if isinstance(data, dict):
        return type(data)((k, _map(v, fn)) for k, v in data.items())
    return data


def to_shared(data, fds: list):
    """data with its big tensors and arrays copied into memfds (appended to fds)."""
    from ...tensor import Tensor

    def share(v):
        is_tensor = isinstance(v, Tensor)
        if is_tensor and v.requires_grad:
            return v
        arr = v.numpy() if is_tensor else v
        if arr.nbytes < SHARE_MIN_BYTES or arr.dtype.hasobject or len(fds) >= _MAX_FDS:
            return v
        try:
            fd = os.memfd_create("framework-batch", os.MFD_CLOEXEC)
        except OSError:  # out of descriptors or memory for one: this array goes pickled
            return v
        try:
            os.ftruncate(fd, arr.nbytes)
            with mmap.mmap(fd, arr.nbytes, flags=_MAP_FLAGS) as mm:
                dst = np.frombuffer(mm, arr.dtype, arr.size).reshape(arr.shape)
                dst[...] = arr
                del dst
        except OSError:
            os.close(fd)
            return v
        except BaseException:
            os.close(fd)
            raise
        fds.append(fd)
        return SharedArray(arr.shape, arr.dtype.str, is_tensor)

    return _map(data, share) if _HAS_MEMFD else data


def from_shared(data, fds: list):
    """to_shared's inverse in the receiving process: maps each memfd (and closes it)."""
    from ...creation import from_numpy

    it = iter(fds)

    def restore(v):
        if not isinstance(v, SharedArray):
            return v
        fd = next(it)
        dt = np.dtype(v.dtype)
        n = int(np.prod(v.shape)) * dt.itemsize
        try:
            mm = mmap.mmap(fd, n, flags=_MAP_FLAGS)
        finally:
            os.close(fd)
        arr = np.frombuffer(mm, dt, n // dt.itemsize).reshape(v.shape)  # keeps mm mapped
        return from_numpy(arr) if v.is_tensor else arr

    return _map(data, restore)


_HAS_MEMFD = hasattr(os, "memfd_create") and hasattr(socket, "send_fds")
# MAP_POPULATE: the pages are faulted in by the one mmap call, not one fault per page later
_MAP_FLAGS = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)


def _send(conn, sock, item, worker_id: int) -> None:
    """Sends (send index, data, number of fds), then the fds of its shared arrays."""
    fds: list = []
    try:
        try:
            msg = (item[0], to_shared(item[1], fds), len(fds))
            conn.send(msg)
        except (BrokenPipeError, EOFError, OSError):
            raise  # the main process stopped listening: the worker ends
        except Exception:  # the batch did not pickle: send why instead
            for fd in fds:
                os.close(fd)
            fds = []
            conn.send((item[0], ExceptionWrapper(f"in DataLoader worker process {worker_id} "
                                                 "while sending a batch to the main process"), 0))
        if fds:
            socket.send_fds(sock, [b"F"], fds)
    finally:
        for fd in fds:
            os.close(fd)


def worker_loop(fetcher, task_queue, result_conn, seed: int, init_fn, worker_id: int,
                num_workers: int) -> None:
    """A worker process's main: seeds its RNGs, runs init_fn, then answers tasks until it
    gets None (or its parent dies)."""
    global _worker_info
    import framework as fw

    parent = os.getppid()
    sock = socket.fromfd(result_conn.fileno(), socket.AF_UNIX, socket.SOCK_STREAM) if _HAS_MEMFD else None
    try:
        fw.set_num_threads(1)  # the main process and the other workers share the cores
        fw.manual_seed(seed)  # each worker draws its own random streams (augmentations)
        random.seed(seed)
        np.random.seed(seed & 0xFFFFFFFF)
        _worker_info = WorkerInfo(worker_id, num_workers, seed, fetcher.dataset)
        init_error = None
        try:
            if init_fn is not None:
                init_fn(worker_id)
            fetcher.start()
        except Exception:
            init_error = ExceptionWrapper(f"in DataLoader worker process {worker_id}")
        exhausted = False
        while True:
            try:
                task = task_queue.get(timeout=_PARENT_CHECK_S)
            except queue.Empty:
                if os.getppid() != parent:
                    return
                continue
            if task is None:
                return
            idx, indices = task
            if idx < 0:  # a new epoch on persistent workers: a fresh stream
                fetcher.start()
                exhausted = False
                continue
            if init_error is not None:
                data, init_error = init_error, None
            elif exhausted:
                data = IterableStop(worker_id)
            else:
                try:
                    data = fetcher.fetch(indices)
                except StreamEnd:
                    exhausted, data = True, IterableStop(worker_id)
                except Exception:
                    data = ExceptionWrapper(f"in DataLoader worker process {worker_id}")
            _send(result_conn, sock, (idx, data), worker_id)
    except (KeyboardInterrupt, BrokenPipeError, EOFError):
        pass  # the main process is gone or shutting down
    finally:
        if sock is not None:
            sock.close()
        result_conn.close()
