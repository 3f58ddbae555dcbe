"""framework.utils: data loading (utils.data) and torch state-dict conversion."""

from ..serialization import from_torch_state_dict  # noqa: F401
from . import data  # noqa: F401
