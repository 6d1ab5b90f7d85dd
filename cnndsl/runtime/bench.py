"""Measuring inference: latency percentiles, throughput and effective GFLOP/s of one session."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BenchResult:
    provider: str
    batch: int
    runs: int
    session_s: float  # creating the onnxruntime session
    latencies_ms: tuple[float, ...]
    macs_per_sample: int | None
    io_binding: bool = False  # input and output kept on the GPU while timing

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q))

    @property
    def median_ms(self) -> float:
        return self.percentile(50)

    @property
    def throughput(self) -> float:
        """Samples per second at the median latency."""
        return self.batch / (self.median_ms / 1000)

    @property
    def gflops(self) -> float | None:
        """Effective GFLOP/s: 2 x MACs x batch / median latency (conv and dense work only)."""
        if not self.macs_per_sample:
            return None
        return 2 * self.macs_per_sample * self.batch / (self.median_ms / 1000) / 1e9


def measure(model, device: str = "auto", batch: int = 1, threads: int | None = None, runs: int = 20,
            warmup: int = 3, seconds: float | None = None, macs: int | None = None, progress=None) -> BenchResult:
    """Run ``model`` (a path or bytes) ``runs`` times after ``warmup`` runs on a seeded input.

    ``seconds`` caps the timed runs by wall time (at least 3 runs); ``progress(i, n)`` is called
    after each timed run.
    """
    from cnndsl.errors import RunError
    from cnndsl.runtime.run import CUDA, Runner, _first_line, make_input

    start = time.perf_counter()
    runner = Runner.from_model(model, device=device, threads=threads)
    session_s = time.perf_counter() - start
    x, _, _ = make_input(runner.input_shape, None, None, False, 0, batch)  # memory checked first
    latencies = []
    try:
        once = runner.bound(x)
        for _ in range(warmup):
            once()
        began = time.perf_counter()
        for i in range(runs):
            t = time.perf_counter()
            once()
            latencies.append((time.perf_counter() - t) * 1000)
            if progress:
                progress(i + 1, runs)
            if seconds is not None and i >= 2 and time.perf_counter() - began > seconds:
                break
    except RunError:
        raise
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
        raise RunError(f"onnxruntime failed: {_first_line(exc)}") from None
    return BenchResult(runner.provider, batch, len(latencies), session_s, tuple(latencies), macs,
                       io_binding=runner.provider == CUDA)


def macs_from_model(path_or_model) -> int | None:
    """MACs per sample from the spec a cnndsl model carries in its metadata (None for others)."""
    import onnx

    model = path_or_model
    if isinstance(path_or_model, (str, bytes)):
        model = onnx.load_model(path_or_model, load_external_data=False) if isinstance(path_or_model, str) \
            else onnx.load_model_from_string(path_or_model)
    props = {p.key: p.value for p in model.metadata_props}
    text = props.get("cnndsl.spec")
    if not isinstance(text, str):  # absent, or not UTF-8 (protobuf then gives bytes): a model like any other
        return None
    from cnndsl.api import parse
    from cnndsl.errors import CnnDslError

    try:
        return parse(text).totals.macs
    except CnnDslError:  # a spec that no longer checks (edited, damaged): the figure is only a bonus
        return None
