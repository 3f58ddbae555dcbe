"""Small models written with framework functions, shared by the jit tests (framework.nn-free,
so they only depend on the ops)."""

import numpy as np

import framework as fw


class MLP:
    """Linear -> ReLU -> Linear, with named parameters like an nn.Module."""

    training = False

    def __init__(self, d_in=8, d_hidden=16, d_out=4, seed=0):
        rng = np.random.default_rng(seed)
        self.params = {
            "fc1.weight": fw.from_numpy(rng.standard_normal((d_hidden, d_in)).astype(np.float32) * 0.3),
            "fc1.bias": fw.from_numpy(rng.standard_normal(d_hidden).astype(np.float32) * 0.1),
            "fc2.weight": fw.from_numpy(rng.standard_normal((d_out, d_hidden)).astype(np.float32) * 0.3),
            "fc2.bias": fw.from_numpy(rng.standard_normal(d_out).astype(np.float32) * 0.1),
        }

    def named_parameters(self):
        return list(self.params.items())

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        p = self.params
        h = fw.relu(fw.linear(x, p["fc1.weight"], p["fc1.bias"]))
        return fw.linear(h, p["fc2.weight"], p["fc2.bias"])


class ReshapeNet(MLP):
    """Uses x.shape[0] in shape arithmetic (view(b, -1), reshape(b, t, h))."""

    def __init__(self):
        super().__init__(d_in=12, d_hidden=12, d_out=3)

    def forward(self, x):  # x: (B, 3, 4)
        b = x.shape[0]
        h = x.view(b, -1)
        h = fw.relu(fw.linear(h, self.params["fc1.weight"], self.params["fc1.bias"]))
        h = h.reshape(b, 3, 4).transpose(1, 2).reshape(b, x.size(1) * 4)
        y = fw.linear(h, self.params["fc2.weight"], self.params["fc2.bias"])
        return fw.tanh(y) * 0.5 + fw.sigmoid(y)


def gelu_tanh_mlp(x, w1, b1, w2):
    """A block written from primitives: x @ w1^T + b1 -> tanh-gelu (as a formula) -> @ w2^T."""
    h = x @ w1.T + b1
    g = 0.5 * h * (1.0 + fw.tanh(0.7978845608 * (h + 0.044715 * h * h * h)))
    return g @ w2.T
