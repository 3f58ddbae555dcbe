"""Benchmark models written once against a torch-compatible library: `build_*(lib)` takes
`torch` or `framework` (the port-by-changing-the-import promise), so both frameworks run the
same architecture; weights are copied from the torch instance."""

from __future__ import annotations

import math


def mlp(lib):
    nn = lib.nn
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))


def small_cnn(lib):
    nn = lib.nn
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 10),
    )


def resnet18(lib, num_classes=1000, widths=(64, 128, 256, 512)):
    """ResNet-18: a 7x7 stem, max pool, two basic blocks per stage (stride 2 from the second
    stage on), global average and a linear head; tests shrink it with narrower `widths`."""
    nn = lib.nn

    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU()
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            idt = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + idt)

    class ResNet18(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(widths[0])
            self.relu = nn.ReLU()
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            cin = widths[0]
            for i, cout in enumerate(widths):
                stride = 1 if i == 0 else 2
                setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
                cin = cout
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(widths[-1], num_classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            for i in range(len(widths)):
                x = getattr(self, f"layer{i + 1}")(x)
            return self.fc(lib.flatten(self.avgpool(x), 1))

    return ResNet18()


def transformer_encoder(lib, d_model=256, nhead=4, ff=1024, layers=4):
    nn = lib.nn
    layer = nn.TransformerEncoderLayer(d_model, nhead, ff, dropout=0.0, batch_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False) if lib.__name__ == "torch" \
        else nn.TransformerEncoder(layer, layers)


def gpt(lib, d_model=256, nhead=4, layers=4, vocab=1000, ctx=128):
    nn = lib.nn
    F = lib.nn.functional

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1 = nn.LayerNorm(d_model)
            self.qkv = nn.Linear(d_model, 3 * d_model)
            self.proj = nn.Linear(d_model, d_model)
            self.ln2 = nn.LayerNorm(d_model)
            self.fc1 = nn.Linear(d_model, 4 * d_model)
            self.fc2 = nn.Linear(4 * d_model, d_model)

        def forward(self, x):
            b, t, c = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
            q = q.view(b, t, nhead, c // nhead).transpose(1, 2)
            k = k.view(b, t, nhead, c // nhead).transpose(1, 2)
            v = v.view(b, t, nhead, c // nhead).transpose(1, 2)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            y = y.transpose(1, 2).reshape(b, t, c)
            x = x + self.proj(y)
            return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.Sequential(*[Block() for _ in range(layers)])
            self.ln_f = nn.LayerNorm(d_model)
            self.head = nn.Linear(d_model, vocab)

        def forward(self, x):  # x: already-embedded activations (b, t, d_model)
            return self.head(self.ln_f(self.blocks(x)))

    _ = math
    return GPT()


MODELS = {
    # name: (builder, input shape, batch sizes for inference)
    "mlp": (mlp, (784,), (1, 64)),
    "small_cnn": (small_cnn, (1, 28, 28), (1, 64)),
    "resnet18": (resnet18, (3, 224, 224), (1,)),
    "transformer": (transformer_encoder, (128, 256), (1,)),
    "gpt": (gpt, (128, 256), (1,)),
}
TRAIN_MODELS = {"mlp": 64, "small_cnn": 64}
