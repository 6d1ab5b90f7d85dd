"""`cnndsl export --triton`: a spec compiled into a Triton model repository, and how Triton will serve it."""

from __future__ import annotations

import os

import click

from cnndsl.api import INSTANCE_KINDS, CompileOptions, ServeOptions, human_bytes, parse_preferred
from cnndsl.cli.group import compile_options, edge, load, main, spec_options
from cnndsl.views.term import Progress, shown_path

SERVE = ServeOptions()  # the option defaults are the API's


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--triton", "repo", required=True, type=click.Path(file_okay=False),
              help="Triton model repository: writes REPO/NAME/VERSION/model.onnx and REPO/NAME/config.pbtxt.")
@click.option("--name", help="The model's name in Triton (default: the spec's network name).")
@click.option("--version", "version", default=1, show_default=True, type=click.IntRange(min=1),
              help="The version folder to write.")
@click.option("--force", is_flag=True, help="Replace an existing version, or a config.pbtxt that differs.")
@click.option("--max-batch", default=SERVE.max_batch, show_default=True, type=click.IntRange(0, 2 ** 31 - 1),
              help="max_batch_size; 0 turns batching off.")
@click.option("--preferred-batch", help="Dynamic batch sizes to aim for, e.g. 8,16,32, or none "
                                        "(default: the max batch, its half and its quarter).")
@click.option("--max-queue-delay-us", default=SERVE.queue_delay_us, show_default=True,
              type=click.IntRange(0, 2 ** 64 - 1),
              help="How long a request may wait for others to batch with, in microseconds.")
@click.option("--instances", type=click.Choice(["auto", "gpu", "cpu", "both"]), default=SERVE.instances,
              show_default=True,
              help="Where Triton runs the model: auto uses the GPUs when it sees any, else the CPU; "
                   "gpu and both fail to load on a machine without a GPU.")
@click.option("--instance-count", default=SERVE.count, show_default=True, type=click.IntRange(1, 2 ** 31 - 1),
              help="Instances per GPU (and on the CPU).")
@compile_options
@spec_options
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
    import shlex

    serve = ServeOptions(max_batch, parse_preferred(preferred_batch), max_queue_delay_us, instances, instance_count)
    net = load(spec)
    bar = Progress()
    options = CompileOptions(seed=seed, opset=opset, weights=weights_path, strict=strict, fold_bn=fold_bn,
                             dtype=dtype, progress=lambda done, total: bar.show(f"writing weights {done / total:4.0%}"))
    try:
        done = net.export_triton(repo, name, version, force, options, serve)
    finally:
        bar.done()
    for note in done.compiled.notes:
        click.echo(note, err=True)
    half = ", float16 inside a float32 interface" if dtype == "float16" else ""
    click.echo(f"wrote {shown_path(done.files[0])} ({human_bytes(done.compiled.bytes)}{half}, "
               f"opset {done.compiled.opset}, IR {done.compiled.ir_version})")
    batching = f"max batch {serve.max_batch}" if serve.max_batch else "no batching"
    kinds = " + ".join(INSTANCE_KINDS[serve.instances])
    verb = {"written": "wrote", "replaced": "replaced", "unchanged": "kept"}[done.config]
    click.echo(f"{verb} {shown_path(done.files[-1])} ({batching}, {serve.count} instance"
               f"{'s' if serve.count > 1 else ''} {kinds})")
    listed = ", ".join(map(str, done.versions))
    click.echo(f"serve it: tritonserver --model-repository={shlex.quote(os.path.dirname(done.model_dir))}  "
               f"(model '{os.path.basename(done.model_dir)}', version{'s' if len(done.versions) > 1 else ''} "
               f"{listed}; Triton serves the latest by default)")
    if serve.instances in ("gpu", "both"):
        click.echo("note: KIND_GPU instances: Triton fails to load this model on a machine without a GPU "
                   "(--instances auto uses the GPUs when there are any, else the CPU)", err=True)
