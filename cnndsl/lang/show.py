"""Values and shapes as a person writes them in a spec: `3x3`, `(1, 2, 1, 2)`, `true`."""

from __future__ import annotations


class Quoted(str):
    """A value written as a "quoted string" (not a bare word), so messages can show it as written."""


def show(value) -> str:
    """A value as the user would write it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Quoted):
        return f'"{value}"'
    if isinstance(value, tuple) and len(value) == 4:
        return "(" + ", ".join(show(v) for v in value) + ")"
    if isinstance(value, tuple) and value and all(isinstance(v, int) for v in value):
        return "x".join(str(v) for v in value)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[...]"
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value)


def fmt_shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape)


def human_bytes(n: int) -> str:
    """Decimal units (1 KB = 1000 B), as in the course's figures; beyond 1000 EB, powers of ten."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB", "EB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1e} EB"


PRINTED_MAX = 200  # characters of an untrusted name shown in a message


def printable(text: str) -> str:
    """Untrusted text (a tensor name from a weights file, a name in an ONNX model) made safe to
    print: every character that is not printable (escape sequences, CR, LF, bidirectional
    overrides) is shown as its Python escape, so it can neither forge a line nor drive a terminal;
    beyond PRINTED_MAX characters it is cut short."""
    text = str(text)
    cut = f"... ({len(text):,} characters)" if len(text) > PRINTED_MAX else ""
    text = text[:PRINTED_MAX]
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)
    return text + cut
