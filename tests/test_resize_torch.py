"""upsample, convtranspose and crop, compiled by cnndsl and run by onnxruntime, against PyTorch:
F.interpolate and nn.ConvTranspose2d with the same weights, and plain slicing for the crop.

Skipped where torch is not installed (CI has none). To run it:

    PYTHONPATH=. /work/torchvenv/bin/python -m pytest tests/test_resize_torch.py

test_crosscheck.py checks the same layers against the NumPy reference (tests/reference.py); this
module checks that the reference's reading of PyTorch, and cnndsl's, are PyTorch's own (the bugs
it found and that were fixed are listed in test_crosscheck.py).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

import cnndsl  # noqa: E402 - after the skip
from cnndsl.runtime.run import Runner  # noqa: E402

RTOL = 1e-5  # relative to the largest |torch output|
ATOL = 1e-6


def dims(text: str) -> tuple[int, ...]:
    return tuple(int(d) for d in text.split("x"))


def make_input(shape, seed: int, batch: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, *shape)).astype(np.float32)


def run_cnndsl(text: str, x: np.ndarray, random_weights: bool = False):
    """(onnxruntime's output, the weights compiled in by name, the network) for a spec."""
    net = cnndsl.parse(text)
    given = None
    if random_weights:
        rng = np.random.default_rng(11)
        given = {p.name: rng.standard_normal(p.shape).astype(np.float32) for p in net.graph.params()}
    model = net.to_onnx(seed=0, weights=given)
    from onnx import numpy_helper

    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return Runner.from_model(model.SerializeToString(), device="cpu").run(x), weights, net


def assert_close(got: np.ndarray, want: np.ndarray, what: str) -> float:
    """Same shape, values within tolerance; returns the largest absolute difference."""
    assert got.shape == want.shape, f"{what}: cnndsl gives {got.shape}, torch {want.shape}"
    err = float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max(initial=0.0))
    tol = RTOL * float(np.abs(want).max(initial=0.0)) + ATOL
    assert err <= tol, f"{what}: cnndsl differs from torch by {err:.3g} (tolerance {tol:.3g})"
    print(f"{what}: max abs difference {err:.3g}")
    return err


# -- upsample ----------------------------------------------------------------------------------


def up(layer, inp, marks=(), **interpolate):
    """An upsample case: the layer, its input CxHxW, and F.interpolate's arguments (size "input":
    the input's own height and width, as to=input)."""
    return pytest.param(layer, inp, interpolate, id=f"{layer} @ {inp}", marks=marks)


NEAREST, BILINEAR = {"mode": "nearest"}, {"mode": "bilinear", "align_corners": False}
CORNERS = {"mode": "bilinear", "align_corners": True}

UPSAMPLE = [
    # nearest
    up("upsample 2", "2x3x4", scale_factor=2, **NEAREST),
    up("upsample 3x2", "2x3x4", scale_factor=(3, 2), **NEAREST),
    up("upsample (1, 3)", "2x3x2", scale_factor=(1, 3), **NEAREST),
    up("upsample 1.5", "2x5x5", scale_factor=1.5, **NEAREST),  # 5 -> 7 by a scale
    up("upsample size=7x7", "2x5x5", size=(7, 7), **NEAREST),  # 5 -> 7 by a size
    up("upsample size=8x8", "2x5x5", size=(8, 8), **NEAREST),
    up("upsample 1.6", "2x5x5", scale_factor=1.6, **NEAREST),
    up("upsample size=5x5", "2x7x7", size=(5, 5), **NEAREST),  # 7 -> 5: down
    up("upsample 0.5", "2x7x7", scale_factor=0.5, **NEAREST),
    up("upsample size=3x11", "2x6x4", size=(3, 11), **NEAREST),
    up("upsample size=4x4", "3x1x1", size=(4, 4), **NEAREST),  # 1 -> 4
    up("resize 4 nearest", "3x1x1", scale_factor=4, **NEAREST),
    up("upsample to=input", "2x5x4", size="input", **NEAREST),
    up("upsample size=520x520", "2x65x65", size=(520, 520), **NEAREST),  # FCN's sizes
    up("upsample 8", "2x28x28", scale_factor=8, **NEAREST),
    up("upsample 1.2", "2x3x3", scale_factor=1.2, **NEAREST),  # 3 -> 3: copied (onnxruntime copies too)
    up("upsample 2.2", "2x2x2", scale_factor=2.2, **NEAREST),  # 2 -> 4: dst // 2
    up("upsample (1.1, 2)", "2x2x2", scale_factor=(1.1, 2), **NEAREST),
    up("upsample 1.4", "2x5x5", scale_factor=1.4, **NEAREST),
    # bilinear, align_corners=false
    up("upsample 2 bilinear", "2x3x4", scale_factor=2, **BILINEAR),
    up("upsample 1.5 bilinear", "2x5x5", scale_factor=1.5, **BILINEAR),  # by 1/1.5, not 5/7
    up("upsample size=7x7 bilinear", "2x5x5", size=(7, 7), **BILINEAR),
    up("upsample size=5x5 bilinear", "2x7x7", size=(5, 5), **BILINEAR),
    up("upsample 0.5 bilinear", "2x7x7", scale_factor=0.5, **BILINEAR),
    up("upsample (1.5, 2) bilinear", "2x4x3", scale_factor=(1.5, 2), **BILINEAR),
    up("upsample size=3x8 bilinear", "2x8x3", size=(3, 8), **BILINEAR),
    up("upsample 4 bilinear", "3x1x1", scale_factor=4, **BILINEAR),
    up("upsample size=4x5 bilinear", "3x1x2", size=(4, 5), **BILINEAR),
    up("upsample to=input bilinear", "2x5x4", size="input", **BILINEAR),
    up("upsample size=520x520 bilinear", "3x65x65", size=(520, 520), **BILINEAR),  # FCN
    up("upsample 1.25 bilinear", "2x3x3", scale_factor=1.25, **BILINEAR),  # 3 -> 3: copied
    up("upsample (1.25, 2) bilinear", "2x3x3", scale_factor=(1.25, 2), **BILINEAR),
    up("upsample 1.8 bilinear", "2x5x5", scale_factor=1.8, **BILINEAR),
    # bilinear, align_corners=true
    up("upsample 2 bilinear align_corners=true", "2x3x4", scale_factor=2, **CORNERS),
    up("upsample 1.5 bilinear align_corners=true", "2x5x5", scale_factor=1.5, **CORNERS),
    up("upsample size=7x7 bilinear align_corners=true", "2x5x5", size=(7, 7), **CORNERS),
    up("upsample size=5x5 bilinear align_corners=true", "2x7x7", size=(5, 5), **CORNERS),
    up("upsample size=4x4 bilinear align_corners=true", "3x1x1", size=(4, 4), **CORNERS),
    up("upsample size=1x1 bilinear align_corners=true", "2x4x5", size=(1, 1), **CORNERS),
    up("upsample size=2x9 bilinear align_corners=true", "2x6x3", size=(2, 9), **CORNERS),
    up("upsample to=input bilinear align_corners=true", "2x5x4", size="input", **CORNERS),
]


def interpolate(x: np.ndarray, args: dict) -> np.ndarray:
    args = dict(args)
    if args.get("size") == "input":
        args["size"] = x.shape[2:]
    with torch.no_grad():
        return F.interpolate(torch.from_numpy(x), **args).numpy()


@pytest.mark.parametrize("layer, inp, args", UPSAMPLE)
def test_upsample_matches_interpolate(layer, inp, args):
    x = make_input(dims(inp), seed=len(layer) + 7 * len(inp))
    got, _, _ = run_cnndsl(f"input {inp}\n{layer}\n", x)
    assert_close(got, interpolate(x, args), layer)


@pytest.mark.parametrize("layer, inp, torch_fn", [
    pytest.param("upsample 2; crop to=input", "2x5x5",
                 lambda x: F.interpolate(x, scale_factor=2, mode="nearest")[:, :, 2:7, 2:7], id="upsample then crop"),
    pytest.param("maxpool 2; upsample to=input bilinear", "2x5x5",
                 lambda x: F.interpolate(F.max_pool2d(x, 2), size=(5, 5), mode="bilinear"), id="pool then back up"),
    pytest.param("upsample 2 bilinear; relu", "2x3x3",
                 lambda x: F.relu(F.interpolate(x, scale_factor=2, mode="bilinear")), id="upsample then relu"),
])
def test_upsample_in_a_network(layer, inp, torch_fn):
    x = make_input(dims(inp), seed=5)
    got, _, _ = run_cnndsl(f"input {inp}\n{layer}\n", x)
    with torch.no_grad():
        assert_close(got, torch_fn(torch.from_numpy(x)).numpy(), layer)


# A sweep of scales and sizes: square inputs, one scale for both axes (it found where Resize given the
# written scale differs from PyTorch: a size ONNX computes in float32, and PyTorch's own special cases).
SWEEP_SCALES = [round(0.1 * k, 1) for k in range(1, 41)] + [0.35, 0.45, 0.65, 0.75, 1.05, 1.15, 1.25, 1.75, 2.25, 2.15]


SWEEP = [pytest.param(mode, align, s, n, id=f"{mode}{'-corners' if align else ''}-{s}-{n}")
         for mode, align in (("nearest", None), ("bilinear", False), ("bilinear", True))
         for s in SWEEP_SCALES for n in range(1, 13) if math.floor(n * s) >= 1]


@pytest.mark.parametrize("mode, align, scale, n", SWEEP)
def test_upsample_scale_sweep(mode, align, scale, n):
    layer = f"upsample {scale} {mode}" + (" align_corners=true" if align else "")
    x = make_input((2, n, n), seed=n)
    got, _, _ = run_cnndsl(f"input 2x{n}x{n}\n{layer}\n", x)
    args = {"scale_factor": scale, "mode": mode, **({} if align is None else {"align_corners": align})}
    assert_close(got, interpolate(x, args), f"{layer} @ 2x{n}x{n}")


# -- convtranspose -----------------------------------------------------------------------------


def ct(layer, inp, marks=(), output_size=None, **torch_args):
    """A convtranspose case: the layer, its input, and nn.ConvTranspose2d's arguments (besides the
    channels and kernel, read from the layer); ``output_size``: passed to forward (as size= is)."""
    return pytest.param(layer, inp, torch_args, output_size, id=f"{layer} @ {inp}", marks=marks)


CONVTRANSPOSE = [
    ct("convtranspose 3 2x2 stride=2", "4x3x3", stride=2),  # U-Net's up-conv
    ct("convtranspose 64 2x2 stride=2", "128x14x14", stride=2),  # one of U-Net's, full width
    ct("convtranspose 2 3x3", "3x4x5"),
    ct("convtranspose 2 3x3 stride=2 pad=1 output_pad=1", "3x4x4", stride=2, padding=1, output_padding=1),
    ct("deconv 2 3x3 stride=2 pad=1 size=8x7", "3x4x4", output_size=(8, 7), stride=2, padding=1),
    ct("convtranspose 2 3x3 stride=2 size=10x9", "1x4x4", output_size=(10, 9), stride=2),
    ct("convtranspose 2 4x4 stride=2 pad=1", "2x5x5", stride=2, padding=1),
    ct("convtranspose 2 3x3 dilation=2", "2x4x5", dilation=2),
    ct("convtranspose 2 3x3 stride=2 dilation=2 pad=2", "2x4x4", stride=2, dilation=2, padding=2),
    ct("convtranspose 2 3x3 stride=2 dilation=3 output_pad=1", "1x3x3", stride=2, dilation=3, output_padding=1),
    ct("convtranspose 3 3x3 stride=3 pad=1 output_pad=2", "2x3x3", stride=3, padding=1, output_padding=2),
    ct("convtranspose 2 1x1 stride=3 output_pad=2", "2x3x3", stride=3, output_padding=2),
    ct("convtranspose 6 3x3 groups=2 stride=2", "4x3x4", stride=2, groups=2),
    ct("convtranspose 2 3x3 groups=2", "4x3x3", groups=2),
    ct("convtranspose 4 4x4 stride=2 pad=1 groups=4 bias=false", "4x5x5", stride=2, padding=1, groups=4, bias=False),
    ct("convtranspose 3 3x3 stride=2 groups=3", "3x3x3", stride=2, groups=3),
    ct("convtranspose 3 2x3 stride=2x1 pad=0x1", "2x4x5", stride=(2, 1), padding=(0, 1)),
    ct("convtranspose 2 3x2 stride=1x3 output_pad=0x2 bias=false", "2x3x3", stride=(1, 3), output_padding=(0, 2),
       bias=False),
    ct("convtranspose 2 2x2 stride=2 relu", "3x3x3", stride=2),
    ct("deconv 2 3x3 stride=3", "1x1x1", stride=3),
    ct("convtranspose 21 64x64 stride=32 pad=16 groups=21 bias=false", "21x3x3", stride=32, padding=16, groups=21,
       bias=False),  # FCN-32s' learned upsampling
]


def torch_convtranspose(layer: str, inp: str, args: dict, weights: dict):
    """nn.ConvTranspose2d for the layer, holding the compiled weights."""
    words = layer.split()
    filters, kernel = int(words[1]), dims(words[2])
    module = torch.nn.ConvTranspose2d(dims(inp)[0], filters, kernel, **args)
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(weights["0.weight"].copy()))
        if module.bias is not None:
            module.bias.copy_(torch.from_numpy(weights["0.bias"].copy()))
    return module


@pytest.mark.parametrize("layer, inp, args, output_size", CONVTRANSPOSE)
def test_convtranspose_matches_torch(layer, inp, args, output_size):
    x = make_input(dims(inp), seed=len(layer))
    got, weights, _ = run_cnndsl(f"input {inp}\n{layer}\n", x, random_weights=True)
    module = torch_convtranspose(layer, inp, args, weights)
    with torch.no_grad():
        want = module(torch.from_numpy(x), output_size=output_size)
        if "relu" in layer.split():
            want = F.relu(want)
    assert_close(got, want.numpy(), layer)


@pytest.mark.parametrize("layer, inp, args, output_size",
                         [pytest.param(*p.values, id=p.id) for p in CONVTRANSPOSE])  # runs no ONNX: no marks
def test_convtranspose_macs_are_half_torchs_flops(layer, inp, args, output_size):
    """cnndsl's MACs (C_in*H_in*W_in*(FILTERS/G)*kh*kw) are half of what torch's FlopCounterMode counts
    for one sample; and the weight's shape is the module's."""
    from torch.utils.flop_counter import FlopCounterMode

    net = cnndsl.parse(f"input {inp}\n{layer}\n")
    node = net.graph.nodes[0]
    module = torch.nn.ConvTranspose2d(dims(inp)[0], int(layer.split()[1]), dims(layer.split()[2]), **args)
    assert {p.name: p.shape for p in node.params} == {f"0.{k}": tuple(v.shape) for k, v in module.state_dict().items()}
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        out = module(torch.zeros(1, *dims(inp)), output_size=output_size)
    assert tuple(out.shape[1:]) == node.out_shape
    assert 2 * node.macs == counter.get_total_flops()


# -- crop --------------------------------------------------------------------------------------


@pytest.mark.parametrize("layer, inp, size", [
    ("crop 3x3", "2x6x6", (3, 3)),
    ("crop 4x2", "2x5x7", (4, 2)),
    ("crop 1x1", "2x4x4", (1, 1)),
    ("crop 5", "3x5x5", (5, 5)),
    ("crop to=input", "2x4x3", (4, 3)),
    ("crop 388", "2x392x392", (388, 388)),  # U-Net's first copy and crop
    ("crop 56x56", "2x64x64", (56, 56)),
])
def test_crop_matches_slicing(layer, inp, size):
    """A center crop from ((H - h) // 2, (W - w) // 2), as U-Net implementations slice it."""
    x = make_input(dims(inp), seed=2)
    got, _, _ = run_cnndsl(f"input {inp}\n{layer}\n", x)
    (_, h, w), (ch, cw) = dims(inp), size
    top, left = (h - ch) // 2, (w - cw) // 2
    assert_close(got, torch.from_numpy(x)[:, :, top:top + ch, left:left + cw].numpy(), layer)


def test_crop_and_torchvision_center_crop():
    """torchvision's center_crop starts at round((H - h) / 2) (half to even): the same where the
    difference is even or rounds down (1, 5, ...), one row lower where it rounds up (3, 7, ...)."""
    tf = pytest.importorskip("torchvision.transforms.functional")
    for h, ch in ((8, 4), (7, 6), (9, 4), (6, 3), (11, 4)):
        x = make_input((1, h, h), seed=h)
        got, _, _ = run_cnndsl(f"input 1x{h}x{h}\ncrop {ch}x{ch}\n", x)
        theirs = tf.center_crop(torch.from_numpy(x), [ch, ch]).numpy()
        same = round((h - ch) / 2) == (h - ch) // 2
        assert np.array_equal(got, theirs) == same, (h, ch)
