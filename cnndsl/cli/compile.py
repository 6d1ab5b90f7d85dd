"""`cnndsl compile`: a spec to an ONNX file (float32, float16 or int8), and what was written."""

from __future__ import annotations

import click

from cnndsl.api import CompileOptions, human_bytes
from cnndsl.cli.group import DEFAULTS, compile_options, edge, load, main, spec_options
from cnndsl.views.term import Progress, echo_err


@main.command(name="compile")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Output file (default: NAME.onnx).")
@compile_options
@click.option("--quantize", type=click.Choice(["int8"]), default=DEFAULTS.quantize,
              help="Static int8 quantization (onnxruntime, QDQ, per-channel weights).")
@click.option("--calibration", type=click.Path(dir_okay=False),
              help="Calibration inputs for --quantize (.npy, .npz, .txt); default: seeded random.")
@click.option("--calibration-samples", default=DEFAULTS.calibration_samples, show_default=True,
              type=click.IntRange(min=1), help="Seeded calibration samples.")
@click.option("--inference", is_flag=True,
              help="Leave out the outputs only training uses (`aux1: output train { ... }`).")
@spec_options
@edge
def compile_cmd(spec: str, output: str | None, seed: int, opset: int | None, weights_path: str | None,
                strict: bool, fold_bn: bool, dtype: str, quantize: str | None, calibration: str | None,
                calibration_samples: int, inference: bool) -> None:
    """Compile a spec to an ONNX model, with seeded weights or weights loaded by name.

    \b
    Example: cnndsl compile specs/lenet5.cnn -o lenet5.onnx --seed 1
             cnndsl compile specs/resnet50.cnn --weights resnet50.safetensors --fold-bn
             cnndsl compile specs/resnet50.cnn --dtype float16 -o resnet50_fp16.onnx
             cnndsl compile specs/googlenet_torchvision.cnn --set aux=true --inference
    """
    if quantize and dtype != "float32":
        raise click.UsageError("--quantize int8 starts from float32 weights; leave out --dtype")
    if output == "":
        raise click.UsageError("-o needs a file name")
    net = load(spec)
    path = output if output is not None else f"{net.name}.onnx"
    if not path.lower().endswith(".onnx"):
        echo_err(f"warning: {path} will hold an ONNX model, but its name does not end in .onnx")
    bar = Progress()

    def progress(done: int, total: int) -> None:
        bar.show(f"writing weights {done / total:4.0%} of {human_bytes(total)}")

    options = CompileOptions(seed=seed, opset=opset, weights=weights_path, strict=strict, fold_bn=fold_bn,
                             dtype=dtype, output=path, quantize=quantize, calibration=calibration,
                             calibration_samples=calibration_samples, progress=progress, inference=inference)
    try:
        done = net.compile(options)
    finally:
        bar.done()
    for note in done.notes:
        echo_err(note)
    if quantize:
        click.echo(f"wrote {path} ({human_bytes(done.bytes)}, int8 QDQ, calibrated on {done.calibration})")
        moved = done.drift
        line = (f"int8 vs float32 on {moved['samples']} held-out seeded inputs: relative error "
                f"{moved['relative_error']:.4f}")
        click.echo(line + (f", top-1 agreement {moved['top1_agreement']:.0%}" if "top1_agreement" in moved else ""))
        return
    click.echo(f"wrote {' + '.join(done.paths) if len(done.paths) > 1 else path} ({human_bytes(done.bytes)}, "
               f"{done.params:,} parameters{', float16' if dtype == 'float16' else ''}, opset {done.opset}, "
               f"IR {done.ir_version}); checked: ONNX checker and strict shape inference agree with cnndsl")
    outs = net.graph.output_list()
    if len(outs) > 1:
        kept = net.graph.output_list(inference)
        left = [o.name for o in outs if o not in kept]
        click.echo(f"outputs: {', '.join(o.name for o in kept)}"
                   + (f" (left out for inference: {', '.join(left)})" if left else ""))
