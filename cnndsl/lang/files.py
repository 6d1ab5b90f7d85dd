"""Spec files: read as UTF-8 text, and rewritten (by `cnndsl fmt`) keeping their mode, owner and links."""

from __future__ import annotations

import os
import stat
import sys

from cnndsl.errors import CnnDslError
from cnndsl.lang import limits


def read_spec(path: str | os.PathLike) -> str:
    """The text of a spec file (``-``: standard input); a CnnDslError naming the file if it cannot be
    read, is larger than the spec size limit (at most the limit and one byte are read: /dev/zero, a
    huge sparse file and a pipe cost nothing), or is not UTF-8."""
    from cnndsl.io import input_kind, reading

    kind = input_kind(path) if os.fspath(path) != "-" else None
    if kind is not None:
        raise CnnDslError(f"the spec is {kind}, not a file", path=str(path), hint="give the path of a .cnn file")
    try:
        if os.fspath(path) == "-":
            data = _read_at_most(sys.stdin.buffer, limits.MAX_SPEC_BYTES + 1)
        else:
            with open(path, "rb") as fh:
                data = _read_at_most(fh, limits.MAX_SPEC_BYTES + 1)
    except OSError as exc:
        raise CnnDslError(f"cannot read the spec: {exc.strerror}", path=str(path)) from None
    if len(data) > limits.MAX_SPEC_BYTES:
        raise CnnDslError(f"the spec is over {limits.MAX_SPEC_BYTES:,} bytes", path=str(path),
                          hint="is this really a spec? set CNNDSL_MAX_SPEC_BYTES to raise the limit")
    reading(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CnnDslError(f"the spec is not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x})",
                          path=str(path), hint="save the file as UTF-8") from None


def _read_at_most(fh, n: int) -> bytes:
    """Up to ``n`` bytes, read in pieces (a raised limit must not allocate ``n`` bytes up front)."""
    parts, size = [], 0
    while size < n:
        part = fh.read(min(n - size, 1 << 20))
        if not part:
            break
        parts.append(part)
        size += len(part)
    return b"".join(parts)


def write_spec(path: str, text: str) -> None:
    """Give the spec (through a symlink, the file it names) its new text, keeping its mode, owner and
    hard links; a spec that is read-only (even to root) is refused, as `gofmt -w` and black do."""
    from cnndsl.io import rewriting, write_bytes

    target = os.path.realpath(path)
    rewriting(target)  # fmt replaces the spec it read: that is its job
    try:
        st = os.stat(target)
        if not os.access(target, os.W_OK) or not st.st_mode & stat.S_IWUSR:
            raise CnnDslError("cannot write the spec: permission denied (the file is read-only)", path=path,
                              hint="make it writable (chmod u+w) to format it, or print the result with --stdout")
        if st.st_nlink > 1:
            _write_in_place(target, text.encode("utf-8"))
        else:
            write_bytes(target, text.encode("utf-8"))  # published whole; keeps the mode and, where it may, the owner
    except OSError as exc:
        raise CnnDslError(f"cannot write the spec: {exc.strerror}", path=path) from None


def _write_in_place(target: str, data: bytes) -> None:
    """Overwrite the file itself, for one with other hard links (a rename would split them); the
    text is complete before the file is touched."""
    with open(target, "r+b") as f:
        f.write(data)
        f.truncate()
