"""Writing an import's spec and weights: published together (cnndsl.io), neither half-written.

The weights are safetensors, in the spec's order and under its names. A weight whose bytes in
the model are already what safetensors holds (float32 raw data, which ONNX stores little-endian
in C order) and that needs no change is copied from file to file by the kernel
(``os.copy_file_range``), never read into this process; where the kernel cannot, it goes through
one reused buffer. Any other weight (another type, a transpose, a folded constant) is read as an
array, changed, and written from that array without a further copy. Each file is opened once, and
a file that no longer holds what its header promised is an ImportModelError.

Where the names are known before the spec (``guess``: the model's own, see names.weight_names),
the weights are written first and sent on to the disk while the spec is worked out and proven;
they are written again unless the proof gives exactly those names, in that order.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from cnndsl.errors import ImportModelError
from cnndsl.importer.lift import Weight
from cnndsl.importer.load import Source
from cnndsl.lang.show import printable
from cnndsl.weights.arrays import Extent

if TYPE_CHECKING:
    from cnndsl.importer import Imported

Weights = dict[str, tuple[Weight, tuple[int, ...]]]  # the spec's weight name -> (its source, its shape)
BUFFER = 4 << 20  # bytes copied at a time where the kernel cannot copy from file to file
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM, errno.EBADF}


def publish(source: Source, spec: str | os.PathLike | None, weights: str | os.PathLike | None,
            make: Callable[[], Imported], guess: Weights | None = None) -> Imported:
    """Write what ``make()`` imports: its spec to ``spec``, its weights to ``weights`` (either may be
    None), both published when both are written, neither otherwise (``make`` may fail too). With
    ``guess``, the weights are written under those names before ``make`` runs."""
    from cnndsl.io import publish as publication

    def fail(exc: OSError) -> ImportModelError:
        return ImportModelError(f"cannot write the output: {exc.strerror or exc}",
                                path=getattr(exc, "filename", None) or os.fspath(spec or weights))

    with publication(fail) as pub:
        spec_file = pub.file(os.fspath(spec)) if spec is not None else None
        weights_file = pub.file(os.fspath(weights)) if weights is not None else None
        early = guess if weights_file is not None else None
        if early is not None:
            _write_file(weights_file, source, early, again=False)
            pub.flush_early(weights_file)
        imported = make()
        if weights_file is not None and not _same(early, imported.weights):
            _write_file(weights_file, source, imported.weights, again=early is not None)
        if spec_file is not None:
            with open(spec_file, "w", encoding="utf-8") as fh:
                fh.write(imported.spec)
    return imported


def _same(early: Weights | None, final: Weights) -> bool:
    """Whether weights written early are the ones the proof gives: the same names, in the same
    order, from the same initializers, of the same shapes."""
    if early is None or list(early) != list(final):
        return False
    return all(a is b and s == t for (a, s), (b, t) in zip(early.values(), final.values(), strict=True))


def _write_file(path: str, source: Source, weights: Weights, again: bool) -> None:
    """Write the weights to a staged file: empty, opened without O_TRUNC (ext4 starts writing a
    file truncated to nothing back when it is closed, in the closing thread) unless ``again``."""
    fd = os.open(path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0) | (os.O_TRUNC if again else 0))
    try:
        write(fd, source, weights)
    finally:
        os.close(fd)


def array(source: Source, w: Weight, shape: tuple[int, ...]) -> np.ndarray:
    """One weight as the spec holds it: read from the model, changed where it must be, float32."""
    a = source.load(w.source)
    if w.transform is not None:
        a = w.transform(a)
    a = np.ascontiguousarray(a, dtype=np.float32)
    if a.shape != shape:
        raise ImportModelError(f"weight '{printable(w.source)}' reads as {a.shape}, not {shape}", path=source.path)
    return a


def write(fd: int, source: Source, weights: Weights) -> None:
    """Write the weights, as a safetensors file, to ``fd`` (a new, empty file open for writing)."""
    _write_all(fd, _header(source, weights))
    copier = _Copier(fd)
    try:
        for _, (w, shape) in weights.items():
            extent = _unchanged(source, w, shape)
            if extent is not None:
                copier.copy(extent, w.source)
            else:
                a = array(source, w, shape).astype("<f4", copy=False)
                _write_all(fd, memoryview(a.reshape(-1)).cast("B"))
    finally:
        copier.close()


def _header(source: Source, weights: Weights) -> bytes:
    header, offset = {}, 0
    for name, (_, shape) in weights.items():
        size = int(np.prod(shape, dtype=np.int64)) * 4
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    header["__metadata__"] = {"format": "pt", "source": os.path.basename(source.path)}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return len(raw).to_bytes(8, "little") + raw


def _unchanged(source: Source, w: Weight, shape: tuple[int, ...]) -> Extent | None:
    """Where the weight's bytes lie in a file exactly as safetensors writes them, or None."""
    if w.transform is not None:
        return None
    stored = source.stored(w.source)
    if stored is None or stored.extent is None or stored.dtype != np.float32 or stored.shape != shape:
        return None
    return stored.extent


def _write_all(fd: int, data) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class _Copier:
    """Appends byte ranges of files to the output: by the kernel where it can, else through a buffer."""

    def __init__(self, out: int) -> None:
        self.out = out
        self.files: dict[str, tuple[int, int]] = {}  # path -> (descriptor, size)
        self.kernel = hasattr(os, "copy_file_range")

    def copy(self, extent: Extent, name: str) -> None:
        fd, size = self.open(extent.path, extent.file)
        offset, left = extent.offset, extent.length
        if offset + left > size:
            raise self.changed(extent, name)
        while left and self.kernel:
            try:
                n = os.copy_file_range(fd, self.out, left, offset)
            except OSError as exc:
                if exc.errno not in _NO_KERNEL_COPY:
                    raise
                n = 0
            if n == 0:  # not between these files (or a file system that says 0): the buffer finds out
                self.kernel = False
                break
            offset, left = offset + n, left - n
        while left:
            data = os.pread(fd, min(left, BUFFER), offset)
            if not data:
                raise self.changed(extent, name)
            _write_all(self.out, data)
            offset, left = offset + len(data), left - len(data)

    def open(self, path: str, file: tuple[int, int] | None = None) -> tuple[int, int]:
        """The descriptor and size of ``path``, opened once, without following a link (a link put in the place
        of an external data file since it was checked could lead out of the model's folder) and, where
        ``file`` gives the (device, inode) it had then, only while it is still that file."""
        if path not in self.files:
            flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0) | \
                getattr(os, "O_NOFOLLOW", 0)
            try:
                fd = os.open(path, flags)
            except OSError as exc:
                raise ImportModelError(f"cannot be read again ({exc.strerror or exc})", path=path) from None
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):  # swapped since it was read (O_NONBLOCK: a FIFO cannot hold us)
                os.close(fd)
                raise ImportModelError("the file is no longer a regular file", path=path)
            if file is not None and (st.st_dev, st.st_ino) != file:
                os.close(fd)
                raise ImportModelError("the file was replaced since it was read", path=path,
                                       hint="import it again from a folder no one else writes to")
            self.files[path] = (fd, st.st_size)
        return self.files[path]

    @staticmethod
    def changed(extent: Extent, name: str) -> ImportModelError:
        return ImportModelError(f"tensor '{printable(name)}': cannot be read (the file changed while it was read)",
                                path=extent.path)

    def close(self) -> None:
        for fd, _ in self.files.values():
            os.close(fd)
        self.files.clear()
