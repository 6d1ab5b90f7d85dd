"""Class names for `cnndsl run --labels`: built in (``imagenet``: ImageNet-1k's 1000, ``voc``: Pascal VOC's 21,
in the order of torchvision's classifiers; tools/class_names.py wrote them) or from a file, one name a line.

A labels file is untrusted input: at most MAX_BYTES are read, it must be UTF-8, and a blank line (which
would shift every name after it) is refused with its line number.
"""

from __future__ import annotations

import os
from pathlib import Path

from cnndsl.errors import RunError

BUILTIN = ("imagenet", "voc")
MAX_BYTES = 4 << 20  # ImageNet-21k's names are about 1 MB
FOLDER = Path(__file__).resolve().parent / "labels"


def load_labels(source: str) -> list[str]:
    """The names of ``source``: a built-in set's name, or a text file of one name a line."""
    if source in BUILTIN:
        return (FOLDER / f"{source}.txt").read_text(encoding="utf-8").splitlines()
    from cnndsl.io import input_kind

    kind = input_kind(source)
    if kind is not None:
        raise RunError(f"the labels are {kind}, not a file", path=source, hint="give a text file, one name a line")
    try:
        with open(source, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise RunError("no such labels file", path=source,
                       hint=f"give a text file of one name a line, or a built-in set: {', '.join(BUILTIN)}") from None
    except OSError as exc:
        raise RunError(f"cannot read the labels: {exc.strerror or exc}", path=source) from None
    if len(data) > MAX_BYTES:
        raise RunError(f"the labels file is larger than {MAX_BYTES:,} bytes", path=source,
                       hint="one name a line: a thousand classes take a few kilobytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RunError("the labels file is not UTF-8 text", path=source, hint="save it as UTF-8") from None
    names = [line.strip() for line in text.splitlines()]
    while names and not names[-1]:
        names.pop()
    for number, name in enumerate(names, 1):
        if not name:
            raise RunError(f"line {number} is blank: every line names the class of its position", path=source,
                           hint="remove the blank line, or name the class")
    if not names:
        raise RunError("the labels file names no class", path=source, hint="one name a line")
    return names


def check_labels(names: list[str], classes: int, source: str) -> None:
    """A RunError unless there is one name for each of ``classes`` outputs."""
    if len(names) != classes:
        shown = source if source in BUILTIN else os.path.basename(source)
        raise RunError(f"--labels {shown} names {len(names):,} classes; the output has {classes:,}",
                       hint="give one name for each class the network scores, in the order of its outputs")
