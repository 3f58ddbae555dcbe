"""CPU-only device objects so torch code that names devices ports unchanged
(`fw.device("cpu")`, `x.to(device)`, `fw.cuda.is_available()` -> False)."""

from __future__ import annotations


class device:
    """A device (only 'cpu' exists here); equal to the string 'cpu'."""

    def __init__(self, type: str = "cpu", index=None):
        if isinstance(type, device):
            type = type.type
        name = str(type).split(":")[0]
        if name != "cpu":
            raise RuntimeError(f"device {type!r} is not available: framework runs on the CPU")
        self.type = "cpu"
        self.index = index

    def __repr__(self):
        return "device(type='cpu')"

    def __str__(self):
        return "cpu"

    def __eq__(self, other):
        return str(other) == "cpu" or (isinstance(other, device))

    def __hash__(self):
        return hash("cpu")


class _Cuda:
    """framework.cuda: reports that no GPU backend exists."""

    @staticmethod
    def is_available() -> bool:
        return False

    @staticmethod
    def device_count() -> int:
        return 0

    @staticmethod
    def manual_seed(seed) -> None:
        return None

    manual_seed_all = manual_seed


cuda = _Cuda()
