"""The `cnndsl fmt` command's work: format specs in place, to stdout, or check them (for CI)."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import click

from cnndsl.errors import CnnDslError
from cnndsl.io import write_bytes
from cnndsl.lang.fmt import format_text
from cnndsl.views import term


def fmt_command(specs: tuple[str, ...], check: bool, to_stdout: bool, align: bool = True) -> int:
    """`cnndsl fmt`: rewrite each spec in place, print it (`-`, --stdout), or with --check list those
    that would change. A spec that fails is reported and the rest go on. Returns the exit status."""
    if check and to_stdout:
        raise click.UsageError("--check and --stdout cannot be used together: --check prints only the names "
                               "of the specs that would change; use one or the other")
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
                _write(path, new)
                term.echo_err(f"reformatted {path}")
        except CnnDslError as exc:
            _report(exc)
            failed += 1
    if check and changed:
        term.echo_err(f"{changed} of {len(specs)} spec{'s' if len(specs) != 1 else ''} would be reformatted; "
                      "run `cnndsl fmt` on them")
    return 1 if changed or failed else 0


def _report(exc: CnnDslError) -> None:
    """An error on stderr, as the other commands render theirs (in colour on a terminal)."""
    on = term.color_enabled(sys.stderr)
    click.echo(exc.render(term.Style(on)), err=True, color=on)


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


def _write(path: str, text: str) -> None:
    """Give the spec (through a symlink, the file it names) its new text, keeping its mode, owner and
    hard links; a spec that is read-only (even to root) is refused, as `gofmt -w` and black do."""
    target = os.path.realpath(path)
    try:
        st = os.stat(target)
        if not os.access(target, os.W_OK) or not st.st_mode & stat.S_IWUSR:
            raise CnnDslError("cannot write the spec: permission denied (the file is read-only)", path=path,
                              hint="make it writable (chmod u+w) to format it, or print the result with --stdout")
        if st.st_nlink > 1:
            _write_in_place(target, text.encode("utf-8"))
        else:
            write_bytes(target, text.encode("utf-8"))  # keeps the mode and, where it may, the owner
    except OSError as exc:
        raise CnnDslError(f"cannot write the spec: {exc.strerror}", path=path) from None


def _write_in_place(target: str, data: bytes) -> None:
    """Overwrite the file itself, for one with other hard links (a rename would split them); the
    text is complete before the file is touched."""
    with open(target, "r+b") as f:
        f.write(data)
        f.truncate()
