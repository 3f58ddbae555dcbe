"""framework.optim: optimizers (SGD, Adam, AdamW, RMSprop, Adagrad on fused C++ updates;
Adamax, NAdam, RAdam, Adadelta from elementwise ops) and lr_scheduler, with torch's names,
hyperparameters, state_dict layout and update math."""

from . import lr_scheduler  # noqa: F401
from .adam import Adam, AdamW  # noqa: F401
from .extra import Adadelta, Adamax, NAdam, RAdam  # noqa: F401
from .optimizer import Optimizer  # noqa: F401
from .rmsprop import Adagrad, RMSprop  # noqa: F401
from .sgd import SGD  # noqa: F401
