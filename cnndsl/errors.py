"""One exception root for every stage; rendering happens once, at the edge (the CLI)."""

from __future__ import annotations

from .source import Span


class CnnDslError(Exception):
    """A mistake a user can act on: a message, where it happened, and a hint.

    ``notes`` are extra (message, span) pairs, e.g. the call sites of the block that
    an error happened in.
    """

    kind = "error"

    def __init__(self, message: str, span: Span | None = None, hint: str | None = None,
                 notes: tuple[tuple[str, Span | None], ...] = (), path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint
        self.notes = tuple(notes)
        self.path = path

    def render(self) -> str:
        """``path:line:col: error: message``, the source line, a caret, notes and a hint."""
        if self.span is not None:
            out = [f"{self.span.location}: error: {self.message}", self.span.excerpt()]
        elif self.path:
            out = [f"{self.path}: error: {self.message}"]
        else:
            out = [f"error: {self.message}"]
        for message, span in self.notes:
            if span is None:
                out.append(f"note: {message}")
            else:
                out.append(f"{span.location}: note: {message}")
                out.append(span.excerpt())
        if self.hint:
            out.append(f"hint: {self.hint}")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.render()


class SpecSyntaxError(CnnDslError):
    """The text does not follow the grammar."""


class CheckError(CnnDslError):
    """The spec parses but is wrong: bad arguments, shapes that do not fit, bad names."""


class CompileError(CnnDslError):
    """The network is valid but cannot be compiled here (size, opset)."""


class WeightsError(CnnDslError):
    """A weights file does not match the network."""


class RunError(CnnDslError):
    """A model cannot be run: bad model file, bad input, unavailable device."""


class RuleError(Exception):
    """Raised by a layer rule, without a position; check.py turns it into a CheckError.

    ``field`` names the argument at fault, so the error can point at it.
    """

    def __init__(self, message: str, hint: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.field = field


def did_you_mean(word: str, choices) -> str | None:
    """'did you mean X?' for the closest of ``choices``, or None."""
    import difflib

    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None
