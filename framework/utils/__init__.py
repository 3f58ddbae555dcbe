"""framework.utils: data loading (utils.data), activation checkpointing (utils.checkpoint) and
torch state-dict conversion."""

from ..serialization import from_torch_state_dict  # noqa: F401
from . import checkpoint, data  # noqa: F401
