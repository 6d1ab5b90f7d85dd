"""Weight files (untrusted input): safetensors, npz and ONNX initializers, never pickle; loading them by name.

Each reader returns name -> weights.arrays.Stored: headers are parsed and checked (every offset,
size and shape against the file) up front, and data is read only for the names the spec expects
(weights.match). Nothing in a file can make cnndsl allocate more than the spec's own weights.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import stat

import numpy as np

from cnndsl.errors import WeightsError
from cnndsl.io import input_kind, reading
from cnndsl.lang.show import fmt_shape, printable
from cnndsl.memory import ensure_fits
from cnndsl.weights import arrays
from cnndsl.weights.arrays import ArrayFileError, Extent, Stored
from cnndsl.weights.match import BFLOAT16, match_weights

PICKLE_EXTS = {".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle", ".tar"}
CONVERSION = """cnndsl never unpickles (a .pt file can run arbitrary code). Convert it once, where torch is installed:
    import torch, safetensors.torch
    safetensors.torch.save_file(torch.load("model.pt", weights_only=True), "model.safetensors")"""

_ST_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": BFLOAT16, "I64": np.int64,
              "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
MAX_HEADER = 16 << 20  # a safetensors header: ~100 bytes a tensor, so room for ~150,000 tensors
MAX_RANK = 8


def load_weights(graph, source, strict: bool = True) -> tuple[dict[str, np.ndarray], list[str]]:
    """The user's weights for ``graph`` (name -> float32 array) and notes to show the user.

    ``source`` is a weights file (.safetensors, .npz or .onnx), a dict name -> array, or None (no
    weights: every tensor is seeded). Names are matched as ``weights.match`` says: strictly, like
    load_state_dict(strict=True), unless ``strict`` is False.
    """
    if source is None:
        return {}, []
    if isinstance(source, dict):
        return match_weights(graph, source, "<dict>", strict)
    path = os.fspath(source)
    return match_weights(graph, read_weights(path), path, strict)


def read_weights(path: str) -> dict[str, Stored]:
    """name -> Stored (any dtype, as stored), from the headers. Raises WeightsError naming the file."""
    ext = os.path.splitext(path)[1].lower()
    if ext in PICKLE_EXTS:
        raise WeightsError(f"refusing to read a pickle file ({ext})", path=path, hint=CONVERSION)
    kind = input_kind(path)
    if kind is not None or not os.path.isfile(path):
        raise WeightsError(f"the weights file is {kind}" if kind else "no such file", path=path)
    readers = {".safetensors": read_safetensors, ".npz": arrays.npz, ".onnx": _read_onnx}
    if ext not in readers:
        raise WeightsError(f"unknown weights format '{ext}'", path=path,
                           hint="use .safetensors, .npz or .onnx (another model's initializers)")
    reading(path)
    try:
        return readers[ext](path)
    except ArrayFileError as exc:
        raise WeightsError(str(exc), path=path) from None
    except OSError as exc:
        raise WeightsError(f"cannot read the file: {exc.strerror}", path=path) from None


def read_safetensors(path: str) -> dict[str, Stored]:
    """The safetensors format: u64 header size, a JSON header of dtype/shape/offsets, then data.
    Checked as the safetensors library checks it: no duplicate names, every offset an integer,
    the tensors laid end to end without gaps or overlaps and filling the data exactly."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size < 8:
            raise ArrayFileError("truncated safetensors file: no header")
        n = int.from_bytes(fh.read(8), "little")
        if n > min(MAX_HEADER, size - 8):
            raise ArrayFileError(f"corrupt safetensors file: a header of {n:,} bytes in a {size:,}-byte file"
                                 + (f" (the limit is {MAX_HEADER:,})" if n > MAX_HEADER else ""))
        header = _st_header(fh.read(n))
        buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size > 8 + n else b""
    entries = [(name, _st_entry(name, info)) for name, info in header.items() if name != "__metadata__"]
    end = 0
    for name, (_, _, begin, stop) in sorted(entries, key=lambda e: (e[1][2], e[1][3])):
        if begin != end:
            what = "overlaps the tensor before it" if begin < end else "leaves a gap before it"
            raise ArrayFileError(f"corrupt safetensors header: tensor '{printable(name)}' at [{begin}, {stop}) {what}")
        end = stop
    if 8 + n + end > size:
        raise ArrayFileError(f"the tensor data runs past the end of the file (truncated?): the tensors take "
                             f"{end:,} bytes, but {size - 8 - n:,} follow the header")
    if 8 + n + end < size:
        raise ArrayFileError(f"corrupt safetensors file: {size - 8 - n - end:,} bytes follow the last tensor")
    return {name: Stored(name, shape, dtype, _st_reader(buf, dtype, shape, 8 + n + begin))
            for name, (shape, dtype, begin, _) in entries}


def _st_header(raw: bytes) -> dict:
    def unique(pairs):
        out = {}
        for key, value in pairs:
            if key in out:
                raise ArrayFileError(f"corrupt safetensors header: '{printable(key)}' is given twice")
            out[key] = value
        return out

    def no_constant(word):
        raise ArrayFileError(f"corrupt safetensors header: {word} is not a number safetensors allows")

    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=unique, parse_constant=no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ArrayFileError(f"corrupt safetensors header: {printable(str(exc))[:200]}") from None
    if not isinstance(header, dict):
        raise ArrayFileError("corrupt safetensors header: not a JSON object")
    meta = header.get("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ArrayFileError("corrupt safetensors header: __metadata__ must map names to strings")
    return header


def _st_entry(name: str, info) -> tuple[tuple[int, ...], np.dtype, int, int]:
    """(shape, dtype, begin, end) of one header entry, each checked."""
    def bad(why: str) -> ArrayFileError:
        return ArrayFileError(f"tensor '{printable(name)}': corrupt header entry ({why})")

    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        raise bad("it needs exactly dtype, shape and data_offsets")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(dtype, str) or dtype not in _ST_DTYPES:
        raise bad(f"unsupported dtype {printable(str(dtype))[:40]}")
    if not isinstance(shape, list) or len(shape) > MAX_RANK or not all(_natural(d) for d in shape):
        raise bad("shape must be a list of at most 8 integers >= 0")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_natural(o) for o in offsets):
        raise bad("data_offsets must be two integers >= 0")
    begin, end = offsets
    np_dtype = np.dtype(_ST_DTYPES[dtype])
    need = math.prod(shape) * np_dtype.itemsize  # Python integers: no wrap-around
    if end - begin != need:
        raise bad(f"{dtype} {fmt_shape(shape) or 'scalar'} takes {need:,} bytes, its offsets [{begin}, {end}) "
                  f"{end - begin:,}")
    return tuple(shape), np_dtype, begin, end


def _natural(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _st_reader(buf, dtype: np.dtype, shape: tuple[int, ...], offset: int):
    def read() -> np.ndarray:
        return np.frombuffer(buf, dtype=dtype, count=math.prod(shape), offset=offset).reshape(shape)

    return read


def _read_onnx(path: str) -> dict[str, Stored]:
    """Another model's initializers. External data is read only for the names asked for, and only
    from regular files inside the model's folder, within their size."""
    import onnx

    ensure_fits(os.path.getsize(path) * 2, lambda why: ArrayFileError(f"the model cannot be read: {why}"))
    try:
        model = onnx.load_model(path, load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - any malformed protobuf
        raise ArrayFileError(f"not a readable ONNX model ({type(exc).__name__})") from None
    return onnx_initializers(model, os.path.dirname(os.path.abspath(path)))


def onnx_initializers(model, folder: str) -> dict[str, Stored]:
    """A loaded model's initializers (loaded without external data), each read only when asked
    for; external data only from regular files inside ``folder``, within their size."""
    import onnx
    from onnx import helper, numpy_helper

    out = {}
    for t in model.graph.initializer:
        name = t.name
        if not isinstance(name, str):  # protobuf hands back the bytes of a string that is not UTF-8
            raise ArrayFileError(f"a tensor's name is not text (not UTF-8: {printable(repr(name))[:80]})")
        try:
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type))
        except Exception:  # noqa: BLE001 - an unknown or string data type
            raise ArrayFileError(f"tensor '{printable(name)}': unsupported data type {t.data_type}") from None
        shape = tuple(int(d) for d in t.dims)
        if len(shape) > MAX_RANK or min(shape, default=0) < 0:
            raise ArrayFileError(f"tensor '{printable(name)}': impossible shape {printable(repr(shape))} "
                                 f"({len(shape):,} axes)")
        if t.data_location == onnx.TensorProto.EXTERNAL:
            reader, extent = _external(folder, t, dtype, shape)
        else:
            reader, extent = _inline(t, numpy_helper, dtype, shape), None
        out[name] = Stored(name, shape, dtype, reader, extent)
    return out


def _inline(t, numpy_helper, dtype, shape):
    def read() -> np.ndarray:
        try:
            arr = numpy_helper.to_array(t)
        except Exception as exc:  # noqa: BLE001
            raise ArrayFileError(f"tensor '{printable(t.name)}': unreadable ({printable(str(exc))[:200]})") from None
        if arr.shape != shape:
            raise ArrayFileError(f"tensor '{printable(t.name)}': its data does not fill {fmt_shape(shape)}")
        return arr

    return read


def _external(folder: str, t, dtype: np.dtype, shape: tuple[int, ...]):
    """A reader of one tensor's external data and where that lies (raw little-endian bytes, as ONNX
    stores them), after checking where it points and how much it says."""
    info = {e.key: e.value for e in t.external_data}
    where = info.get("location", "")
    name = printable(t.name)
    parts = where.replace("\\", "/").split("/")
    if not where or os.path.isabs(where) or ".." in parts:
        raise ArrayFileError(f"tensor '{name}': its external data '{printable(where)}' is not a file beside the model")
    target = os.path.realpath(os.path.join(folder, where))
    if os.path.commonpath([target, os.path.realpath(folder)]) != os.path.realpath(folder):
        raise ArrayFileError(f"tensor '{name}': its external data '{printable(where)}' leads outside the model's "
                             "folder (a symbolic link)")
    if not os.path.isfile(target):
        raise ArrayFileError(f"tensor '{name}': its external data '{printable(where)}' is not a regular file")
    need = math.prod(shape) * dtype.itemsize
    try:
        offset, length = int(info.get("offset", 0)), int(info.get("length", need))
    except ValueError:
        raise ArrayFileError(f"tensor '{name}': unreadable external data offset or length") from None
    if length != need or offset < 0 or offset + length > os.path.getsize(target):
        raise ArrayFileError(f"tensor '{name}': {fmt_shape(shape) or 'scalar'} {dtype} takes {need:,} bytes, but its "
                             f"external data gives {length:,} at offset {offset:,} of a "
                             f"{os.path.getsize(target):,}-byte file")

    st = os.stat(target)

    def read() -> np.ndarray:
        """The tensor, from the file that was checked: opened without following a link, and refused if it
        was replaced since (a link put there could lead out of the model's folder)."""
        flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(target, flags)
        except OSError as exc:
            raise ArrayFileError(f"tensor '{name}': its external data cannot be read again ({exc.strerror})") from None
        with os.fdopen(fd, "rb") as fh:
            now = os.fstat(fh.fileno())
            if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) or not stat.S_ISREG(now.st_mode):
                raise ArrayFileError(f"tensor '{name}': its external data was replaced since it was checked")
            fh.seek(offset)
            return np.fromfile(fh, dtype=dtype, count=math.prod(shape)).reshape(shape)

    return read, Extent(target, offset, length, (st.st_dev, st.st_ino))
