"""`cnndsl bench`: inference timed on a model or a spec; latency percentiles, throughput, GFLOP/s."""

from __future__ import annotations

import json

import click

from cnndsl import api
from cnndsl.cli.group import chosen, edge, main, spec_options
from cnndsl.views.term import Progress


@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--batch", default=1, show_default=True, type=click.IntRange(min=1), help="Batch size.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="onnxruntime intra-op threads (default: all cores).")
@click.option("--runs", default=30, show_default=True, type=click.IntRange(min=1),
              help="Timed runs (after 3 warm-up runs).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@spec_options
@edge
def bench(model: str, device: str, batch: int, threads: int | None, runs: int, as_json: bool) -> None:
    """Measure inference: latency percentiles, throughput, effective GFLOP/s, provider.

    MODEL is a compiled .onnx or a spec (compiled in memory with seeded weights).

    Example: cnndsl bench specs/resnet50.cnn --batch 8 --threads 2
    """
    bar = Progress()

    def progress(i, n):
        bar.show(f"timed run {i}/{n}")

    try:
        r = api.benchmark(model, device, batch, threads, runs, progress, *chosen())
    finally:
        bar.done()
    figures = {"model": model, "provider": r.provider, "batch": batch, "threads": threads, "runs": r.runs,
               "session_s": round(r.session_s, 4), "p50_ms": round(r.median_ms, 3),
               "p90_ms": round(r.percentile(90), 3), "p99_ms": round(r.percentile(99), 3),
               "min_ms": round(min(r.latencies_ms), 3), "throughput_per_s": round(r.throughput, 2),
               "gflops": round(r.gflops, 1) if r.gflops else None, "io_binding": r.io_binding}
    if as_json:
        click.echo(json.dumps(figures, indent=2))
        return
    where = "GPU" if r.provider.startswith("CUDA") else "CPU"
    click.echo(f"provider: {r.provider} ({where}), batch {batch}, threads {threads or 'default'}, {r.runs} runs"
               + ("; input and output stay on the GPU (I/O binding)" if r.io_binding else ""))
    click.echo(f"session created in {r.session_s * 1000:.0f} ms")
    click.echo(f"latency ms: p50 {r.median_ms:.2f}  p90 {r.percentile(90):.2f}  p99 {r.percentile(99):.2f}  "
               f"min {min(r.latencies_ms):.2f}")
    click.echo(f"throughput: {r.throughput:,.1f} samples/s")
    if r.gflops:
        click.echo(f"effective: {r.gflops:,.1f} GFLOP/s (2 x {r.macs_per_sample:,} MACs x {batch} per run)")
