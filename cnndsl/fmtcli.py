"""The `cnndsl fmt` command's work: format specs in place, to stdout, or check them (for CI)."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from pathlib import Path

import click

from .errors import CnnDslError
from .fmt import format_text


def fmt_command(specs: tuple[str, ...], check: bool, to_stdout: bool, align: bool = True) -> int:
    """`cnndsl fmt`: rewrite each spec in place (atomically), print it (`-`, --stdout), or with
    --check list those that would change. Returns the exit status."""
    changed = failed = 0
    for path in specs:
        name = "<stdin>" if path == "-" else path
        try:
            text = sys.stdin.read() if path == "-" else _read(path)
            new = format_text(text, name, align)
            if check:
                if new != text:
                    changed += 1
                    click.echo(name)
            elif to_stdout or path == "-":
                click.echo(new, nl=False)
            elif new != text:
                _write_atomic(path, new)
                click.echo(f"reformatted {path}", err=True)
        except CnnDslError as exc:
            click.echo(exc.render(), err=True)
            failed += 1
    if check and changed:
        click.echo(f"{changed} of {len(specs)} spec{'s' if len(specs) != 1 else ''} would be reformatted; "
                   "run `cnndsl fmt` on them", err=True)
    return 1 if changed or failed else 0


def _read(path: str) -> str:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CnnDslError(f"cannot read the spec: {exc.strerror}", path=path) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CnnDslError(f"the spec is not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x})",
                          path=path, hint="save the file as UTF-8") from None


def _write_atomic(path: str, text: str) -> None:
    """Write beside the target, then rename over it: a failure leaves the spec as it was."""
    target = os.path.realpath(path)  # through a symlink, to the file it names
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".cnndsl-fmt-", suffix=".tmp", dir=os.path.dirname(target))
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode))
        os.replace(tmp, target)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(exc, OSError):
            raise CnnDslError(f"cannot write the spec: {exc.strerror}", path=path) from None
        raise
