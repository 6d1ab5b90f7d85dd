"""Numerical equivalence of cnndsl's ONNX models with the PyTorch models they mirror.

For each model NAME: find the spec that defines it (specs/NAME.cnn, or the spec in specs/*.cnn
whose network or one of whose `variant` lines is named NAME), build the torch model (torchvision's
NAME, a torchvision segmentation model of torchvision_keys.SEGMENTATION, or a plain torch.nn model:
lenet5 and zfnet here, unet and autoencoder from tools/reference_models.py) with random weights,
randomise every batchnorm (scale, shift, running mean and variance), layer norm (scale, shift),
ConvNeXt layer_scale and conv/linear/transposed-conv bias so that they all matter, save the
state_dict as safetensors under /tmp, compile the spec (its variant NAME) with those weights (with
and without --fold-bn), run the ONNX model with onnxruntime on the CPU and the torch model in eval
mode on the same seeded batch, of the checked network's input size, and report
max|onnx - torch| / max|torch|.

Every output of the ONNX model is compared, by name, and the row's figure is the largest:
"output" is the torch model's eval-mode result (for a model that returns a dict, as torchvision's
segmentation models do, its "out" entry); a spec's other outputs (`aux1: output train { ... }`)
are compared with what AUX_OUTPUTS names: a head of the torch model applied, in eval mode, to the
output of one of its modules, captured with a forward hook (googlenet_aux: "aux1" =
model.aux1(inception4a's output), "aux2" = model.aux2(inception4d's output); torch runs the
auxiliary heads only in train mode, with batch statistics and dropout). A model with several
outputs gets one line per output under its row.

    python tools/equivalence.py [NAME...] [--all-defaults] [--all-variants] [--dense] [--cli] [--no-export] [--seed N]

NAME: a spec (lenet5, resnet50, ...) or a torchvision model a spec defines (mobilenet_v2,
efficientnet_b3, googlenet_aux, ...). --all-defaults: each family spec's network (its default
variant); --all-variants: every torchvision model that a family spec defines. (A family spec is
one whose network or a variant is named as a model of torchvision_keys.VARIANTS.) --dense: the
dense-prediction and multi-output models of torchvision_keys.SEGMENTATION (fcn_resnet50,
deeplabv3_resnet50, lraspp_mobilenet_v3_large, googlenet_aux, unet, autoencoder); the ResNet-50
ones at 3x520x520 and U-Net at 1x572x572 take minutes each on two cores.

Needs torch, torchvision, safetensors and onnxruntime (not cnndsl's dependencies). The functions
(``compare``, ``compare_outputs``, ``prepare``, ``torch_model``, ``torch_outputs``, ``locate``,
``families``) are importable: tests/test_torch_equivalence.py uses them.
"""

from __future__ import annotations

import argparse
import functools
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

from torchvision_keys import SEGMENTATION, TORCHVISION, VARIANTS, torchvision_model  # noqa: E402

SPEC_DIR = ROOT / "specs"
WORK = Path(tempfile.gettempdir()) / "cnndsl_equivalence"
TOLERANCE = 1e-5
BATCH = 2
SPECS = ["lenet5", "zfnet", *TORCHVISION]
DENSE = list(SEGMENTATION)
MAIN = "output"  # the ONNX name of a spec's main output (cnndsl.model.ir.MAIN_OUTPUT)
# model -> {ONNX output name: (module whose output the head reads, the head)}: a spec's outputs
# besides the main one, computed by torch_outputs in eval mode from forward hooks.
AUX_OUTPUTS = {"googlenet_aux": {"aux1": ("inception4a", "aux1"), "aux2": ("inception4d", "aux2")}}


# --- the models ------------------------------------------------------------------------------

def _plain(features, classifier):
    """An AlexNet-style module: ``features``, flatten, ``classifier`` (their names are the keys)."""
    import torch
    from torch import nn

    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = features
            self.classifier = classifier

        def forward(self, x):
            return self.classifier(torch.flatten(self.features(x), 1))

    return Plain()


def lenet5():
    """LeNet-5 in LINEAGE section 4's module order."""
    from torch import nn

    features = nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2, 2),          # 0 1 2
        nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2, 2),         # 3 4 5
        nn.Conv2d(16, 120, 5), nn.Tanh())                           # 6 7
    classifier = nn.Sequential(nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10))
    return _plain(features, classifier)


def zfnet():
    """ZFNet (Fig. 3 sizes) in LINEAGE section 4's module order: ceil pools, LRN(5, 1e-4, 0.75, k=2)."""
    from torch import nn

    def lrn():
        return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)

    features = nn.Sequential(
        nn.Conv2d(3, 96, 7, stride=2, padding=1), nn.ReLU(inplace=True),       # 0 1
        nn.MaxPool2d(3, 2, ceil_mode=True), lrn(),                               # 2 3
        nn.Conv2d(96, 256, 5, stride=2), nn.ReLU(inplace=True),                  # 4 5
        nn.MaxPool2d(3, 2, ceil_mode=True), lrn(),                               # 6 7
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(inplace=True),                # 8 9
        nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(inplace=True),                # 10 11
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),                # 12 13
        nn.MaxPool2d(3, 2))                                                      # 14
    classifier = nn.Sequential(
        nn.Dropout(0.5), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),   # 0 1 2
        nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(inplace=True),          # 3 4 5
        nn.Linear(4096, 1000))                                                   # 6
    return _plain(features, classifier)


def unet():
    """tools/reference_models.py's U-Net (Ronneberger et al. 2015, Fig. 1): specs/unet.cnn."""
    from reference_models import UNet

    return UNet()


def autoencoder():
    """tools/reference_models.py's ConvAutoencoder: specs/autoencoder.cnn."""
    from reference_models import ConvAutoencoder

    return ConvAutoencoder()


PLAIN = {"lenet5": lenet5, "zfnet": zfnet, "unet": unet, "autoencoder": autoencoder}


# --- the specs -------------------------------------------------------------------------------

@functools.cache
def _parsed() -> tuple[tuple[Path, object], ...]:
    """(path, parsed spec) of every spec in specs/ that parses (parse only: no checking)."""
    from cnndsl.errors import CnnDslError
    from cnndsl.lang.parse import parse

    specs = []
    for path in sorted(SPEC_DIR.glob("*.cnn")):
        try:
            specs.append((path, parse(path.read_text(encoding="utf-8"), str(path))))
        except CnnDslError as exc:
            print(f"  ({path.name} does not parse, left out: {str(exc).splitlines()[0]})", file=sys.stderr)
    return tuple(specs)


def _names(spec) -> list[str]:
    """A parsed spec's model names: its network's (the default variant) first, then its variants'."""
    return [spec.name, *(v.name for v in spec.variants)]


def locate(name: str) -> tuple[Path, str | None]:
    """(spec file, variant) that defines model ``name``: specs/NAME.cnn (its network), else the one
    spec whose network (variant None) or `variant` line is named ``name``."""
    path = SPEC_DIR / f"{name}.cnn"
    if path.exists():
        return path, None
    found = [(p, None if name == spec.name else name) for p, spec in _parsed() if name in _names(spec)]
    if len(found) != 1:
        where = ", ".join(p.name for p, _ in found) or "no spec"
        raise LookupError(f"{name}: {where} in {SPEC_DIR} define{'s' if len(found) < 2 else ''} it")
    return found[0]


def families() -> dict[Path, list[str]]:
    """Each family spec -> the torchvision models it defines (VARIANTS' names), its network's first."""
    table = {}
    for path, spec in _parsed():
        names = [n for n in _names(spec) if n in VARIANTS]
        if names:
            table[path] = names
    return table


def load(name: str):
    """The checked cnndsl network of model ``name`` (its spec, its variant)."""
    import cnndsl

    return cnndsl.load(*locate(name))


def _scale_shift(weight, bias, gen):
    """A normalisation's affine part at random: scale in [0.5, 1.5), shift about 0 +- 0.2."""
    import torch

    weight.copy_(0.5 + torch.rand(weight.shape, generator=gen))
    bias.copy_(0.2 * torch.randn(bias.shape, generator=gen))


def _randomise(model, input_shape, gen):
    """Random biases, batchnorms, layer norms and layer scales that matter, in proportion to the
    activations they see.

    One calibration pass on a random batch sets them layer by layer, in order: each conv/linear
    bias is drawn at a tenth of the spread of that layer's output without bias (so it neither
    vanishes nor swamps the signal, however the weights were initialised); each batchnorm's
    running statistics are drawn independently of the data (mean 0.3 N(0, 1), variance 0.5 to 2)
    and so are its scale and shift. (Statistics measured on the data and then perturbed made
    EfficientNet ill-conditioned: its squeeze-excite gates average features whose mean is near zero,
    and torch's own float32 output was 6e-3 away from float64; with these, every model's float32
    output is within 2e-6 of its float64 one.)
    Scale and shift are drawn at random, as are each layer norm's and each ConvNeXt block's
    layer_scale (initialised at 1e-6, which would hide the block) in [0.5, 1.5).
    """
    import torch
    from torch import nn

    def set_bias(module, _inputs, out):
        # A linear layer's features are its output's last axis (ConvNeXt's run channels-last).
        shape = (1,) * (out.dim() - 1) + (-1,) if isinstance(module, nn.Linear) else (1, -1) + (1,) * (out.dim() - 2)
        plain = out - module.bias.view(shape)
        module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.1 * float(plain.std()))
        return plain + module.bias.view(shape)

    conv_or_linear = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
    biased = [m for m in model.modules() if isinstance(m, conv_or_linear) and m.bias is not None]
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    lns = [m for m in model.modules() if isinstance(m, nn.LayerNorm) and m.elementwise_affine]
    scales = [p for k, p in model.named_parameters() if k.rsplit(".", 1)[-1] == "layer_scale"]
    hooks = [m.register_forward_hook(set_bias) for m in biased]
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = 1.0
    model.train()  # batchnorms normalise with (and record) the batch's statistics; dropout is harmless here
    with torch.no_grad():
        for m in lns:
            _scale_shift(m.weight, m.bias, gen)
        for p in scales:
            p.copy_(0.5 + torch.rand(p.shape, generator=gen))
        model(torch.randn((8, *input_shape), generator=gen))
        for m, momentum in zip(bns, momenta, strict=True):
            m.momentum = momentum
            c = m.num_features
            m.running_mean.copy_(0.3 * torch.randn(c, generator=gen))
            m.running_var.copy_(0.5 + 1.5 * torch.rand(c, generator=gen))
            _scale_shift(m.weight, m.bias, gen)
    for h in hooks:
        h.remove()
    model.eval()


def torch_model(name: str, input_shape, seed: int = 0):
    """The torch model ``name``, random weights, normalisations and biases randomised, in eval mode
    (PLAIN's, else torchvision's: TORCHVISION, VARIANTS or SEGMENTATION in torchvision_keys)."""
    import torch

    torch.manual_seed(seed)
    model = PLAIN[name]() if name in PLAIN else torchvision_model(name)
    _randomise(model, input_shape, torch.Generator().manual_seed(seed + 1))
    return model


# --- running ---------------------------------------------------------------------------------

def _main_output(y):
    """A model's main result: the tensor, or a dict's "out" (torchvision's segmentation models)."""
    return y["out"] if isinstance(y, dict) else y


def torch_outputs(name: str, model, x) -> dict[str, np.ndarray]:
    """{ONNX output name: torch's array} for model ``name`` (in eval mode) on batch ``x``: MAIN,
    and AUX_OUTPUTS' heads applied to the outputs of the modules they read, taken by forward hooks."""
    import torch

    aux = AUX_OUTPUTS.get(name, {})
    seen = {}
    modules = dict(model.named_modules())
    hooks = [modules[source].register_forward_hook(lambda _m, _i, out, key=key: seen.__setitem__(key, out))
             for key, (source, _) in aux.items()]
    try:
        with torch.no_grad():
            ys = {MAIN: _main_output(model(x))}
            assert not model.training, "torch_outputs wants a model in eval mode"
            for key, (_, head) in aux.items():
                ys[key] = modules[head](seen[key])
    finally:
        for h in hooks:
            h.remove()
    return {k: v.numpy() for k, v in ys.items()}


@functools.lru_cache(maxsize=1)
def prepare(name: str, seed: int = 0):
    """(torch model, safetensors path, input batch, torch outputs) for model ``name``, the input of
    its spec's size; the outputs are torch_outputs' {ONNX output name: array}; cached for the last name."""
    import torch
    from safetensors.torch import save_file

    net = load(name)
    model = torch_model(name, net.input_shape, seed)
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"{name}.safetensors"
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(path))
    x = torch.randn((BATCH, *net.input_shape), generator=torch.Generator().manual_seed(seed + 2))
    return model, path, x.numpy(), torch_outputs(name, model, x)


def _session(model_bytes_or_path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    # Run the graph as cnndsl wrote it: no fusions of onnxruntime's own (e.g. conv + batchnorm).
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(model_bytes_or_path, opts, providers=["CPUExecutionProvider"])


def _relative(out, ref) -> float:
    if out.shape != ref.shape:
        raise AssertionError(f"output shape {out.shape} != torch's {ref.shape}")
    return float(np.max(np.abs(out.astype(np.float64) - ref)) / np.max(np.abs(ref)))


def compile_command(name: str, fold_bn: bool, weights: Path, out: Path) -> list[str]:
    cli = Path(sys.executable).with_name("cnndsl")
    path, variant = locate(name)
    cmd = [str(cli), "compile", str(path), "--weights", str(weights), "-o", str(out)]
    return cmd + (["--variant", variant] if variant else []) + (["--fold-bn"] if fold_bn else [])


def compare_outputs(name: str, fold_bn: bool = False, seed: int = 0, cli: bool = False) -> dict[str, float]:
    """{ONNX output name: max|onnx - torch| / max|torch|} for cnndsl's model ``name`` loaded with the
    torch weights, every output of the ONNX model (in its order); torch must have the same names.

    ``cli``: compile with the ``cnndsl compile`` command (to a file in /tmp) instead of the API.
    """
    _, weights, x, ys = prepare(name, seed)
    if cli:
        out = WORK / f"{name}{'_folded' if fold_bn else ''}.onnx"
        subprocess.run(compile_command(name, fold_bn, weights, out), check=True, capture_output=True, text=True)
        sess = _session(str(out))
    else:
        model = load(name).to_onnx(weights=weights, fold_bn=fold_bn)
        sess = _session(model.SerializeToString())
        del model
    names = [o.name for o in sess.get_outputs()]
    if sorted(names) != sorted(ys):
        raise AssertionError(f"ONNX outputs {names} != torch's {list(ys)}")
    outs = sess.run(None, {sess.get_inputs()[0].name: x})
    return {k: _relative(out, ys[k]) for k, out in zip(names, outs, strict=True)}


def compare(name: str, fold_bn: bool = False, seed: int = 0, cli: bool = False) -> float:
    """max|onnx - torch| / max|torch| for cnndsl's model ``name`` loaded with the torch weights: the
    largest of compare_outputs' figures (a single output's, for most models)."""
    return max(compare_outputs(name, fold_bn, seed, cli).values())


def compare_torch_export(name: str, seed: int = 0) -> float:
    """The same metric for torch.onnx.export of the same model, for scale (raises if export fails);
    the main output only (eval mode has no other)."""
    import torch

    model, _, x, ys = prepare(name, seed)

    class Main(torch.nn.Module):  # a dict's "out" as a plain output
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, t):
            return _main_output(self.model(t))

    out = WORK / f"{name}_torch_export.onnx"
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation and constant-folding notes
        warnings.simplefilter("ignore")
        # dynamo=False: the TorchScript exporter, which needs no onnxscript.
        torch.onnx.export(Main().eval(), (torch.from_numpy(x),), str(out), input_names=["input"],
                          output_names=["output"], dynamo=False)
    sess = _session(str(out))
    (out_y,) = sess.run(["output"], {"input": x})
    return _relative(out_y, ys[MAIN])


# --- the table -------------------------------------------------------------------------------

def _selected(args) -> list[str]:
    """The command line's names, then the families' defaults and variants, then the dense models
    asked for, each once."""
    names = list(args.names)
    for names_of_family in families().values():
        names += names_of_family if args.all_variants else names_of_family[:1] if args.all_defaults else []
    names += DENSE if args.dense else []
    return list(dict.fromkeys(names or SPECS))


def _spec_file(name: str) -> str:
    try:
        return locate(name)[0].name
    except LookupError:
        return "?"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*", metavar="NAME",
                    help=f"a spec or a model a spec defines (default: {' '.join(SPECS)})")
    ap.add_argument("--all-defaults", action="store_true", help="each family spec's network (its default variant)")
    ap.add_argument("--all-variants", action="store_true", help="every torchvision model a family spec defines")
    ap.add_argument("--dense", action="store_true",
                    help=f"the dense-prediction and multi-output models ({' '.join(DENSE)}); slow")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cli", action="store_true", help="compile with the cnndsl command instead of the API")
    ap.add_argument("--no-export", action="store_true", help="skip the torch.onnx.export column")
    args = ap.parse_args(argv)
    names = _selected(args)

    import onnxruntime
    import torch
    import torchvision

    print(f"$ {' '.join([Path(sys.executable).name, 'tools/equivalence.py', *(argv or sys.argv[1:])])}")
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, onnxruntime {onnxruntime.__version__}, "
          f"CPU; batch {BATCH}, seed {args.seed}; metric max|onnx - torch| / max|torch|; PASS: both <= {TOLERANCE:g}")
    via = "`cnndsl compile [--variant NAME] --weights W.safetensors [--fold-bn]`" if args.cli else "the API"
    print(f"compiled via {via}; onnxruntime graph optimisations off\n")
    wide = max(24, *map(len, names))  # the model column (lraspp_mobilenet_v3_large is 25)
    spec_wide = max(24, *(len(_spec_file(n)) for n in names))
    head = (f"{'model':{wide}s} {'spec':{spec_wide}s} {'no fold':>10s} {'fold-bn':>10s} {'torch.onnx':>10s} "
            f"{'seconds':>8s}  result")
    print(head)
    print("-" * len(head))
    failed = 0
    for name in names:
        t0 = time.perf_counter()
        row = f"{name:{wide}s} {_spec_file(name):{spec_wide}s}"
        try:
            plains = compare_outputs(name, False, args.seed, args.cli)
            foldeds = compare_outputs(name, True, args.seed, args.cli)
            plain, folded = max(plains.values()), max(foldeds.values())
        except Exception as exc:  # report and go on with the next model
            detail = exc.stderr.strip().splitlines()[0] if getattr(exc, "stderr", None) else str(exc).splitlines()[0]
            print(f"{row} {'error':>10s} {'':>10s} {'':>10s} {time.perf_counter() - t0:8.1f}  FAIL: {detail}")
            failed += 1
            prepare.cache_clear()
            continue
        exported = "skipped"
        if not args.no_export:
            try:
                exported = f"{compare_torch_export(name, args.seed):10.2e}"
            except Exception as exc:
                exported = "n/a"
                print(f"  (torch.onnx.export of {name} failed: {str(exc).splitlines()[0][:100]})", file=sys.stderr)
        ok = plain <= TOLERANCE and folded <= TOLERANCE
        failed += not ok
        print(f"{row} {plain:10.2e} {folded:10.2e} {exported:>10s} {time.perf_counter() - t0:8.1f}  "
              f"{'PASS' if ok else 'FAIL'}", flush=True)
        if len(plains) > 1:  # one line per output; the row above shows the largest
            for key in plains:
                print(f"{'  - ' + key:{wide}s} {'':{spec_wide}s} {plains[key]:10.2e} {foldeds[key]:10.2e}", flush=True)
        prepare.cache_clear()
    print("-" * len(head))
    print(f"{len(names) - failed} of {len(names)} models pass")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
