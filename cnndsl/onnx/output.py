"""The byte sink for model files (named, synced and published by cnndsl.io).

A large model is written with O_DIRECT where the file system allows it: the bytes go from one
reused, page-aligned staging buffer straight to the disk, instead of first being copied into
hundreds of megabytes of freshly allocated page cache (which, on the virtual machines we measure
on, costs 0.5 to 2 s of kernel time for VGG-16's 553 MB, and varies run to run).
"""

from __future__ import annotations

import mmap
import os

DIRECT_MIN_BYTES = 64 << 20  # below this, the page cache is cheap and direct I/O buys nothing
_ALIGN = 4096  # satisfies every Linux file system's O_DIRECT alignment (512 or 4096 bytes)
_BLOCK = 8 << 20


class Output:
    """A buffered file, flushed on a clean close (cnndsl.io syncs it to disk before publishing it)."""

    direct = False

    def __init__(self, path: str) -> None:
        self.fh = open(path, "wb")  # noqa: SIM115 - closed in __exit__

    def write(self, data) -> None:
        self.fh.write(data)

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb) -> None:
        try:
            if kind is None:
                self.fh.flush()
        finally:
            self.fh.close()


class DirectOutput(Output):
    """A file written through O_DIRECT in aligned blocks; the tail is padded, then truncated.

    Raises OSError from the constructor where the file system refuses O_DIRECT (tmpfs, some
    network file systems): use ``open_output``, which falls back to ``Output``.
    """

    direct = True

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o666)
        try:
            self.buf = mmap.mmap(-1, _BLOCK)  # page-aligned, as O_DIRECT requires
        except BaseException:
            os.close(self.fd)
            raise
        self.view = memoryview(self.buf)
        self.fill = 0  # bytes waiting in the staging buffer
        self.size = 0  # bytes accepted so far

    def write(self, data) -> None:
        data = memoryview(data).cast("B")
        self.size += len(data)
        while len(data):
            n = min(len(data), _BLOCK - self.fill)
            self.view[self.fill:self.fill + n] = data[:n]
            self.fill += n
            data = data[n:]
            if self.fill == _BLOCK:
                self._flush(_BLOCK)

    def _flush(self, n: int) -> None:
        done = 0
        while done < n:
            with self.view[done:n] as chunk:  # released even if the write fails, so buf can close
                done += os.write(self.fd, chunk)
        self.fill = 0

    def __exit__(self, kind, exc, tb) -> None:
        try:
            if kind is None:
                padded = -(-self.fill // _ALIGN) * _ALIGN
                self.view[self.fill:padded] = bytes(padded - self.fill)
                self._flush(padded)
                os.ftruncate(self.fd, self.size)
        finally:
            os.close(self.fd)
            self.view.release()
            self.buf.close()


def open_output(path: str, size_hint: int = 0) -> Output:
    """An ``Output`` for ``path``: direct I/O for files of ``size_hint`` >= DIRECT_MIN_BYTES where
    the platform and file system support it, buffered otherwise."""
    if size_hint >= DIRECT_MIN_BYTES and hasattr(os, "O_DIRECT"):
        try:
            return DirectOutput(path)
        except OSError:
            pass
    return Output(path)
