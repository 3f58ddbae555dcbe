"""Porting torch code: the same model class is built with torch and with framework (the only
difference is the module passed in as `lib`), framework loads the torch weights, and both
give the same outputs and gradients.

    python examples/port_from_torch.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np
import torch

import framework as fw


def build(lib):
    """Plain torch model code, written against `lib` instead of `torch`."""
    nn = lib.nn
    F = lib.nn.functional

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
            self.bn1 = nn.BatchNorm2d(8)
            self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
            self.pool = nn.AdaptiveAvgPool2d((2, 2))
            self.fc = nn.Linear(16 * 2 * 2, 32)
            self.attn = nn.MultiheadAttention(32, 4, batch_first=True)
            self.norm = nn.LayerNorm(32)
            self.head = nn.Linear(32, 10)

        def forward(self, x):
            x = F.relu(self.bn1(self.conv1(x)))
            x = F.gelu(self.conv2(x))
            x = self.fc(lib.flatten(self.pool(x), 1)).unsqueeze(1)  # (N, 1, 32)
            a, _ = self.attn(x, x, x)
            return self.head(self.norm(x + a).squeeze(1))

    return Net()


def main():
    torch.manual_seed(0)
    t_model = build(torch)
    f_model = build(fw)
    print(f_model)
    f_model.load_state_dict(t_model.state_dict())  # torch tensors load directly

    x = np.random.default_rng(0).standard_normal((4, 1, 8, 8)).astype(np.float32)
    for mode in ("train", "eval"):
        getattr(t_model, mode)()
        getattr(f_model, mode)()
        t_out = t_model(torch.from_numpy(x))
        f_out = f_model(fw.from_numpy(x))
        diff = np.abs(f_out.detach().numpy() - t_out.detach().numpy()).max()
        print(f"{mode:5s}: output {tuple(f_out.shape)}, max |framework - torch| = {diff:.2e}")
        assert diff < 1e-4
    t_out.sum().backward()
    f_out.sum().backward()
    worst = max(
        np.abs(fp.grad.numpy() - tp.grad.numpy()).max()
        for (_, fp), (_, tp) in zip(f_model.named_parameters(), t_model.named_parameters())
    )
    print(f"grads: max |framework - torch| over all parameters = {worst:.2e}")
    assert worst < 1e-3
    print("identical outputs: OK")


if __name__ == "__main__":
    main()
