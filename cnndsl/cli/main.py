"""The command line: each command loads, makes one API call, and prints. Errors render here."""

from __future__ import annotations

import functools
import json
import os
import sys

import click

from cnndsl.errors import CnnDslError
from cnndsl.views import report
from cnndsl.views.term import Progress, Style, color_enabled, echo_err


def _fail(exc: CnnDslError) -> None:
    on = color_enabled(sys.stderr)
    click.echo(exc.render(Style(on)), err=True, color=on)


def edge(fn):
    """Render cnndsl errors (no traceback unless --debug); exit 1; Ctrl-C exits 130 quietly."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CnnDslError as exc:
            if click.get_current_context().find_root().params.get("debug"):
                raise
            _fail(exc)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper


COMPILE_OPTIONS = [  # shared by compile and export: what goes into the model
    click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0),
                 help="Seed for the weight initialisation."),
    click.option("--opset", type=int, default=None,
                 help="ONNX opset (default 21; 19 to 23; 19 for onnx2torch and onnxruntime before 1.18)."),
    click.option("--weights", "weights_path", type=click.Path(dir_okay=False),
                 help="Load weights by name from .safetensors, .npz or .onnx."),
    click.option("--strict/--no-strict", default=True, show_default=True,
                 help="Require every name to match (like load_state_dict(strict=True))."),
    click.option("--fold-bn", is_flag=True, help="Fold each batchnorm into the conv before it."),
    click.option("--dtype", type=click.Choice(["float32", "float16"]), default="float32", show_default=True,
                 help="Weights and arithmetic; float16 keeps float32 inputs and outputs (for GPUs)."),
]


def compile_options(fn):
    """The COMPILE_OPTIONS, in order, on a command."""
    for option in reversed(COMPILE_OPTIONS):
        fn = option(fn)
    return fn


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show Python tracebacks for errors.")
@click.version_option(package_name="cnndsl")
def main(debug: bool) -> None:
    """cnndsl: check, count, compile and run convolutional network specs.

    \b
    Example:
      cnndsl params specs/mlp_mnist.cnn specs/lenet5.cnn
      cnndsl compile specs/lenet5.cnn -o lenet5.onnx && cnndsl run lenet5.onnx
    """


def _load_all(specs):
    """Load each spec; print errors as they come; return (loaded pairs, failures)."""
    from cnndsl.api import load

    loaded, failed = [], 0
    for path in specs:
        try:
            loaded.append((path, load(path)))
        except CnnDslError as exc:
            _fail(exc)
            failed += 1
    return loaded, failed


@main.command()
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON list: per spec, ok and its shapes, or the error with line and column.")
@edge
def check(specs, as_json: bool) -> None:
    """Check specs: one line per spec; exit 1 if any fails.

    Example: cnndsl check specs/*.cnn
    """
    if as_json:
        from cnndsl.cli.check import check_json

        sys.exit(check_json(specs))
    loaded, failed = _load_all(specs)
    for path, net in loaded:
        g = net.graph
        click.echo(f"{path}: ok: {g.name}, {len(g.nodes)} layer{'s' if len(g.nodes) != 1 else ''}, "
                   f"{'x'.join(map(str, g.input_shape))} -> {'x'.join(map(str, g.output_shape))}")
    sys.exit(1 if failed else 0)


@main.command()
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of objects.")
@edge
def params(specs, as_json: bool) -> None:
    """Count parameters and MACs; several specs give a comparison table.

    Example: cnndsl params specs/mlp_mnist.cnn specs/lenet5.cnn
    """
    loaded, failed = _load_all(specs)
    if as_json:
        click.echo(json.dumps([report.as_json(p, n.graph) for p, n in loaded], indent=2))
    elif len(loaded) == 1:
        click.echo(report.one_line(loaded[0][0], loaded[0][1].graph))
    elif loaded:
        click.echo(report.compare([(p, n.graph) for p, n in loaded]))
    sys.exit(1 if failed else 0)


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the layers and totals as JSON.")
@edge
def summary(spec: str, as_json: bool) -> None:
    """Per-layer table: name, kind, options, output shape, parameters, MACs.

    Example: cnndsl summary specs/lenet5.cnn
    """
    from cnndsl.api import load
    from cnndsl.model.ir import BUFFER, CONSTANT, TRAINABLE

    net = load(spec)
    if as_json:
        layers = [{"name": n.name, "kind": n.kind, "options": n.layer.describe(), "output": list(n.out_shape),
                   "params": n.count(TRAINABLE), "buffers": n.count(BUFFER), "constants": n.count(CONSTANT),
                   "macs": n.macs} for n in net.graph.nodes]
        click.echo(json.dumps({**report.as_json(spec, net.graph), "layers": layers}, indent=2))
    else:
        click.echo(net.summary())


@main.command(name="compile")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Output file (default: NAME.onnx).")
@compile_options
@click.option("--quantize", type=click.Choice(["int8"]), default=None,
              help="Static int8 quantization (onnxruntime, QDQ, per-channel weights).")
@click.option("--calibration", type=click.Path(dir_okay=False),
              help="Calibration inputs for --quantize (.npy, .npz, .txt); default: seeded random.")
@click.option("--calibration-samples", default=16, show_default=True, type=click.IntRange(min=1),
              help="Seeded calibration samples.")
@edge
def compile_cmd(spec: str, output: str | None, seed: int, opset: int | None, weights_path: str | None,
                strict: bool, fold_bn: bool, dtype: str, quantize: str | None, calibration: str | None,
                calibration_samples: int) -> None:
    """Compile a spec to an ONNX model, with seeded weights or weights loaded by name.

    \b
    Example: cnndsl compile specs/lenet5.cnn -o lenet5.onnx --seed 1
             cnndsl compile specs/resnet50.cnn --weights resnet50.safetensors --fold-bn
             cnndsl compile specs/resnet50.cnn --dtype float16 -o resnet50_fp16.onnx
    """
    from cnndsl.api import load
    from cnndsl.onnx.compile import compile_to_file
    from cnndsl.onnx.emit import DEFAULT_OPSET, ir_version_for

    if quantize and dtype != "float32":
        raise click.UsageError("--quantize int8 starts from float32 weights; leave out --dtype")
    net = load(spec)
    weights = None
    if weights_path:
        from cnndsl.weights.files import read_weights
        from cnndsl.weights.seeded import match_weights

        weights, notes = match_weights(net.graph, read_weights(weights_path), weights_path, strict)
        for note in notes:
            echo_err(note)
    path = output or f"{net.name}.onnx"
    if quantize:
        from cnndsl.cli.quant import compile_int8

        compile_int8(net, path, seed, opset, weights, fold_bn, calibration, calibration_samples)
        return
    bar = Progress()

    def progress(done: int, total: int) -> None:
        bar.show(f"writing weights {done / total:4.0%} of {report.human_bytes(total)}")

    try:
        written = compile_to_file(net.graph, path, seed=seed, opset=opset, weights=weights, fold_bn=fold_bn,
                                  progress=progress, dtype=dtype)
    finally:
        bar.done()
    opset = opset or DEFAULT_OPSET
    t = net.totals
    size = sum(os.path.getsize(w) for w in written)
    if len(written) > 1:
        echo_err(f"note: the weights exceed protobuf's 2 GB limit: they are in {written[-1]} "
                 "(ONNX external data; keep it beside the model)")
    click.echo(f"wrote {' + '.join(written) if len(written) > 1 else path} ({report.human_bytes(size)}, "
               f"{t.params:,} parameters{', float16' if dtype == 'float16' else ''}, opset {opset}, "
               f"IR {ir_version_for(opset)}); "
               "checked: ONNX checker and strict shape inference agree with cnndsl")


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--triton", "repo", required=True, type=click.Path(file_okay=False),
              help="Triton model repository: writes REPO/NAME/VERSION/model.onnx and REPO/NAME/config.pbtxt.")
@click.option("--name", help="The model's name in Triton (default: the spec's network name).")
@click.option("--version", "version", default=1, show_default=True, type=click.IntRange(min=1),
              help="The version folder to write.")
@click.option("--force", is_flag=True, help="Replace an existing version, or a config.pbtxt that differs.")
@click.option("--max-batch", default=64, show_default=True, type=click.IntRange(0, 2 ** 31 - 1),
              help="max_batch_size; 0 turns batching off.")
@click.option("--preferred-batch", help="Dynamic batch sizes to aim for, e.g. 8,16,32, or none "
                                        "(default: the max batch, its half and its quarter).")
@click.option("--max-queue-delay-us", default=100, show_default=True, type=click.IntRange(0, 2 ** 64 - 1),
              help="How long a request may wait for others to batch with, in microseconds.")
@click.option("--instances", type=click.Choice(["auto", "gpu", "cpu", "both"]), default="auto", show_default=True,
              help="Where Triton runs the model: auto uses the GPUs when it sees any, else the CPU; "
                   "gpu and both fail to load on a machine without a GPU.")
@click.option("--instance-count", default=1, show_default=True, type=click.IntRange(1, 2 ** 31 - 1),
              help="Instances per GPU (and on the CPU).")
@compile_options
@edge
def export(spec: str, repo: str, name: str | None, version: int, force: bool, max_batch: int,
           preferred_batch: str | None, max_queue_delay_us: int, instances: str, instance_count: int, seed: int,
           opset: int | None, weights_path: str | None, strict: bool, fold_bn: bool, dtype: str) -> None:
    """Export a spec to a Triton Inference Server model repository (onnxruntime backend).

    \b
    Example: cnndsl export --triton models/ specs/resnet18.cnn
             cnndsl export --triton models/ specs/resnet18.cnn --version 2 --dtype float16
             tritonserver --model-repository=$PWD/models
    """
    from cnndsl.export.repository import CompileOptions, export_command
    from cnndsl.export.triton import ServeOptions, parse_preferred

    build = CompileOptions(seed, opset, weights_path, strict, fold_bn, dtype)
    serve = ServeOptions(max_batch, parse_preferred(preferred_batch), max_queue_delay_us, instances, instance_count)
    export_command(spec, repo, name, version, force, build, serve)


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of {name, shape, role}.")
@edge
def weights(spec: str, as_json: bool) -> None:
    """List the weight names and shapes a spec expects in a weights file.

    Example: cnndsl weights specs/resnet18.cnn
    """
    from cnndsl.api import load
    from cnndsl.lang.show import fmt_shape

    params = list(load(spec).graph.params())
    if as_json:
        click.echo(json.dumps([{"name": p.name, "shape": list(p.shape), "role": p.role} for p in params], indent=2))
        return
    width = max((len(p.name) for p in params), default=4)
    for p in params:
        click.echo(f"{p.name:<{width}}  {fmt_shape(p.shape):<16}  {p.role}")


@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--input", "input_path", type=click.Path(dir_okay=False),
              help="Input: .npy, .npz, or .txt/.csv numbers (default: seeded random).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--top", default=5, show_default=True, type=click.IntRange(min=1),
              help="Classes to show for a classifier.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0),
              help="Seed for weights (spec) and random input.")
@click.option("--batch", default=1, show_default=True, type=click.IntRange(min=1),
              help="Batch size of the random input.")
@click.option("--image", "image_path", type=click.Path(dir_okay=False),
              help="Input: an image file (PNG, JPEG, TIFF, ...), grey or RGB per the model's input, pixels "
                   "scaled to 0..1 by their type's range (8-bit /255, 16-bit /65535); one sample.")
@click.option("--resize", is_flag=True, help="Resize an --image whose size differs from the model's input.")
@click.option("--save-maps", type=click.Path(file_okay=False),
              help="Write each output map as a PNG (min-max scaled) and a labelled grid.png into this folder.")
@edge
def run(model: str, input_path: str | None, device: str, top: int, seed: int, batch: int, image_path: str | None,
        resize: bool, save_maps: str | None) -> None:
    """Run a compiled .onnx model or a spec with onnxruntime; says which provider ran.

    \b
    Example: cnndsl run specs/conv_example.cnn --input specs/conv_example_image.txt
             cnndsl run specs/filters.cnn --image photo.png --resize --save-maps maps/
    """
    from cnndsl.cli.run import run_command

    run_command(model, input_path, device, top, seed, batch, image_path, resize, save_maps)


@main.command()
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Chart file; the format follows the extension: .png, .svg or .pdf.")
@click.option("--per-layer", is_flag=True, help="Parameters per layer, one panel per spec (default for one spec).")
@click.option("--size", metavar="WxH", help="Image size in pixels, e.g. 1400x800 (default: fits the rows).")
@edge
def plot(specs, output: str, per_layer: bool, size: str | None) -> None:
    """Chart parameters and MACs by year (several specs), or parameters per layer (one spec).

    \b
    Example: cnndsl plot specs/*.cnn -o lineage.png
             cnndsl plot specs/alexnet.cnn -o alexnet_layers.svg
    """
    from cnndsl.views.plot import check_output, plot_command

    check_output(output)
    loaded, failed = _load_all(specs)
    if failed:
        what = "the spec has errors" if len(specs) == 1 else f"{failed} of {len(specs)} specs have errors"
        raise CnnDslError(f"nothing written: {what}", path=output)
    click.echo(plot_command([net.graph for _, net in loaded], output, per_layer, size))


@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--batch", default=1, show_default=True, type=click.IntRange(min=1), help="Batch size.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="onnxruntime intra-op threads (default: all cores).")
@click.option("--runs", default=30, show_default=True, type=click.IntRange(min=1),
              help="Timed runs (after 3 warm-up runs).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@edge
def bench(model: str, device: str, batch: int, threads: int | None, runs: int, as_json: bool) -> None:
    """Measure inference: latency percentiles, throughput, effective GFLOP/s, provider.

    MODEL is a compiled .onnx or a spec (compiled in memory with seeded weights).

    Example: cnndsl bench specs/resnet50.cnn --batch 8 --threads 2
    """
    from cnndsl.cli.bench import bench_command

    bench_command(model, device, batch, threads, runs, as_json)


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True),
              help="Output .svg, .png, .pdf or .dot (default: NAME.svg); - prints the DOT text.")
@click.option("--depth", type=click.IntRange(min=1), default=None,
              help="Draw each block deeper than N name parts as one box (1: stem, stages, head).")
@edge
def graph(spec: str, output: str | None, depth: int | None) -> None:
    """Draw the architecture: layers as boxes, blocks as nested clusters, with shapes and parameters.

    .dot needs nothing installed; .svg, .png and .pdf run Graphviz's `dot`.

    \b
    Example: cnndsl graph specs/resnet18.cnn -o resnet18.svg
             cnndsl graph specs/resnet152.cnn --depth 1 -o resnet152.png
    """
    from cnndsl.cli.graph import graph_command

    graph_command(spec, output, depth)


@main.command(name="fmt")
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--check", is_flag=True, help="Write nothing; list the specs that would change and exit 1 (for CI).")
@click.option("--stdout", "to_stdout", is_flag=True, help="Print the formatted specs instead of rewriting them.")
@click.option("--align/--no-align", default=True, show_default=True,
              help="Keep the author's alignment (two or more spaces) in code, or collapse it.")
@edge
def fmt_cmd(specs, check: bool, to_stdout: bool, align: bool) -> None:
    """Rewrite specs in the canonical layout, in place; comments and alignment are kept.

    \b
    Example: cnndsl fmt specs/*.cnn
             cnndsl fmt --check specs/*.cnn     (CI: exit 1 listing specs that would change)
             cnndsl fmt - < messy.cnn           (stdin to stdout)
    """
    from cnndsl.cli.fmt import fmt_command

    sys.exit(fmt_command(specs, check, to_stdout, align))


if __name__ == "__main__":  # pragma: no cover
    main()
