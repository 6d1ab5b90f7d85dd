"""Write torchvision's state_dict names and shapes for each spec that mirrors a torchvision model.

For every spec below, builds the torchvision model with random weights (no download) and writes
tests/fixtures/torchvision/<spec>.json: a JSON object {state_dict key: shape}, keys sorted,
``num_batches_tracked`` left out (torch keeps it for batchnorm; cnndsl accepts and ignores it).
tests/test_torchvision_names.py checks each spec's weight names against these files without torch.

Needs torch and torchvision (not cnndsl's dependencies):

    python tools/torchvision_keys.py [SPEC...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "torchvision"

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
    # aux_logits=False: no auxiliary heads (aux1, aux2 are None); init_weights=True silences the
    # warning about the changed default initialisation. transform_input stays False (its default
    # without pretrained weights), so the input is used as it is.
    "googlenet_torchvision": ("googlenet", {"aux_logits": False, "init_weights": True}),
}


def torchvision_model(spec: str):
    """The torchvision model a spec mirrors, with random weights."""
    import torchvision

    fn, kwargs = TORCHVISION[spec]
    return getattr(torchvision.models, fn)(weights=None, **kwargs)


def state_dict_shapes(model) -> dict[str, list[int]]:
    """{key: shape} of a model's state_dict, sorted, without num_batches_tracked."""
    sd = model.state_dict()
    return {k: list(sd[k].shape) for k in sorted(sd) if not k.endswith("num_batches_tracked")}


def write_fixture(spec: str) -> Path:
    model = torchvision_model(spec)
    if spec.startswith("googlenet"):
        assert model.aux1 is None and model.aux2 is None, "googlenet still has auxiliary heads"
    shapes = state_dict_shapes(model)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    path = FIXTURES / f"{spec}.json"
    # One key per line, shapes inline: valid JSON that diffs well.
    lines = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in shapes.items()]
    path.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    return path


def main(argv: list[str]) -> int:
    specs = argv or list(TORCHVISION)
    unknown = [s for s in specs if s not in TORCHVISION]
    if unknown:
        print(f"unknown spec(s): {', '.join(unknown)}; known: {', '.join(TORCHVISION)}", file=sys.stderr)
        return 2
    for spec in specs:
        path = write_fixture(spec)
        n = len(json.loads(path.read_text()))
        print(f"{spec:24s} {n:4d} keys -> {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
