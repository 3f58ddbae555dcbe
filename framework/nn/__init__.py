"""framework.nn: Module, Parameter, layers, functional, init and utils, mirroring torch.nn so
that torch model code ports by changing the import."""

from . import functional, init, utils  # noqa: F401
from .modules import *
from .modules.module import Module  # noqa: F401
from .modules.transformer import NonDynamicallyQuantizableLinear  # noqa: F401
from .parameter import Buffer, Parameter  # noqa: F401
