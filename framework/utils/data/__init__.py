"""framework.utils.data: Dataset, TensorDataset, Subset, random_split, samplers, DataLoader
and default_collate, with torch's names and semantics (single process: num_workers=0).
Batches are stacked through registered ops; shuffling uses framework's seeded Generator."""

from .dataloader import DataLoader, default_collate  # noqa: F401
from .dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split  # noqa: F401
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler  # noqa: F401
