"""torch.nn.utils.parametrize: a module's tensor computed on access from stored originals,
e.g. a weight kept as a direction and a norm (parametrizations.weight_norm).

register_parametrization moves the tensor into module.parametrizations[name] (a
ParametrizationList holding `original`, or `original0`, `original1`, ... when the
parametrization's right_inverse returns several tensors) and gives the module a class of
its own (Parametrized<Class>) with a property under the tensor's name that runs the
parametrizations on the originals. State dict keys are torch's
(`parametrizations.weight.original0`, ...)."""

from __future__ import annotations

from ... import autograd as AG
from ..modules.container import ModuleDict, ModuleList
from ..modules.module import Module
from ..parameter import Parameter

__all__ = ["register_parametrization", "is_parametrized", "remove_parametrizations", "ParametrizationList"]


class ParametrizationList(ModuleList):
    """The parametrizations of one tensor and the original(s) they are computed from."""

    def __init__(self, modules, original, unsafe=False):
        super().__init__(modules)
        self.unsafe = unsafe
        first = modules[0]
        with AG.no_grad():
            new = first.right_inverse(original) if hasattr(first, "right_inverse") else original
        self.is_tensor = not isinstance(new, (tuple, list))
        if self.is_tensor:
            self.original = Parameter(new.detach(), requires_grad=original.requires_grad)
            self.ntensors = 1
        else:
            self.ntensors = len(new)
            for i, t in enumerate(new):
                setattr(self, f"original{i}", Parameter(t.detach(), requires_grad=original.requires_grad))

    def right_inverse(self, value) -> None:
        """Sets the originals so that the parametrized tensor becomes `value`."""
        with AG.no_grad():
            for m in reversed(list(self)):
                value = m.right_inverse(value) if hasattr(m, "right_inverse") else value
            if self.is_tensor:
                self.original.copy_(value)
            else:
                for i, t in enumerate(value):
                    getattr(self, f"original{i}").copy_(t)

    def forward(self):
        mods = list(self)
        if self.is_tensor:
            x = mods[0](self.original)
        else:
            x = mods[0](*[getattr(self, f"original{i}") for i in range(self.ntensors)])
        for m in mods[1:]:
            x = m(x)
        return x


def is_parametrized(module: Module, tensor_name=None) -> bool:
    """Whether module (or its tensor_name) has parametrizations."""
    p = module.__dict__.get("_modules", {}).get("parametrizations")
    if not isinstance(p, ModuleDict):
        return False
    return len(p) > 0 if tensor_name is None else tensor_name in p


def _make_property(name):
    def get(self):
        return self.parametrizations[name]()

    def set_(self, value):
        self.parametrizations[name].right_inverse(value)

    return property(get, set_)


def register_parametrization(module: Module, tensor_name: str, parametrization: Module, *, unsafe=False):
    """Computes module.<tensor_name> as parametrization(original) from now on; a second
    call on the same tensor chains another parametrization after the first."""
    if is_parametrized(module, tensor_name):
        module.parametrizations[tensor_name].append(parametrization)
        return module
    if tensor_name in module._parameters:
        original = module._parameters.pop(tensor_name)
    elif tensor_name in module._buffers:
        original = module._buffers.pop(tensor_name)
    else:
        raise ValueError(f"Module '{module}' parametrization target '{tensor_name}' is not a parameter or buffer")
    if not is_parametrized(module):
        cls = module.__class__
        module.__class__ = type(f"Parametrized{cls.__name__}", (cls,), {})
        module.parametrizations = ModuleDict()
    module.parametrizations[tensor_name] = ParametrizationList([parametrization], original, unsafe=unsafe)
    setattr(module.__class__, tensor_name, _make_property(tensor_name))
    return module


def remove_parametrizations(module: Module, tensor_name: str, leave_parametrized: bool = True):
    """Makes tensor_name a plain parameter again: its current value (leave_parametrized) or
    the single original."""
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"Module {module} does not have a parametrization on {tensor_name}")
    plist = module.parametrizations[tensor_name]
    with AG.no_grad():
        if leave_parametrized:
            value = Parameter(getattr(module, tensor_name).detach())
        elif plist.is_tensor:
            value = plist.original
        else:
            raise ValueError("Cannot leave unparametrized (`leave_parametrized=False`) a tensor that is "
                             "parametrized in terms of a sequence of tensors.")
    delattr(module.__class__, tensor_name)
    del module.parametrizations[tensor_name]
    module.register_parameter(tensor_name, value)
    if not is_parametrized(module):
        del module._modules["parametrizations"]
        module.__class__ = module.__class__.__bases__[0]
    return module
