"""framework: PyTorch-style eager tensors and autograd over one C++ kernel table, with a
graph mode that runs the same kernels. `import framework as fw` (or `as torch`)."""

from __future__ import annotations

import ctypes as _ctypes
import os as _os

# The BLAS lives in the scipy_openblas32 package; load it before the extension so editable
# installs (where the extension's rpath does not reach it) work too.

def _load_blas():
    # OpenBLAS starts worker threads as the library loads unless OPENBLAS_NUM_THREADS is 1,
    # and an idle worker spins for a while after it starts, taking a core from framework's
    # own pool (which owns the threads; BLAS always runs single-threaded here). So the
    # library loads with it set to 1; the variable is restored at once, so numpy (already
    # loaded) and subprocesses see the environment as it was.
    # NOTE: importing scipy_openblas32 already loads the library.
    old = _os.environ.get("OPENBLAS_NUM_THREADS")
    if old is None:
        _os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        import scipy_openblas32 as sob

        _ctypes.CDLL(_os.path.join(sob.get_lib_dir(), sob.get_library(True)), mode=_ctypes.RTLD_GLOBAL)
    finally:
        if old is None:
            del _os.environ["OPENBLAS_NUM_THREADS"]


_load_blas()

from . import _C  # noqa: E402
from . import dtypes as _dtypes  # noqa: E402
from .dtypes import (bool_ as bool, dtype, float32, float64, int32, int64,  # noqa: E402,F401
                     get_default_dtype, set_default_dtype, promote_types)
from .tensor import Size, Tensor  # noqa: E402,F401
from . import ops as _ops  # noqa: E402
from .ops.elementwise import *  # noqa: E402,F401,F403
from .ops.reduce import *  # noqa: E402,F401,F403
from .ops.linalg import *  # noqa: E402,F401,F403
from .ops.shape import *  # noqa: E402,F401,F403
from .ops.conv import *  # noqa: E402,F401,F403
from .ops.pool import *  # noqa: E402,F401,F403
from .ops.fused import *  # noqa: E402,F401,F403
from .ops.layout import *  # noqa: E402,F401,F403
from .ops.softmax import *  # noqa: E402,F401,F403
from .ops.norm import *  # noqa: E402,F401,F403
# NN ops torch also has at top level (the rest live in framework.nn.functional)
from .ops.dropout import dropout  # noqa: E402,F401
from .ops.embedding import embedding, embedding_renorm_  # noqa: E402,F401
from .ops.loss import binary_cross_entropy_with_logits  # noqa: E402,F401
from .ops.movement import *  # noqa: E402,F401,F403
from .ops.gather import *  # noqa: E402,F401,F403
from .ops.sort import *  # noqa: E402,F401,F403
from .ops.composites import *  # noqa: E402,F401,F403
from .ops.lapack import *  # noqa: E402,F401,F403
from .creation import (Generator, arange, as_tensor, default_generator, empty,  # noqa: E402,F401
                       empty_like, eye, from_numpy, full, full_like, initial_seed, linspace,
                       manual_seed, ones, ones_like, rand, rand_like, randint, randint_like,
                       randn, randn_like, randperm, tensor, zeros, zeros_like)
from . import autograd  # noqa: E402,F401
from .autograd import (enable_grad, inference_mode, is_grad_enabled, no_grad,  # noqa: E402,F401
                       set_grad_enabled)
from . import _tensor_methods  # noqa: E402,F401
from .device import cuda, device  # noqa: E402,F401
from . import onnx  # noqa: E402,F401  (lazy: imports the onnx package only when used)
from . import distributions, linalg  # noqa: E402,F401

float = float32
double = float64
long = int64
int = int32
float16 = None  # not supported; present so `fw.float16` fails clearly where used

_ops._bind_methods()
from . import jit  # noqa: E402,F401  (graph mode: fw.jit.trace)
from . import profiler  # noqa: E402,F401  (fw.profiler.profile)

from . import nn, optim, utils  # noqa: E402,F401
from .serialization import load, load_torch_checkpoint, save  # noqa: E402,F401


def set_num_threads(n: int) -> None:
    """Sets the threads used by kernels, the graph runtime and OpenBLAS (one owner)."""
    _C.set_num_threads(n)


def get_num_threads() -> int:
    """The number of threads kernels use."""
    return _C.get_num_threads()


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def numel(t: Tensor) -> int:
    return t.numel()


def broadcast_shapes(*shapes):
    from .ops._common import broadcast_shapes as _bs

    return Size(_bs(*[tuple(s) for s in shapes]))


__version__ = "0.1.0"
