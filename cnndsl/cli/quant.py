"""`cnndsl compile --quantize int8`: compile float32, quantize, and say how far outputs moved."""

from __future__ import annotations

import os
import shutil
import tempfile

import click


def compile_int8(net, path: str, seed: int, opset, weights, fold_bn: bool, calibration: str | None,
                 samples: int) -> None:
    from cnndsl.lang.show import human_bytes
    from cnndsl.onnx.compile import compile_to_file
    from cnndsl.onnx.quantize import calibration_inputs, drift, quantize_file

    inputs = calibration_inputs(net.input_shape, calibration, samples, seed)
    work = tempfile.mkdtemp(prefix="cnndsl-int8-")
    try:
        float_path = compile_to_file(net.graph, os.path.join(work, "float.onnx"), seed=seed, opset=opset,
                                     weights=weights, fold_bn=fold_bn)[0]
        quantize_file(float_path, path, inputs)
        held_out = calibration_inputs(net.input_shape, None, 32, seed + 1)
        moved = drift(float_path, path, held_out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    source = calibration or f"{len(inputs)} seeded random inputs"
    click.echo(f"wrote {path} ({human_bytes(os.path.getsize(path))}, int8 QDQ, calibrated on {source})")
    line = f"int8 vs float32 on {moved['samples']} held-out seeded inputs: relative error {moved['relative_error']:.4f}"
    if "top1_agreement" in moved:
        line += f", top-1 agreement {moved['top1_agreement']:.0%}"
    click.echo(line)
