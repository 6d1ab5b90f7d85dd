"""Write tests/fixtures/import/: small PyTorch networks exported by torch.onnx, for the CI tests of
`cnndsl import` (tests/test_import.py), which need neither torch nor a network.

Each network is exported by the TorchScript exporter at several opsets (9: pads, Clip bounds and
Flatten as older opsets write them) and by the dynamo exporter (optimised: batchnorms folded; and
raw). counts.json records torchvision-style parameter counts: the module's own, or, for an
optimised dynamo export, what the file keeps.

    PYTHONPATH=. /path/to/torch-venv/bin/python tools/import_fixtures.py
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "import"
sys.path.insert(0, str(Path(__file__).resolve().parent))


def networks():
    import torch
    from torch import nn

    class LeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2), nn.Conv2d(6, 16, 5),
                                          nn.Tanh(), nn.MaxPool2d(2, ceil_mode=True))
            self.classifier = nn.Sequential(nn.Linear(16 * 5 * 5, 32), nn.ReLU(), nn.Dropout(), nn.Linear(32, 10))

        def forward(self, x):
            return self.classifier(torch.flatten(self.features(x), 1))

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
            return torch.relu(y + (x if self.downsample is None else self.downsample(x)))

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 8, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(8)
            self.layer1 = nn.Sequential(Block(8, 8, 1), Block(8, 8, 1))
            self.layer2 = nn.Sequential(Block(8, 16, 2), Block(16, 16, 1))
            self.fc = nn.Linear(16, 5)

        def forward(self, x):
            x = self.layer2(self.layer1(torch.relu(self.bn1(self.conv1(x)))))
            return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

    class Inception(nn.Module):
        def __init__(self, cin, c1, c3, pp):
            super().__init__()
            self.branch1 = nn.Conv2d(cin, c1, 1)
            self.branch2 = nn.Sequential(nn.Conv2d(cin, c3, 1), nn.ReLU(), nn.Conv2d(c3, c3, 3, padding=1))
            self.branch3 = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(cin, pp, 1))

        def forward(self, x):
            return torch.relu(torch.cat([self.branch1(x), self.branch2(x), self.branch3(x)], 1))

    class GoogLeNetish(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, 2, 1)
            self.inception1 = Inception(8, 4, 6, 2)
            self.inception2 = Inception(12, 6, 8, 4)
            self.fc = nn.Linear(18, 4)

        def forward(self, x):
            x = self.inception2(self.inception1(torch.relu(self.stem(x))))
            return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

    class SE(nn.Module):
        def __init__(self, c, s):
            super().__init__()
            self.fc1 = nn.Conv2d(c, s, 1)
            self.fc2 = nn.Conv2d(s, c, 1)

        def forward(self, x):
            return x * nn.functional.hardsigmoid(self.fc2(torch.relu(self.fc1(x.mean((2, 3), keepdim=True)))))

    class MobileNetish(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6()),
                nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1, groups=8, bias=False), nn.BatchNorm2d(8), nn.Hardswish()),
                SE(8, 4),
                nn.Sequential(nn.Conv2d(8, 16, 1, bias=False), nn.BatchNorm2d(16), nn.SiLU()))
            self.classifier = nn.Linear(16, 3)

        def forward(self, x):
            return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))

    return {"lenet": (LeNet, (1, 32, 32)), "resnet": (ResNet, (3, 16, 16)),
            "inception": (GoogLeNetish, (3, 16, 16)), "mobilenet": (MobileNetish, (3, 16, 16))}


# name -> (exporter, opset); the dynamo exporter writes opset 18 and later
EXPORTS = {"lenet": [("legacy", 9), ("legacy", 13), ("dynamo", 18)],
           "resnet": [("legacy", 11), ("legacy", 17), ("legacy-folded", 17), ("dynamo", 18), ("dynamo-raw", 18)],
           "inception": [("legacy", 9), ("legacy", 17), ("legacy-folded", 13), ("dynamo", 18)],
           "mobilenet": [("legacy", 14), ("legacy", 17), ("legacy-folded", 17), ("dynamo", 18)]}


def main() -> int:
    import onnx
    import torch
    from import_torch import _stored_params, export

    OUT.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, (cls, shape) in networks().items():
        torch.manual_seed(0)
        model = cls().eval()
        g = torch.Generator().manual_seed(1)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
        params = sum(p.numel() for p in model.parameters())
        for exporter, opset in EXPORTS[name]:
            path = OUT / f"{name}-{exporter}-opset{opset}.onnx"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                export(model, shape, exporter, str(path), opset)
            kept = exporter in ("legacy", "dynamo-raw")  # the others fold batchnorms (and drop zero biases)
            names = [t.name for t in onnx.load(str(path), load_external_data=False).graph.initializer]
            counts[path.name] = {"params": params if kept else _stored_params(str(path)), "input": list(shape),
                                 "names": not any(n.startswith("onnx::") for n in names)}
            print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size:,} bytes)")
    (OUT / "counts.json").write_text(json.dumps(counts, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
