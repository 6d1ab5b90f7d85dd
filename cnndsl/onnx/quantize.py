"""int8: onnxruntime's static quantization (QDQ, per-channel int8 weights), calibrated on inputs the
user supplies or on seeded random ones; and how far the outputs move from float32."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable

import numpy as np

from cnndsl.errors import CompileError

HELD_OUT = 32  # seeded inputs (seed + 1) on which int8 and float32 outputs are compared


def compile_int8(compile_float: Callable[[str], object], path: str, input_shape: tuple[int, ...],
                 calibration: str | None, samples: int, seed: int) -> tuple[str, dict]:
    """Compile float32 (``compile_float(path)``) into a scratch folder, quantize it into ``path``,
    and measure the drift. Returns (what it was calibrated on, ``drift``'s figures)."""
    inputs = calibration_inputs(input_shape, calibration, samples, seed)  # a bad file fails before compiling
    work = tempfile.mkdtemp(prefix="cnndsl-int8-")
    try:
        float_path = os.path.join(work, "float.onnx")
        compile_float(float_path)
        quantize_file(float_path, path, inputs)
        moved = drift(float_path, path, calibration_inputs(input_shape, None, HELD_OUT, seed + 1))
    finally:
        _remove(work)
    return calibration or f"{len(inputs)} seeded random inputs", moved


def _remove(work: str) -> None:
    """Remove the scratch folder, also when a quantization abandoned on Ctrl-C still runs in its
    thread and writes there (tools/hostile.py found such folders left behind): the folder is
    renamed first, so that nothing new can be made at its path, then removed; whatever the thread
    still holds open goes when the process ends, and a last try runs at exit."""
    doomed = work
    try:  # into a folder of our own (a name beside it could be someone else's)
        holder = tempfile.mkdtemp(prefix="cnndsl-removing-", dir=os.path.dirname(work))
        os.rename(work, os.path.join(holder, "work"))
        doomed = holder
    except OSError:
        pass
    shutil.rmtree(doomed, ignore_errors=True)
    if os.path.exists(doomed):
        import atexit

        atexit.register(shutil.rmtree, doomed, True)


def calibration_inputs(input_shape: tuple[int, ...], path: str | None, samples: int, seed: int = 0) -> np.ndarray:
    """N x input: from a .npy/.npz/.txt file (validated against the model), or seeded N(0, 1)."""
    if path:
        from cnndsl.errors import RunError
        from cnndsl.runtime.run import load_input

        try:
            x = load_input(path, ("N", *input_shape))
        except RunError as exc:
            raise CompileError(exc.message, path=path, hint=exc.hint) from None
        return _checked_calibration(x, input_shape, path)
    return np.random.default_rng(seed).standard_normal((samples, *input_shape), dtype=np.float32)


def _checked_calibration(x: np.ndarray, input_shape: tuple[int, ...], path: str) -> np.ndarray:
    """Calibration inputs as float32, or a CompileError: they must be real, finite numbers, at
    least one sample, of the network's input shape."""
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise CompileError(f"calibration inputs have dtype {x.dtype}; they must be real numbers", path=path)
    if x.shape[1:] != tuple(input_shape):
        raise CompileError(f"calibration inputs have shape {x.shape[1:]}, the network takes {input_shape}",
                           path=path)
    if len(x) == 0:
        raise CompileError("the calibration file holds no samples (a batch of 0)", path=path)
    bad = int(x.size - np.count_nonzero(np.isfinite(x)))
    if bad:
        raise CompileError(f"{bad:,} calibration values are NaN or infinite", path=path,
                           hint="calibration sets the int8 ranges from the data: give finite inputs")
    return np.ascontiguousarray(x, dtype=np.float32)


class _Reader:
    """onnxruntime's CalibrationDataReader protocol: one sample at a time, then None."""

    def __init__(self, inputs: np.ndarray) -> None:
        self.samples = iter(inputs[i:i + 1] for i in range(len(inputs)))

    def get_next(self):
        x = next(self.samples, None)
        return None if x is None else {"input": x}


def quantize_file(float_path: str, out_path: str, inputs: np.ndarray) -> None:
    """Quantize ``float_path`` and publish the result at ``out_path`` (cnndsl.io)."""
    import logging

    from cnndsl.runtime.run import in_worker, onnxruntime

    onnxruntime()  # loaded with a private temp folder before its quantization package loads it
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    from cnndsl.io import publish

    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime's quantizer logs warnings at the root
    try:
        with publish(lambda exc: CompileError(f"cannot write {out_path}: {exc.strerror}", path=out_path)) as pub:
            staged = pub.file(out_path)
            # onnxruntime's quantizer makes its own scratch folder in the temp folder, and writes its
            # model where it is told; abandoned on Ctrl-C it may go on writing, so both go into our
            # scratch folder (removed whatever happens), and the model is copied out once it is whole.
            work = os.path.dirname(float_path)
            made = os.path.join(work, "int8.onnx")
            tempfile.tempdir = work
            in_worker(lambda: quantize_static(float_path, made, _Reader(inputs), quant_format=QuantFormat.QDQ,
                                              per_channel=True, weight_type=QuantType.QInt8,
                                              activation_type=QuantType.QUInt8), "cnndsl-int8")
            shutil.copyfile(made, staged)
    finally:
        tempfile.tempdir = None
        logging.getLogger().setLevel(level)


def drift(float_model: str, int8_model: str, inputs: np.ndarray) -> dict:
    """How far int8 outputs move from float32 on ``inputs``: relative L2 error and, for a
    classifier, top-1 agreement."""
    from cnndsl.runtime.run import Runner

    a = Runner.from_model(float_model, device="cpu").run(inputs)
    b = Runner.from_model(int8_model, device="cpu").run(inputs)
    out = {"samples": len(inputs), "relative_error": float(np.linalg.norm(b - a) / max(np.linalg.norm(a), 1e-30))}
    if a.ndim == 2 and a.shape[1] > 1:
        out["top1_agreement"] = float(np.mean(a.argmax(1) == b.argmax(1)))
    return out
