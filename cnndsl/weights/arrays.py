"""Arrays from untrusted .npy and .npz files: each header is read first, every declared size is
checked against the file and against the memory this machine has before a byte is decompressed
or allocated, and only the arrays asked for are read. Never a pickle (object arrays are refused).

``Stored`` is one array not yet read: its name, shape and dtype come from its header, and
``load()`` reads it. An .npz member that is never loaded is never decompressed, so a zip bomb
costs nothing unless its name and shape are the ones a spec expects.
"""

from __future__ import annotations

import math
import os
import tokenize
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cnndsl.lang.show import fmt_shape, human_bytes, printable
from cnndsl.memory import ensure_fits

MAX_HEADER = 10_000  # bytes of an .npy header, numpy's own limit for untrusted files
MAX_RANK = 32  # numpy's own
MAX_MEMBERS = 100_000  # arrays in one .npz


class ArrayFileError(Exception):
    """What is wrong with an array file, in words; callers add the path and their error class."""


@dataclass(frozen=True)
class Extent:
    """Where an array's bytes lie in a regular file as they are: little-endian, in C order; ``file`` is the
    (device, inode) the file had when it was checked, where known, so that a reader opening it again can tell
    that it is still that file."""

    path: str
    offset: int
    length: int
    file: tuple[int, int] | None = None


@dataclass(frozen=True)
class Stored:
    """One array in a file, known by its header; ``load()`` reads it (bounded by its header)."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    reader: Callable[[], np.ndarray]
    extent: Extent | None = None  # where its bytes can be copied from unread (None: only ``load()``)

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize

    def load(self) -> np.ndarray:
        ensure_fits(self.nbytes, lambda why: ArrayFileError(
            f"array '{printable(self.name)}' ({fmt_shape(self.shape) or 'scalar'} {self.dtype}) cannot be read: {why}"))
        return self.reader()


def npy(path: str) -> Stored:
    """The array of an .npy file."""
    with open(path, "rb") as fh:
        shape, dtype, fortran = _header(fh, os.path.basename(path))
        start = fh.tell()
        size = os.fstat(fh.fileno()).st_size
    need = math.prod(shape) * dtype.itemsize
    if size - start < need:
        raise ArrayFileError(f"the file is truncated: its header declares {fmt_shape(shape) or 'a scalar'} {dtype} "
                             f"({human_bytes(need)}), but only {human_bytes(size - start)} of data follow")

    def read() -> np.ndarray:
        with open(path, "rb") as fh:
            fh.seek(start)
            data = np.fromfile(fh, dtype=dtype, count=math.prod(shape))
        return _shaped(data, shape, fortran)

    return Stored(os.path.splitext(os.path.basename(path))[0], shape, dtype, read)


def npz(path: str) -> dict[str, Stored]:
    """The arrays of an .npz file by name, each read only when loaded."""
    try:
        with zipfile.ZipFile(path) as z:
            members = z.infolist()
            if len(members) > MAX_MEMBERS:
                raise ArrayFileError(f"the archive holds {len(members):,} members; the limit is {MAX_MEMBERS:,}")
            out = {}
            for info in members:
                name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                if name in out:
                    raise ArrayFileError(f"the archive holds '{printable(name)}' twice")
                out[name] = _member(path, z, info, name)
            return out
    except zipfile.BadZipFile:
        raise ArrayFileError(_not_zip(path)) from None
    except (zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError) as exc:
        raise ArrayFileError(f"unreadable archive: {exc}") from None


def _not_zip(path: str) -> str:
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if magic == b"\x93NUMPY":
        return "this is an .npy file (one array), not an .npz archive: rename it to .npy"
    return "corrupt or truncated .npz file (not a readable zip archive)"


def _member(path: str, z: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> Stored:
    with z.open(info) as fh:
        shape, dtype, fortran = _header(fh, name)
        start = fh.tell()
    need = math.prod(shape) * dtype.itemsize
    if info.file_size - start != need:
        raise ArrayFileError(f"array '{printable(name)}': its header declares {fmt_shape(shape) or 'a scalar'} {dtype} "
                             f"({human_bytes(need)}), but the archive says {human_bytes(info.file_size - start)}")

    def read() -> np.ndarray:
        try:
            with zipfile.ZipFile(path) as again, again.open(info) as fh:
                _header(fh, name)
                data = fh.read(need)
        except (zipfile.BadZipFile, EOFError, OSError, RuntimeError) as exc:  # a bad CRC, a truncated member
            raise ArrayFileError(f"array '{printable(name)}' is damaged: {_first_line(exc)}") from None
        if len(data) != need:
            raise ArrayFileError(f"array '{printable(name)}' is truncated")
        return _shaped(np.frombuffer(data, dtype=dtype), shape, fortran)

    return Stored(name, shape, dtype, read)


def _header(fh, name: str) -> tuple[tuple[int, ...], np.dtype, bool]:
    """(shape, dtype, fortran order) from an .npy header, or ArrayFileError: never an object dtype."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(fh, max_header_size=MAX_HEADER)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = fmt.read_array_header_2_0(fh, max_header_size=MAX_HEADER)
        else:
            raise ValueError(f"unknown .npy version {version}")
    except (ValueError, SyntaxError, TypeError, OverflowError, MemoryError, RecursionError, EOFError,
            zipfile.BadZipFile, tokenize.TokenError) as exc:
        raise ArrayFileError(f"'{printable(name)}' is not a readable .npy array: {_first_line(exc)}") from None
    if dtype.hasobject:
        raise ArrayFileError(f"array '{printable(name)}' holds Python objects (pickled objects are refused)")
    if len(shape) > MAX_RANK or any(not isinstance(d, int) or d < 0 for d in shape):
        raise ArrayFileError(f"array '{printable(name)}' declares an impossible shape {printable(repr(shape))}")
    return tuple(shape), dtype, fortran


def _shaped(data: np.ndarray, shape: tuple[int, ...], fortran: bool) -> np.ndarray:
    return data.reshape(shape[::-1]).transpose() if fortran else data.reshape(shape)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return printable(text[0][:200]) if text else type(exc).__name__
