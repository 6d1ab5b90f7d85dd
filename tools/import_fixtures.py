"""Write tests/fixtures/import/: small PyTorch networks exported by torch.onnx, for the CI tests of
`cnndsl import` (tests/test_import.py), which need neither torch nor a network.

Each network is exported by the TorchScript exporter at several opsets (9: pads, Clip bounds and
Flatten as older opsets write them) and by the dynamo exporter (optimised: batchnorms folded; and
raw). counts.json records torchvision-style parameter counts: the module's own, or, for an
optimised dynamo export, what the file keeps.

    PYTHONPATH=. /path/to/torch-venv/bin/python tools/import_fixtures.py [--only NAME ...]
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

    class Permute(nn.Module):
        def __init__(self, dims):
            super().__init__()
            self.dims = dims

        def forward(self, x):
            return x.permute(*self.dims)

    class LayerNorm2d(nn.LayerNorm):  # torchvision's: a LayerNorm over the channels, channels-last
        def forward(self, x):
            return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    class CNBlock(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.block = nn.Sequential(nn.Conv2d(c, c, 7, padding=3, groups=c), Permute([0, 2, 3, 1]),
                                       nn.LayerNorm(c, eps=1e-6), nn.Linear(c, 4 * c), nn.GELU(), nn.Linear(4 * c, c),
                                       Permute([0, 3, 1, 2]))
            self.layer_scale = nn.Parameter(torch.rand(c, 1, 1) + 0.5)

        def forward(self, x):
            return x + self.layer_scale * self.block(x)

    class ConvNeXtish(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Sequential(nn.Conv2d(3, 8, 4, 4), LayerNorm2d(8, eps=1e-6)), nn.Sequential(CNBlock(8), CNBlock(8)),
                nn.Sequential(LayerNorm2d(8, eps=1e-6), nn.Conv2d(8, 16, 2, 2)), nn.Sequential(CNBlock(16)))
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Sequential(LayerNorm2d(16, eps=1e-6), nn.Flatten(1), nn.Linear(16, 5))

        def forward(self, x):
            return self.classifier(self.avgpool(self.features(x)))

    def cbr(cin, cout, k=1, stride=1, groups=1, act=True):
        layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
        return layers + [nn.ReLU()] if act else layers

    class Unit(nn.Module):  # torchvision's ShuffleNetV2 InvertedResidual
        def __init__(self, cin, cout, stride):
            super().__init__()
            half = cout // 2
            self.stride = stride
            if stride > 1:
                self.branch1 = nn.Sequential(*cbr(cin, cin, 3, stride, cin, act=False), *cbr(cin, half))
            self.branch2 = nn.Sequential(*cbr(cin if stride > 1 else half, half),
                                         *cbr(half, half, 3, stride, half, act=False), *cbr(half, half))

        def forward(self, x):
            if self.stride == 1:
                x1, x2 = x.chunk(2, dim=1)
                out = torch.cat((x1, self.branch2(x2)), dim=1)
            else:
                out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
            b, c, h, w = out.size()
            out = out.view(b, 2, c // 2, h, w).transpose(1, 2).contiguous()
            return out.view(b, -1, h, w)

    class ShuffleNetish(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Sequential(*cbr(3, 8, 3, 2))
            self.stage2 = nn.Sequential(Unit(8, 16, 2), Unit(16, 16, 1), Unit(16, 16, 1))
            self.fc = nn.Linear(16, 4)

        def forward(self, x):
            return self.fc(self.stage2(self.conv1(x)).mean([2, 3]))

    class Double(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3)
            self.conv2 = nn.Conv2d(cout, cout, 3)

        def forward(self, x):
            return torch.relu(self.conv2(torch.relu(self.conv1(x))))

    class Up(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.upconv = nn.ConvTranspose2d(cin, cout, 2, 2)
            self.convs = Double(cin, cout)

        def forward(self, x, skip):
            x = self.upconv(x)
            top, left = (skip.shape[2] - x.shape[2]) // 2, (skip.shape[3] - x.shape[3]) // 2
            skip = skip[:, :, top:top + x.shape[2], left:left + x.shape[3]]
            return self.convs(torch.cat([skip, x], 1))

    class UNetish(nn.Module):
        def __init__(self):
            super().__init__()
            self.down1, self.down2, self.bottom = Double(1, 4), Double(4, 8), Double(8, 16)
            self.up2, self.up1 = Up(16, 8), Up(8, 4)
            self.head = nn.Conv2d(4, 2, 1)

        def forward(self, x):
            d1 = self.down1(x)
            d2 = self.down2(nn.functional.max_pool2d(d1, 2))
            x = self.bottom(nn.functional.max_pool2d(d2, 2))
            return self.head(self.up1(self.up2(x, d2), d1))

    class LRASPPish(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = nn.Sequential(nn.Sequential(*cbr(3, 8, 3, 2)), nn.Sequential(*cbr(8, 8, 3)),
                                          nn.Sequential(*cbr(8, 16, 3, 2)), nn.Sequential(*cbr(16, 16, 3)))
            self.cbr = nn.Sequential(*cbr(16, 8))
            self.scale = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(16, 8, 1, bias=False), nn.Sigmoid())
            self.low_classifier = nn.Conv2d(8, 3, 1)
            self.high_classifier = nn.Conv2d(8, 3, 1)

        def forward(self, x):
            low = self.backbone[1](self.backbone[0](x))
            high = self.backbone[3](self.backbone[2](low))
            y = nn.functional.interpolate(self.cbr(high) * self.scale(high), size=low.shape[-2:], mode="bilinear",
                                          align_corners=False)
            y = self.high_classifier(y) + self.low_classifier(low)
            return nn.functional.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)

    return {"lenet": (LeNet, (1, 32, 32)), "resnet": (ResNet, (3, 16, 16)),
            "inception": (GoogLeNetish, (3, 16, 16)), "mobilenet": (MobileNetish, (3, 16, 16)),
            "convnext": (ConvNeXtish, (3, 32, 32)), "shufflenet": (ShuffleNetish, (3, 16, 16)),
            "unet": (UNetish, (1, 44, 44)), "lraspp": (LRASPPish, (3, 32, 32))}


# name -> (exporter, opset); the dynamo exporter writes opset 18 and later
EXPORTS = {"lenet": [("legacy", 9), ("legacy", 13), ("dynamo", 18)],
           "resnet": [("legacy", 11), ("legacy", 17), ("legacy-folded", 17), ("dynamo", 18), ("dynamo-raw", 18)],
           "inception": [("legacy", 9), ("legacy", 17), ("legacy-folded", 13), ("dynamo", 18)],
           "mobilenet": [("legacy", 14), ("legacy", 17), ("legacy-folded", 17), ("dynamo", 18)],
           "convnext": [("legacy", 17), ("dynamo", 18)],
           "shufflenet": [("legacy", 11), ("legacy", 17), ("dynamo", 18), ("dynamo-raw", 18)],
           "unet": [("legacy", 11), ("legacy", 17), ("dynamo", 18)],
           "lraspp": [("legacy", 13), ("legacy", 17), ("dynamo", 18)]}


def main() -> int:
    import argparse

    import onnx
    import torch
    from import_torch import _stored_params, export

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", choices=sorted(EXPORTS), help="write these networks' files alone")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    counts_file = OUT / "counts.json"
    counts = json.loads(counts_file.read_text()) if args.only and counts_file.exists() else {}
    for name, (cls, shape) in networks().items():
        if args.only and name not in args.only:
            continue
        torch.manual_seed(0)
        model = cls().eval()
        g = torch.Generator().manual_seed(1)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            elif isinstance(m, torch.nn.LayerNorm):  # trained norms differ: an exporter stores equal ones once
                m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.data.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
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
    counts_file.write_text(json.dumps(counts, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
