"""DataLoader worker processes: what a worker runs, what it can ask about itself
(get_worker_info), and how its exceptions travel back to the main process.

A worker takes tasks (send index, indices; a negative index restarts its IterableDataset
stream for a new epoch) from its own task queue, fetches and collates
the batch, and sends (send index, batch) back over its own result pipe. Sending pickles in
the worker itself, so a batch that cannot be pickled comes back as that error instead of
being dropped by a queue's feeder thread (which would leave the main process waiting).
"""

from __future__ import annotations

import os
import queue
import random
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


def _send(conn, item, worker_id: int) -> None:
    try:
        conn.send(item)
    except (BrokenPipeError, EOFError, OSError):
        raise  # the main process stopped listening: the worker ends
    except Exception:  # the batch did not pickle: send why instead
        conn.send((item[0], ExceptionWrapper(f"in DataLoader worker process {worker_id} "
                                             "while sending a batch to the main process")))


def worker_loop(fetcher, task_queue, result_conn, seed: int, init_fn, worker_id: int,
                num_workers: int) -> None:
    """A worker process's main: seeds its RNGs, runs init_fn, then answers tasks until it
    gets None (or its parent dies)."""
    global _worker_info
    import framework as fw

    parent = os.getppid()
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
            _send(result_conn, (idx, data), worker_id)
    except (KeyboardInterrupt, BrokenPipeError, EOFError):
        pass  # the main process is gone or shutting down
    finally:
        result_conn.close()
