"""framework.optim: optimizers (SGD, Adam, AdamW, RMSprop, Adagrad) and lr_scheduler, with
torch's names, hyperparameters, state_dict layout and update math (fused C++ kernels)."""

from . import lr_scheduler  # noqa: F401
from .adam import Adam, AdamW  # noqa: F401
from .optimizer import Optimizer  # noqa: F401
from .rmsprop import Adagrad, RMSprop  # noqa: F401
from .sgd import SGD  # noqa: F401
