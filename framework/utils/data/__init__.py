"""framework.utils.data: Dataset, TensorDataset, Subset, random_split, samplers, DataLoader
and default_collate, with torch's names and semantics (num_workers > 0: worker processes).
Batches are stacked through registered ops; shuffling uses framework's seeded Generator."""

from ._worker import WorkerInfo, get_worker_info  # noqa: F401
from .dataloader import DataLoader, default_collate  # noqa: F401
from .dataset import (  # noqa: F401
    ChainDataset, ConcatDataset, Dataset, IterableDataset, Subset, TensorDataset, random_split,
)
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler  # noqa: F401
