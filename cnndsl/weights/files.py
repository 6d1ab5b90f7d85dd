"""Weight files (untrusted input): safetensors, npz and ONNX initializers, never pickle; loading them by name."""

from __future__ import annotations

import json
import mmap
import os

import numpy as np

from cnndsl.errors import WeightsError

PICKLE_EXTS = {".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle", ".tar"}
CONVERSION = """cnndsl never unpickles (a .pt file can run arbitrary code). Convert it once, where torch is installed:
    import torch, safetensors.torch
    safetensors.torch.save_file(torch.load("model.pt", weights_only=True), "model.safetensors")"""

_ST_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": "bf16", "I64": np.int64,
              "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
MAX_HEADER = 100 * 2 ** 20
BF16 = np.dtype(np.uint16, metadata={"name": "bfloat16"})  # raw bfloat16 bits, converted when matched


def load_weights(graph, source, strict: bool = True) -> tuple[dict[str, np.ndarray], list[str]]:
    """The user's weights for ``graph`` (name -> float32 array) and notes to show the user.

    ``source`` is a weights file (.safetensors, .npz or .onnx), a dict name -> array, or None (no
    weights: every tensor is seeded). Names are matched as ``seeded.match_weights`` says: strictly,
    like load_state_dict(strict=True), unless ``strict`` is False.
    """
    if source is None:
        return {}, []
    from cnndsl.weights.seeded import match_weights

    if isinstance(source, dict):
        return match_weights(graph, source, "<dict>", strict)
    path = os.fspath(source)
    return match_weights(graph, read_weights(path), path, strict)


def read_weights(path: str) -> dict[str, np.ndarray]:
    """name -> array (any dtype, as stored). Raises WeightsError naming the file and tensor."""
    ext = os.path.splitext(path)[1].lower()
    if ext in PICKLE_EXTS:
        raise WeightsError(f"refusing to read a pickle file ({ext})", path=path, hint=CONVERSION)
    if not os.path.isfile(path):
        raise WeightsError("no such file", path=path)
    if ext == ".safetensors":
        return read_safetensors(path)
    if ext == ".npz":
        return _read_npz(path)
    if ext == ".onnx":
        return _read_onnx(path)
    raise WeightsError(f"unknown weights format '{ext}'", path=path,
                       hint="use .safetensors, .npz or .onnx (another model's initializers)")


def bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    """bfloat16 bits (uint16) -> float32: the bf16 bits are the top half of a float32."""
    return (raw.astype(np.uint32) << 16).view(np.float32)


def read_safetensors(path: str) -> dict[str, np.ndarray]:
    """The safetensors format: u64 header size, a JSON header of dtype/shape/offsets, then data."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size < 8:
            raise WeightsError("truncated safetensors file: no header", path=path)
        buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    n = int.from_bytes(buf[:8], "little")
    if n > min(MAX_HEADER, size - 8):
        raise WeightsError(f"corrupt safetensors file: header of {n} bytes in a {size}-byte file", path=path)
    try:
        header = json.loads(bytes(buf[8:8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"corrupt safetensors header: {exc}", path=path) from None
    if not isinstance(header, dict):
        raise WeightsError("corrupt safetensors header: not a JSON object", path=path)
    data_start, out = 8 + n, {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        out[name] = _st_tensor(buf, data_start, size, name, info, path)
    return out


def _st_tensor(buf, data_start, size, name, info, path) -> np.ndarray:
    try:
        dtype, shape, (begin, end) = info["dtype"], [int(d) for d in info["shape"]], info["data_offsets"]
        begin, end = int(begin), int(end)
    except (KeyError, TypeError, ValueError):
        raise WeightsError(f"tensor '{name}': corrupt header entry {info!r}", path=path) from None
    if dtype not in _ST_DTYPES:
        raise WeightsError(f"tensor '{name}': unsupported dtype {dtype}", path=path)
    np_dtype = np.uint16 if dtype == "BF16" else np.dtype(_ST_DTYPES[dtype])
    itemsize = np.dtype(np_dtype).itemsize
    count = int(np.prod(shape)) if shape else 1
    if min(shape, default=0) < 0 or not 0 <= begin <= end or end - begin != count * itemsize:
        raise WeightsError(f"tensor '{name}': {dtype} {shape} does not fit its offsets [{begin}, {end})",
                           path=path)
    if data_start + end > size:
        raise WeightsError(f"tensor '{name}' runs past the end of the file (truncated?)", path=path)
    arr = np.frombuffer(buf, dtype=np_dtype, count=count, offset=data_start + begin).reshape(shape)
    return arr.view(BF16) if dtype == "BF16" else arr


def _read_npz(path: str) -> dict[str, np.ndarray]:
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as z:
            return {name: z[name] for name in z.files}
    except ValueError as exc:
        raise WeightsError(f"cannot read the .npz file: {exc} (pickled objects are refused)", path=path) from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise WeightsError(f"corrupt or truncated .npz file: {exc}", path=path) from None


def _read_onnx(path: str) -> dict[str, np.ndarray]:
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load_model(path, load_external_data=True)
    except Exception as exc:  # noqa: BLE001 - any malformed file
        raise WeightsError(f"not a readable ONNX model ({type(exc).__name__})", path=path) from None
    out = {}
    for t in model.graph.initializer:
        try:
            out[t.name] = numpy_helper.to_array(t)
        except Exception as exc:  # noqa: BLE001
            raise WeightsError(f"tensor '{t.name}': unreadable ({exc})", path=path) from None
    return out
