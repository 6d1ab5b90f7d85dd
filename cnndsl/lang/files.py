"""Spec files: read as UTF-8 text, and rewritten (by `cnndsl fmt`) keeping their mode, owner and links."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cnndsl.errors import CnnDslError


def read_spec(path: str | os.PathLike) -> str:
    """The text of a spec file; a CnnDslError naming the file if it cannot be read or is not UTF-8."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CnnDslError(f"cannot read the spec: {exc.strerror}", path=str(path)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CnnDslError(f"the spec is not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x})",
                          path=str(path), hint="save the file as UTF-8") from None


def write_spec(path: str, text: str) -> None:
    """Give the spec (through a symlink, the file it names) its new text, keeping its mode, owner and
    hard links; a spec that is read-only (even to root) is refused, as `gofmt -w` and black do."""
    from cnndsl.io import write_bytes

    target = os.path.realpath(path)
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
