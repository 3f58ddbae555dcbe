"""DataLoader and default_collate (single-process; num_workers must be 0)."""

from __future__ import annotations

import collections.abc
import importlib.util
import numbers

import numpy as np

from ... import dtypes as D
from ...creation import from_numpy, tensor
from ...tensor import Tensor
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


class DataLoader:
    """Iterates over a dataset in batches (torch.utils.data.DataLoader, num_workers=0)."""

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
        if num_workers != 0:
            raise NotImplementedError("DataLoader: only num_workers=0 is supported")
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None and (
            batch_size != 1 or shuffle or sampler is not None or drop_last
        ):
            raise ValueError(
                "batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, "
                "and drop_last"
            )
        self.dataset = dataset
        self.num_workers = num_workers
        self.generator = generator
        if sampler is None:
            sampler = (
                RandomSampler(dataset, generator=generator)
                if shuffle
                else SequentialSampler(dataset)
            )
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        if collate_fn is None:
            collate_fn = default_collate if batch_sampler is not None else _default_convert
        self.collate_fn = collate_fn

    def _fetch(self, indices):
        ds = self.dataset
        if hasattr(ds, "__getitems__"):
            return ds.__getitems__(indices)
        return [ds[i] for i in indices]

    def _batched_tensor_dataset(self) -> bool:
        """A TensorDataset with the default collate: a batch is one advanced-indexing op per
        tensor (when the index op is registered) instead of per-sample rows and a stack."""
        from .dataset import TensorDataset

        return (
            type(self.dataset) is TensorDataset
            and self.collate_fn is default_collate
            and importlib.util.find_spec("framework.ops.gather") is not None
        )

    def __iter__(self):
        if self.batch_sampler is None:
            for i in self.sampler:
                yield self.collate_fn(self.dataset[i])
            return
        if self._batched_tensor_dataset():
            for indices in self.batch_sampler:
                idx = tensor(list(indices), dtype=D.int64)
                yield [t[idx] for t in self.dataset.tensors]
            return
        for indices in self.batch_sampler:
            yield self.collate_fn(self._fetch(indices))

    def __len__(self) -> int:
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        return len(self.sampler)
