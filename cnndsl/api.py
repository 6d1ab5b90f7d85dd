"""The Python API, cnndsl's one public face: load or parse a spec into a checked Network, count it,
compile it (Network.compile is the one compile path: the CLI, export, int8, run and the tests all
take it), run and benchmark models. The CLI reaches the rest of cnndsl only through here."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

from cnndsl.errors import CheckError, CnnDslError, CompileError, RuleError, did_you_mean
from cnndsl.lang.files import read_spec, write_spec  # noqa: F401 - write_spec: for `fmt`
from cnndsl.lang.limits import MAX_SPEC_BYTES  # noqa: F401 - for the playground's saves
from cnndsl.lang.parse import parse as parse_text
from cnndsl.model.check import check
from cnndsl.model.ir import MAIN_OUTPUT, Graph, GraphOutput
from cnndsl.views import report
from cnndsl.views.report import (  # noqa: F401 - the tables, for `params`, `summary` and `weights`
    TRAINING_BATCHES,
    as_json,
    compare,
    human_bytes,
    layers_json,
    one_line,
    weight_lines,
    weights_json,
)

if TYPE_CHECKING:
    from cnndsl.export.triton import ServeOptions

EXPORT_NAMES = ("INSTANCE_KINDS", "ServeOptions", "parse_preferred")  # Triton's options, for `export`


def __getattr__(name: str):
    """EXPORT_NAMES, imported from export.triton when first asked for (other commands never need them)."""
    if name in EXPORT_NAMES:
        from cnndsl.export import triton

        return getattr(triton, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class CompileOptions:
    """What goes into a compiled model and where it goes. The defaults are `cnndsl compile`'s.

    >>> net = cnndsl.load("specs/lenet5.cnn")
    >>> done = net.compile(cnndsl.CompileOptions(output="lenet5.onnx", seed=1, fold_bn=True))
    >>> [os.path.basename(p) for p in done.paths], done.params
    (['lenet5.onnx'], 61706)
    """

    seed: int = 0  # seeds the initialisation of every weight not given
    opset: int | None = None  # None: onnx.emit.DEFAULT_OPSET
    weights: str | os.PathLike | dict | None = None  # .safetensors, .npz or .onnx file, or name -> array
    strict: bool = True  # every name must match, like load_state_dict(strict=True)
    fold_bn: bool = False  # fold each batchnorm into the conv before it
    dtype: str = "float32"  # or float16: weights and arithmetic, behind a float32 input and output
    output: str | os.PathLike | None = None  # the .onnx file to write; None: in memory (CompileResult.model)
    quantize: str | None = None  # "int8": onnxruntime's static quantization (QDQ) of the float32 model
    calibration: str | None = None  # int8 calibration inputs (.npy, .npz, .txt); None: seeded random ones
    calibration_samples: int = 16  # how many seeded random calibration inputs
    progress: Callable[[int, int], None] | None = None  # progress(weight bytes written, total), to a file
    verify: bool = True  # check the model with the ONNX checker and strict shape inference
    inference: bool = False  # leave out the outputs only training uses (`aux1: output train { ... }`)


@dataclass(frozen=True)
class CompileResult:
    """What a compile made: where, in which format, how large, and what to tell the user.

    >>> done = cnndsl.load("specs/lenet5.cnn").compile()        # in memory: done.model is the ModelProto
    >>> done.paths, done.dtype, done.opset, len(done.model.graph.node)
    ((), 'float32', 21, 12)
    """

    paths: tuple[str, ...]  # the files written (the model, then its external data); () in memory
    opset: int
    ir_version: int
    bytes: int  # of the files written, or of the serialised model in memory
    dtype: str  # float32, float16 or int8
    params: int  # trainable parameters
    notes: tuple[str, ...] = ()  # for the user (stderr): weights matched loosely, external data
    model: object = None  # the onnx.ModelProto, when compiled in memory
    calibration: str | None = None  # int8: what it was calibrated on
    drift: dict | None = None  # int8: relative_error (and top1_agreement) against float32, held-out inputs


class CheckedGraph(Graph):
    """The checked graph of a Network (``net.graph``): its nodes, shapes and counts (model.ir.Graph); called,
    it draws itself.

    >>> net = cnndsl.load("specs/lenet5.cnn")
    >>> net.graph.nodes[0].name, net.graph.nodes[0].out_shape
    ('features.0', (6, 28, 28))
    >>> net.graph()                       # the diagram: in Jupyter, it renders as SVG
    <Diagram of lenet5, every layer: .svg, .dot, .save(path)>
    """

    @classmethod
    def of(cls, graph: Graph) -> CheckedGraph:
        """``graph`` as a CheckedGraph (the same nodes and lists, not copies); itself if it is one."""
        if isinstance(graph, cls):
            return graph
        return cls(**{f.name: getattr(graph, f.name) for f in fields(Graph)})

    def __call__(self, depth: int | None = -1):
        """The architecture diagram (views.notebook.Diagram): ``depth`` -1 draws the deepest level that fits a
        page, N folds every block deeper than N name parts into one box, None draws every layer.

        >>> resnet = cnndsl.load("specs/resnet152.cnn")
        >>> resnet.graph()                    # 515 layers: folded to a page
        <Diagram of resnet152, depth 2: .svg, .dot, .save(path)>
        >>> resnet.graph(depth=1).save("resnet152.dot")
        []
        """
        from cnndsl.views.graph import fitting_depth
        from cnndsl.views.notebook import Diagram

        if depth is not None and (not isinstance(depth, int) or depth < 1) and depth != -1:
            raise CnnDslError(f"depth must be a positive whole number, -1 or None, not {depth!r}")
        return Diagram(self, fitting_depth(self) if depth == -1 else depth)


class Network:
    """A checked network. Cheap to make: nothing is allocated until it is compiled or run.

    >>> net = cnndsl.load("specs/lenet5.cnn")
    >>> net                               # in Jupyter: the totals, the layer table and the diagram
    <Network lenet5: 61,706 params, 416,520 MACs>
    >>> net.totals.params, net.output_shape
    (61706, (10,))
    """

    def __init__(self, graph: Graph) -> None:
        self.graph = CheckedGraph.of(graph)

    @property
    def name(self) -> str:
        """The network's name, from its `network NAME` line.

        >>> cnndsl.load("specs/lenet5.cnn").name
        'lenet5'
        """
        return self.graph.name

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One sample's shape, without the batch: CxHxW for an image.

        >>> cnndsl.load("specs/lenet5.cnn").input_shape
        (1, 32, 32)
        """
        return self.graph.input_shape

    @property
    def output_shape(self) -> tuple[int, ...]:
        """The main output's shape for one sample.

        >>> cnndsl.load("specs/lenet5.cnn").output_shape
        (10,)
        """
        return self.graph.output_shape

    @property
    def outputs(self) -> dict[str, tuple[int, ...]]:
        """Every output's shape by its name in the ONNX model, the main one ("output") first.

        >>> cnndsl.load("specs/googlenet_torchvision.cnn", "googlenet_aux").outputs
        {'output': (1000,), 'aux1': (1000,), 'aux2': (1000,)}
        """
        return {o.name: self.graph.shape_of(o.index) for o in self.graph.output_list()}

    @property
    def totals(self) -> report.Totals:
        """Whole-network counts, exact and without a weight allocated: params (trainable), buffers, constants,
        macs, flops, weight_bytes, activation_bytes, layers, depth.

        >>> t = cnndsl.load("specs/resnet50.cnn").totals
        >>> t.params, t.macs, t.weight_bytes
        (25557032, 4089184256, 102440608)
        """
        return report.totals(self.graph)

    def summary(self, depth: int | None = None, batches: tuple[int, ...] = report.TRAINING_BATCHES) -> str:
        """The per-layer table with the totals and the training memory, as `cnndsl summary` prints it: ``depth``
        folds every block deeper than that many name parts into a subtotal row; ``batches``: the batch sizes
        of the training-memory table.

        >>> print(cnndsl.load("specs/lenet5.cnn").summary())       # doctest: +ELLIPSIS
        lenet5: LeNet-5 (LeCun et al., 1998)
        input 1x32x32
        ...
        trainable parameters  61,706
        ...
        """
        return report.summary(self.graph, depth, batches)

    def plot(self, size: tuple[int, int] | None = None):
        """A chart of the trainable parameters per layer (or block), coloured by kind, as `cnndsl plot SPEC`
        draws it (views.notebook.Chart: renders as SVG in Jupyter; ``.save(path)``). ``size``: pixels (w, h).

        >>> chart = cnndsl.load("specs/lenet5.cnn").plot()
        >>> chart.save("lenet5_layers.png")
        >>> chart                                  # doctest: +ELLIPSIS
        <Chart: parameters per layer of lenet5; ...: .save(path), .figure>
        """
        from cnndsl.views.notebook import Chart
        from cnndsl.views.plot import layer_data, layers_figure

        chart = layer_data(self.graph)
        if not chart.total:
            raise CnnDslError(f"{self.name} has no trainable parameters: no per-layer chart to draw",
                              hint="compare it with others: cnndsl plot a.cnn b.cnn -o chart.png")
        return Chart(layers_figure([chart], size), f"parameters per layer of {self.name}; {chart.share_note}")

    def _repr_html_(self) -> str:
        """Jupyter's view: the totals, the layer table and the diagram."""
        from cnndsl.views.notebook import network_html

        return network_html(self.graph)

    def compile(self, options: CompileOptions | None = None) -> CompileResult:
        """Compile to ONNX, checked against our own shapes, in memory or to ``options.output``.

        Weights given by file or dict are matched by name; the others are seeded. Raises a
        CnnDslError (CompileError, WeightsError) for what cannot be compiled or written.

        >>> done = cnndsl.load("specs/lenet5.cnn").compile(cnndsl.CompileOptions(output="lenet5.onnx"))
        >>> [os.path.basename(p) for p in done.paths], done.bytes > 240_000
        (['lenet5.onnx'], True)
        """
        options = options or CompileOptions()
        if options.quantize is not None:
            return self._compile_int8(options)
        from cnndsl.onnx.compile import compile_graph
        from cnndsl.weights.files import load_weights

        weights, notes = load_weights(self.graph, options.weights, options.strict)
        path = None if options.output is None else os.fspath(options.output)
        model, paths = compile_graph(self.graph, weights, seed=options.seed, opset=options.opset,
                                     fold_bn=options.fold_bn, dtype=options.dtype, verify=options.verify,
                                     path=path, progress=options.progress, inference=options.inference)
        if len(paths) > 1:
            notes.append(f"note: the weights exceed protobuf's 2 GB limit: they are in {paths[-1]} "
                         "(ONNX external data; keep it beside the model)")
        size = sum(os.path.getsize(p) for p in paths) if paths else model.ByteSize()
        return CompileResult(tuple(paths), model.opset_import[0].version, model.ir_version, size, options.dtype,
                             report.totals(self.graph.pruned(options.inference)).params, tuple(notes),
                             None if paths else model)

    def _compile_int8(self, options: CompileOptions) -> CompileResult:
        """Compile float32 to a scratch file, quantize it into ``options.output``, measure the drift."""
        from cnndsl.onnx.quantize import compile_int8

        if options.quantize != "int8":
            raise CompileError(f"unknown quantization '{options.quantize}'", hint="use int8")
        if options.output is None or options.dtype != "float32":
            raise CompileError("int8 quantization starts from float32 weights and writes a file",
                               hint="give an output path, and leave the dtype float32")
        path, floats = os.fspath(options.output), []

        def compile_float(float_path: str) -> None:
            floats.append(self.compile(replace(options, quantize=None, output=float_path, progress=None)))

        source, moved = compile_int8(compile_float, path, self.input_shape, options.calibration,
                                     options.calibration_samples, options.seed)
        done = floats[0]
        return CompileResult((path,), done.opset, done.ir_version, os.path.getsize(path), "int8", done.params,
                             done.notes, calibration=source, drift=moved)

    def to_onnx(self, **options):
        """An onnx.ModelProto compiled in memory; ``options`` are CompileOptions' (seed, opset,
        weights, strict, fold_bn, dtype).

        >>> model = cnndsl.load("specs/lenet5.cnn").to_onnx(seed=1, dtype="float16")
        >>> model.graph.input[0].name, model.graph.output[0].name
        ('input', 'output')
        """
        return self.compile(CompileOptions(**options)).model

    def run(self, x, device: str = "auto", **options):
        """Run on a batch ``x`` (N x input shape, float32); returns (output array, provider).
        ``options`` are CompileOptions' (seed, weights, ...). The compiled session is kept: a later
        call with the same device and options costs the inference alone (a weights file is
        compared by its path, size and modification time; weights given as arrays, which may
        change in place, compile each time).

        >>> net = cnndsl.load("specs/lenet5.cnn")
        >>> x = np.zeros((2, 1, 32, 32), np.float32)
        >>> y, provider = net.run(x)          # compiles, then runs
        >>> y, provider = net.run(x)          # runs: the session is kept
        >>> y.shape, provider in ("CPUExecutionProvider", "CUDAExecutionProvider")
        ((2, 10), True)
        """
        from cnndsl.runtime.run import Runner

        self.ensure_runs(len(x) if hasattr(x, "__len__") else 1)  # as `cnndsl run` refuses it
        keys = [(k, _option_key(v)) for k, v in sorted(options.items())]
        key = (device, tuple(keys)) if all(v is not _UNKEYED for _, v in keys) else None
        cached = getattr(self, "_session", None)
        if key is None or cached is None or cached[0] != key:
            runner = Runner.from_model(self.to_onnx(**options).SerializeToString(), device=device)
            self._session = cached = (key, runner)
        runner = cached[1]
        return runner.run(x), runner.provider

    def ensure_runs(self, batch: int = 1) -> None:
        """Raise CompileError, as `cnndsl run` does, when a batch of ``batch`` cannot run on this machine (its
        activations and weights would not fit in the memory available); else nothing.

        >>> cnndsl.load("specs/lenet5.cnn").ensure_runs(64)
        """
        from cnndsl.onnx.compile import check_run_fits

        check_run_fits(self.graph, batch)

    def to_bytes(self, seed: int = 0) -> bytes:
        """The seeded model serialised in memory, one file to download (the playground's compile): refused
        past protobuf's 2 GB (`cnndsl compile` writes such weights as external data) and where the model and
        its copies (about 4x the weights) would not fit in the memory available.

        >>> len(cnndsl.load("specs/lenet5.cnn").to_bytes()) > 240_000
        True
        """
        from cnndsl.memory import available_memory
        from cnndsl.onnx.compile import PROTOBUF_LIMIT

        weights = self.totals.weight_bytes
        free = available_memory()
        if free is not None and 4 * weights > free:
            raise CompileError(f"compiling {self.name} in memory needs about {human_bytes(4 * weights)}, but this "
                               f"machine has {human_bytes(free)} available", hint="compile it with cnndsl compile, "
                               "which writes the weights one tensor at a time")
        if weights >= PROTOBUF_LIMIT:
            raise CompileError(f"{self.name}'s weights take {human_bytes(weights)}: past protobuf's 2 GB, a model "
                               "is its file and a file of external data", hint="compile it with cnndsl compile")
        return self.compile(CompileOptions(seed=seed)).model.SerializeToString()

    @property
    def layers(self) -> list[str]:
        """Every layer's name, in order (the names `summary` lists and `upto` takes).

        >>> cnndsl.load("specs/lenet5.cnn").layers[:3]
        ['features.0', 'features.1', 'features.2']
        """
        return [node.name for node in self.graph.nodes]

    @property
    def conv_layers(self) -> list[str]:
        """The names of the layers that convolve (conv, depthwise, fixed kernels), in order: the layers whose
        feature maps `run --layer all` draws.

        >>> cnndsl.load("specs/lenet5.cnn").conv_layers
        ['features.0', 'features.3', 'features.6']
        """
        return [n.name for n in self.graph.nodes if n.layer.category in ("conv", "filter") and len(n.out_shape) == 3]

    def upto(self, layer: str, *more: str) -> Network:
        """The network cut after ``layer`` (a layer's name, or a block's: its last layer): its output is that
        layer's, for feature maps. With ``more`` layers, it has one output for each, named by the layer.
        Seeded weights are seeded by name, so the cut network's are the whole network's.

        >>> net = cnndsl.load("specs/lenet5.cnn")
        >>> maps, provider = net.upto("features.0").run(np.zeros((1, 1, 32, 32), np.float32))
        >>> maps.shape                                  # every channel of the first conv
        (1, 6, 28, 28)
        >>> cnndsl.load("specs/resnet50.cnn").upto("layer1").output_shape     # a block: its last layer
        (256, 56, 56)
        """
        names = self.layers
        outputs = []
        for wanted in (layer, *more):
            inside = [i for i, name in enumerate(names) if name == wanted or name.startswith(wanted + ".")]
            if not inside:
                blocks = {".".join(n.split(".")[:k]) for n in names for k in range(1, n.count(".") + 1)}
                hint = did_you_mean(wanted, set(names) | blocks) or f"the layers are {', '.join(names[:6])}, ..."
                raise CheckError(f"no layer or block named '{wanted}' in {self.name}", hint=hint)
            outputs.append(GraphOutput(wanted if more else MAIN_OUTPUT, max(inside)))
        if len({o.name for o in outputs}) < len(outputs):
            raise CheckError("a layer is named twice", hint="name each layer once")
        return Network(replace(self.graph, outputs=outputs).pruned())

    def export_triton(self, repo: str, name: str | None = None, version: int = 1, force: bool = False,
                      options: CompileOptions | None = None, serve: ServeOptions | None = None):
        """Compile into a Triton model repository: REPO/NAME/VERSION/model.onnx and REPO/NAME/config.pbtxt
        (see export.repository.export_triton); returns what was written, an Exported.

        >>> done = cnndsl.load("specs/lenet5.cnn").export_triton("models")
        >>> sorted(os.path.relpath(p, "models") for p in done.files), done.config
        (['lenet5/1/model.onnx', 'lenet5/config.pbtxt'], 'written')
        """
        from cnndsl.export.repository import export_triton
        from cnndsl.export.triton import ServeOptions

        return export_triton(self, repo, name, version, force, options or CompileOptions(), serve or ServeOptions())

    def __repr__(self) -> str:
        t = self.totals
        return f"<Network {self.name}: {t.params:,} params, {t.macs:,} MACs>"


_UNKEYED = object()


def _option_key(value):
    """A run option as a cache key: numbers and words as themselves, a file path by its path, size
    and modification time; _UNKEYED for anything else (weight arrays, which may change in place)."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (str, Path)):
        try:
            st = os.stat(value)
        except OSError:
            return ("path", str(value))
        return ("file", str(value), st.st_size, st.st_mtime_ns)
    return _UNKEYED


def parse(text: str, path: str = "<string>", variant: str | None = None, settings: dict | None = None) -> Network:
    """Parse and check spec text; raises cnndsl.errors.CnnDslError on a mistake. ``variant`` picks
    one of the spec's `variant` lines; ``settings`` sets network parameters: {"width": 1.2}.

    >>> cnndsl.parse("network tiny; input 3x32x32; conv 16 3x3 pad=1 relu; maxpool 2x2; flatten; dense 10")
    <Network tiny: 41,418 params, 483,328 MACs>
    >>> cnndsl.parse("network bad; input 3x8x8; conv 8 9x9", path="bad.cnn")
    Traceback (most recent call last):
    cnndsl.errors.CheckError: bad.cnn:1:34: error: conv 9x9 on a 8x8 input gives no output: ...
    """
    return Network(check(parse_text(text, path), variant, settings))


def load(path: str | Path, variant: str | None = None, settings: dict | None = None) -> Network:
    """Read, parse and check a .cnn file (``variant`` and ``settings`` as in ``parse``).

    >>> cnndsl.load("specs/googlenet_torchvision.cnn", "googlenet_aux").outputs
    {'output': (1000,), 'aux1': (1000,), 'aux2': (1000,)}
    """
    return parse(read_spec(path), str(path), variant, settings)


def variants(path: str | Path) -> list[str]:
    """The names of a spec's `variant` lines, in written order."""
    return [v.name for v in parse_text(read_spec(path), str(path)).variants]


def parse_settings(items) -> dict:
    """``["width=1.2", "act=relu"]`` (the CLI's --set) as {name: value}; values are expressions."""
    from cnndsl.lang.values import parse_value

    settings = {}
    for item in items:
        name, eq, text = item.partition("=")
        name = name.strip()
        if not eq or not name.isidentifier():
            raise CnnDslError(f"--set {item!r}: expected NAME=VALUE", hint="for example --set width=1.2")
        try:
            settings[name] = parse_value(text, f"--set {name}")
        except RuleError as exc:
            raise CnnDslError(exc.message, hint=exc.hint) from None
    return settings


def format_spec(text: str, path: str = "<string>", align: bool = True) -> str:
    """Spec text in the canonical layout (`cnndsl fmt`); see lang.fmt.format_text."""
    from cnndsl.lang.fmt import format_text

    return format_text(text, path, align)


def model_source(path: str, seed: int = 0, batch: int = 1, variant: str | None = None,
                 settings: dict | None = None, layers: tuple[str, ...] = (),
                 weights: str | None = None) -> tuple[str | bytes, int | None]:
    """What onnxruntime loads for ``path``, and its MACs per sample: a compiled .onnx file (checked to
    be one; MACs None), or a spec compiled with seeded weights, in memory or, past protobuf's 2 GB
    limit, through a temporary file. A spec whose batch of ``batch`` cannot fit is refused first.
    ``variant`` and ``settings`` apply to a spec, as in ``load``; ``layers`` cut it after those layers,
    whose outputs it then has (Network.upto; "all": every conv layer); ``weights``, a weights file whose
    tensors it takes by name (strictly: every name must match), as `compile --weights` does."""
    from cnndsl.runtime.run import check_model_file

    if path.lower().endswith(".onnx"):
        if layers:
            raise CompileError("--layer needs the spec: a compiled model gives only its outputs", path=path,
                               hint="run the .cnn file it was compiled from")
        if weights:
            raise CompileError("--weights goes with a spec: a compiled model has its weights", path=path,
                               hint="run the .cnn file with --weights, or compile it with them")
        return check_model_file(path, batch), None
    from cnndsl.onnx.compile import PROTOBUF_LIMIT, check_run_fits

    net = load(path, variant, settings)
    if layers:
        names = [n for name in layers for n in (net.conv_layers if name == "all" else [name])]
        if not names:
            raise CompileError(f"{net.name} has no conv layer to show", path=path, hint="name layers with --layer")
        net = net.upto(*dict.fromkeys(names))
    check_run_fits(net.graph, batch)
    if net.totals.weight_bytes < PROTOBUF_LIMIT:
        # a network cut after --layer takes its layers' weights from the file and leaves the rest
        model = net.compile(CompileOptions(seed=seed, weights=weights, strict=not layers)).model
        return model.SerializeToString(), net.totals.macs
    import atexit
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="cnndsl-run-")
    atexit.register(shutil.rmtree, folder, True)
    written = net.compile(CompileOptions(seed=seed, weights=weights, strict=not layers,
                                         output=os.path.join(folder, net.name + ".onnx")))
    return written.paths[0], net.totals.macs


def import_onnx(path: str | os.PathLike, name: str | None = None, spec_out: str | os.PathLike | None = None,
                weights_out: str | os.PathLike | None = None, partial: bool = False):
    """Read the ONNX model at ``path`` back as a spec with its weights (importer.Imported: ``.spec``
    is the text, ``.save(spec_path, weights_path)`` writes both, ``.arrays()`` yields the weights by
    the spec's names). ``spec_out`` and ``weights_out`` write them as ``.save`` does, sooner: the
    weights reach the disk while the spec is worked out. Raises ImportModelError for what the
    language cannot express; with ``partial``, imports the part before the last node it cannot
    express instead, marked as such in the spec (``# PARTIAL: ...``) and in ``.partial``.

    >>> done = cnndsl.load("specs/resnet18.cnn").compile(cnndsl.CompileOptions(output="resnet18.onnx"))
    >>> imported = cnndsl.import_onnx("resnet18.onnx")
    >>> cnndsl.parse(imported.spec).totals.params
    11689512
    """
    from cnndsl.importer import import_onnx as run_import

    return run_import(path, name, spec_out, weights_out, partial)


def work_abandoned() -> bool:
    """Whether native work (onnxruntime) was left running when an interrupt went on: the process
    should then end without waiting for it (runtime.run.in_worker)."""
    import sys

    run = sys.modules.get("cnndsl.runtime.run")
    return run is not None and run.ABANDONED.is_set()


def runner(source: str | bytes, device: str = "auto"):
    """An onnxruntime Runner (runtime.run) for a model path or serialised model (see model_source)."""
    from cnndsl.runtime.run import Runner

    return Runner.from_model(source, device=device)


def model_input(input_shape: tuple, input_path: str | None = None, image: str | None = None,
                resize: bool | str = False, seed: int = 0, batch: int = 1, normalize: str | None = None):
    """(input batch, where it came from, notes): see runtime.run.make_input."""
    from cnndsl.runtime.run import make_input

    return make_input(input_shape, input_path, image, resize, seed, batch, normalize)


def benchmark(model: str, device: str, batch: int, threads: int | None, runs: int, progress=None,
              variant: str | None = None, settings: dict | None = None):
    """Time inference of a compiled .onnx or a spec (compiled in memory, seeded): a runtime.bench.BenchResult."""
    from cnndsl.runtime.bench import macs_from_model, measure

    source, macs = model_source(model, 0, batch, variant, settings)
    if macs is None:
        macs = macs_from_model(source)
    return measure(source, device=device, batch=batch, threads=threads, runs=runs, macs=macs, progress=progress)
