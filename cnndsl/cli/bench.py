"""The `cnndsl bench` command's work: get the model, measure, print."""

from __future__ import annotations

import json

import click

from cnndsl.views.term import Progress


def bench_command(model: str, device: str, batch: int, threads: int | None, runs: int, as_json: bool) -> None:
    from cnndsl.cli.run import model_source
    from cnndsl.runtime.bench import macs_from_model, measure

    source, macs = model_source(model, seed=0, batch=batch)
    if macs is None:
        macs = macs_from_model(source)
    bar = Progress()

    def progress(i, n):
        bar.show(f"timed run {i}/{n}")

    try:
        r = measure(source, device=device, batch=batch, threads=threads, runs=runs, macs=macs, progress=progress)
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
        click.echo(f"effective: {r.gflops:,.1f} GFLOP/s (2 x {macs:,} MACs x {batch} per run)")
