"""Write torchvision's state_dict names and shapes for each spec that mirrors a torchvision model.

For every spec in TORCHVISION, builds the torchvision model with random weights (no download) and
writes tests/fixtures/torchvision/<spec>.json: a JSON object {state_dict key: shape}, keys sorted,
``num_batches_tracked`` left out (torch keeps it for batchnorm; cnndsl accepts and ignores it).
tests/test_torchvision_names.py checks each spec's weight names against these files without torch.

VARIANTS are torchvision models that specs do not mirror yet, named as torchvision names them;
``--variants`` writes theirs to tests/fixtures/torchvision_variants/<name>.json (which no test
reads), and ``--counts`` writes tests/fixtures/torchvision_variants/counts.json: per model the
input (C, H, W), the trainable parameter count, the buffer elements (without num_batches_tracked)
and the multiply-accumulates of one eval-mode sample (FlopCounterMode's flops // 2: convolutions
and matrix products only; batchnorm, activations, pooling, additions and products are not counted).

``--segmentation`` covers SEGMENTATION: torchvision's dense-prediction models (random weights, no
backbone weights, 21 classes, no auxiliary classifier), googlenet WITH its two auxiliary heads, and
tools/reference_models.py's UNet and ConvAutoencoder. It writes tests/fixtures/segmentation/<name>.json
(same format) and tests/fixtures/segmentation/counts.json: per model the input (C, H, W), the names and
shapes (C, H, W, or (N,) for logits; batch left out) of every output in the order the model returns
them, params, buffers and MACs as above, and ``macs_by_op`` (the aten operators FlopCounterMode
counted, each with its share). Bilinear/nearest interpolation, pooling, batchnorm, activations,
concatenation and crops are not counted (FlopCounterMode has no formula for them); the script checks
that only convolutions and matrix products were counted. A model that returns extra outputs in
training mode (googlenet_aux) also gets ``outputs_train`` and ``macs_train``: one sample in train
mode, with the auxiliary heads active (``macs`` is eval mode: main path only).

Needs torch and torchvision (not cnndsl's dependencies):

    python tools/torchvision_keys.py [--variants | --counts | --segmentation] [NAME...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "torchvision"
VARIANT_FIXTURES = ROOT / "tests" / "fixtures" / "torchvision_variants"
SEGMENTATION_FIXTURES = ROOT / "tests" / "fixtures" / "segmentation"

# aux_logits=False: no auxiliary heads (googlenet's aux1, aux2 and inception_v3's AuxLogits are
# None); init_weights=True silences the warning about the changed default initialisation.
# transform_input stays False (its default without pretrained weights): the input is used as it is.
NO_AUX = {"aux_logits": False, "init_weights": True}

# spec name -> (torchvision.models function, keyword arguments). weights=None: random weights.
TORCHVISION = {
    "alexnet_torchvision": ("alexnet", {}),
    "vgg11": ("vgg11", {}),
    "vgg16": ("vgg16", {}),
    "vgg19": ("vgg19", {}),
    "resnet18": ("resnet18", {}),
    "resnet34": ("resnet34", {}),
    "resnet50": ("resnet50", {}),
    "resnet101": ("resnet101", {}),
    "resnet152": ("resnet152", {}),
    "googlenet_torchvision": ("googlenet", NO_AUX),
}

_VARIANT_NAMES = """
    mobilenet_v2 mobilenet_v3_large mobilenet_v3_small
    efficientnet_b0 efficientnet_b1 efficientnet_b2 efficientnet_b3
    efficientnet_b4 efficientnet_b5 efficientnet_b6 efficientnet_b7
    efficientnet_v2_s efficientnet_v2_m efficientnet_v2_l
    shufflenet_v2_x0_5 shufflenet_v2_x1_0 shufflenet_v2_x1_5 shufflenet_v2_x2_0
    regnet_y_400mf regnet_y_800mf regnet_y_1_6gf regnet_y_3_2gf
    regnet_y_8gf regnet_y_16gf regnet_y_32gf regnet_y_128gf
    regnet_x_400mf regnet_x_800mf regnet_x_1_6gf regnet_x_3_2gf
    regnet_x_8gf regnet_x_16gf regnet_x_32gf
    convnext_tiny convnext_small convnext_base convnext_large
    mnasnet0_5 mnasnet0_75 mnasnet1_0 mnasnet1_3
    densenet121 densenet161 densenet169 densenet201
    inception_v3
    squeezenet1_0 squeezenet1_1
    resnext50_32x4d resnext101_32x8d resnext101_64x4d wide_resnet50_2 wide_resnet101_2
    vgg11_bn vgg13 vgg13_bn vgg16_bn vgg19_bn
""".split()
# torchvision name -> (the same name, keyword arguments), as TORCHVISION.
VARIANTS = {name: (name, NO_AUX if name == "inception_v3" else {}) for name in _VARIANT_NAMES}

# Input side where it is not 224: the crop_size of the model's IMAGENET1K weights' transforms
# (torchvision/models/efficientnet.py, inception.py).
INPUT_SIDE = {
    "inception_v3": 299,
    "efficientnet_b1": 240, "efficientnet_b2": 288, "efficientnet_b3": 300, "efficientnet_b4": 380,
    "efficientnet_b5": 456, "efficientnet_b6": 528, "efficientnet_b7": 600,
    "efficientnet_v2_s": 384, "efficientnet_v2_m": 480, "efficientnet_v2_l": 480,
}


# The torchvision segmentation models: no pretrained weights for the model or the backbone.
SEG_ARGS = {"weights": None, "weights_backbone": None, "num_classes": 21}
# name -> (where the builder lives, its name, keyword arguments, input (C, H, W)). "reference" is
# tools/reference_models.py. lraspp_mobilenet_v3_large has no aux_loss parameter (it has no
# auxiliary classifier). googlenet_aux keeps aux1/aux2; init_weights=False skips the slow
# truncated-normal initialisation (the weights are random either way).
SEGMENTATION = {
    "fcn_resnet50": ("segmentation", "fcn_resnet50", {**SEG_ARGS, "aux_loss": False}, (3, 520, 520)),
    "deeplabv3_resnet50": ("segmentation", "deeplabv3_resnet50", {**SEG_ARGS, "aux_loss": False}, (3, 520, 520)),
    "lraspp_mobilenet_v3_large": ("segmentation", "lraspp_mobilenet_v3_large", SEG_ARGS, (3, 520, 520)),
    "googlenet_aux": ("models", "googlenet", {"weights": None, "aux_logits": True, "init_weights": False},
                      (3, 224, 224)),
    "unet": ("reference", "UNet", {}, (1, 572, 572)),
    "autoencoder": ("reference", "ConvAutoencoder", {}, (1, 28, 28)),
}
# Models whose training-mode forward differs (extra outputs): they also get a train-mode run. (The
# others are not run in train mode: batchnorm on DeepLabV3's 1x1 pooled map fails at batch 1.)
TRAIN_OUTPUTS = {"googlenet_aux"}
# The operators FlopCounterMode may count in these models (anything else fails the run).
COUNTED_OPS = {"convolution", "_convolution", "mm", "addmm", "bmm", "baddbmm"}


def segmentation_model(name: str):
    """A SEGMENTATION model with random weights."""
    where, fn, kwargs, _ = SEGMENTATION[name]
    if where == "reference":
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import reference_models

        return getattr(reference_models, fn)(**kwargs)
    import torchvision

    module = torchvision.models.segmentation if where == "segmentation" else torchvision.models
    model = getattr(module, fn)(**kwargs)
    if name == "googlenet_aux":
        assert model.aux1 is not None and model.aux2 is not None, "googlenet_aux lost its auxiliary heads"
    return model


def _named_outputs(y) -> list[tuple[str, list[int]]]:
    """(name, shape without the batch) of each output: dict keys, namedtuple fields or 'out'."""
    if isinstance(y, dict):
        items = list(y.items())
    elif isinstance(y, tuple) and hasattr(y, "_fields"):
        items = list(zip(y._fields, y, strict=True))
    else:
        items = [("out", y)]
    return [(k, list(v.shape[1:])) for k, v in items]


def _run_counted(model, shape) -> tuple[list[tuple[str, list[int]]], int, dict[str, int]]:
    """One sample through the model: its outputs, MACs and MACs per counted operator."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as flops:
        y = model(torch.zeros(1, *shape))
    by_op = {str(op).split(".")[-1]: n // 2 for op, n in flops.get_flop_counts()["Global"].items()}
    stray = set(by_op) - COUNTED_OPS
    assert not stray, f"FlopCounterMode counted {stray}: not a convolution or matrix product"
    total = flops.get_total_flops() // 2
    assert total == sum(by_op.values())
    return _named_outputs(y), total, dict(sorted(by_op.items()))


def segmentation_counts(name: str) -> dict:
    """counts.json's entry for a SEGMENTATION model (see the module docstring)."""
    import torch

    torch.manual_seed(0)
    model = segmentation_model(name).eval()
    shape = SEGMENTATION[name][3]
    outputs, macs, by_op = _run_counted(model, shape)
    entry = {
        "input": list(shape),
        "output_names": [k for k, _ in outputs],
        "outputs": [s for _, s in outputs],
        "params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "buffers": sum(b.numel() for k, b in model.named_buffers() if not k.endswith("num_batches_tracked")),
        "macs": macs,
        "macs_by_op": by_op,
    }
    if name in TRAIN_OUTPUTS:
        model.train()
        outputs_train, macs_train, by_op_train = _run_counted(model, shape)
        entry["output_names_train"] = [k for k, _ in outputs_train]
        entry["outputs_train"] = [s for _, s in outputs_train]
        entry["macs_train"] = macs_train
        entry["macs_by_op_train"] = by_op_train
    return entry


def write_segmentation(names: list[str]) -> Path:
    """Fixtures of the named SEGMENTATION models, and their entries in counts.json (others stay)."""
    import torch

    for name in names:
        torch.manual_seed(0)
        path = write_lines(SEGMENTATION_FIXTURES / f"{name}.json", state_dict_shapes(segmentation_model(name)))
        print(f"{name:26s} {len(json.loads(path.read_text())):4d} keys -> {path.relative_to(ROOT)}")
    return _update_counts(SEGMENTATION_FIXTURES / "counts.json", names, segmentation_counts, SEGMENTATION, 26)


def torchvision_model(spec: str):
    """The torchvision model a spec (or a variant) mirrors, with random weights: TORCHVISION's,
    VARIANTS' or SEGMENTATION's torchvision models (not its reference models: KeyError)."""
    import torchvision

    if spec in SEGMENTATION and SEGMENTATION[spec][0] != "reference":
        return segmentation_model(spec)
    fn, kwargs = TORCHVISION[spec] if spec in TORCHVISION else VARIANTS[spec]
    model = getattr(torchvision.models, fn)(weights=None, **kwargs)
    if kwargs.get("aux_logits") is False:
        aux = [getattr(model, a, None) for a in ("aux1", "aux2", "AuxLogits")]
        assert aux == [None] * 3, f"{spec} still has auxiliary heads"
    return model


def state_dict_shapes(model) -> dict[str, list[int]]:
    """{key: shape} of a model's state_dict, sorted, without num_batches_tracked."""
    sd = model.state_dict()
    return {k: list(sd[k].shape) for k in sorted(sd) if not k.endswith("num_batches_tracked")}


def write_lines(path: Path, entries: dict) -> Path:
    """A JSON object with one entry per line, values inline: valid JSON that diffs well."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in entries.items()]
    path.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    return path


def write_fixture(spec: str, folder: Path = FIXTURES) -> Path:
    return write_lines(folder / f"{spec}.json", state_dict_shapes(torchvision_model(spec)))


def counts(name: str) -> dict:
    """Input, trainable parameters, buffer elements and multiply-accumulates of one sample."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model = torchvision_model(name).eval()
    side = INPUT_SIDE.get(name, 224)
    with torch.no_grad(), FlopCounterMode(display=False) as flops:
        model(torch.zeros(1, 3, side, side))
    return {
        "input": [3, side, side],
        "params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "buffers": sum(b.numel() for k, b in model.named_buffers() if not k.endswith("num_batches_tracked")),
        "macs": flops.get_total_flops() // 2,
    }


def write_counts(names: list[str]) -> Path:
    """counts.json: the named models' counts replace theirs; the others' stay (VARIANTS order)."""
    return _update_counts(VARIANT_FIXTURES / "counts.json", names, counts, VARIANTS, 20)


def _update_counts(path: Path, names: list[str], count, order, width: int) -> Path:
    """A counts file with ``count(name)`` for each named model; the others' entries stay, in ``order``."""
    table = json.loads(path.read_text()) if path.exists() else {}
    for name in names:
        table[name] = count(name)
        print(f"{name:{width}s} {json.dumps(table[name])}")
    return write_lines(path, {n: table[n] for n in order if n in table})


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--variants", action="store_true", help="VARIANTS' fixtures, not the specs'")
    group.add_argument("--counts", action="store_true", help="VARIANTS' counts.json")
    group.add_argument("--segmentation", action="store_true",
                       help="SEGMENTATION's fixtures and counts.json (tests/fixtures/segmentation/)")
    parser.add_argument("names", nargs="*", metavar="NAME", help="default: all of them")
    args = parser.parse_args(argv)
    known = VARIANTS if args.variants or args.counts else SEGMENTATION if args.segmentation else TORCHVISION
    names = args.names or list(known)
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"unknown name(s): {', '.join(unknown)}; known: {', '.join(known)}")
    if args.counts:
        print(f"-> {write_counts(names).relative_to(ROOT)}")
        return 0
    if args.segmentation:
        print(f"-> {write_segmentation(names).relative_to(ROOT)}")
        return 0
    for name in names:
        path = write_fixture(name, VARIANT_FIXTURES if args.variants else FIXTURES)
        n = len(json.loads(path.read_text()))
        print(f"{name:24s} {n:4d} keys -> {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
