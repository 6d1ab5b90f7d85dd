"""One exception root for every stage; rendering happens once, at the edge (the CLI)."""

from __future__ import annotations

from cnndsl.lang.source import Span


class Style:
    """How rendered errors look: plain text. views.term.Style adds terminal colour."""

    def line(self, text: str) -> str:
        """A line that may start with a location and ``error:``/``note:``/``hint:``."""
        return text

    def caret(self, text: str) -> str:
        """The carets under an excerpt."""
        return text


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

    def render(self, style: Style | None = None) -> str:
        """``path:line:col: error: message``, the source line, a caret, notes and a hint. A
        ``style`` (views.term.Style, for a terminal) colours the prefixes and carets; errors
        themselves know nothing about terminals."""
        style = style or Style()

        def excerpt(span) -> str:
            line, caret = span.excerpt().split("\n")
            gutter = caret.index("|") + 2
            return f"{line}\n{caret[:gutter]}{style.caret(caret[gutter:])}"

        if self.span is not None:
            out = [style.line(f"{self.span.location}: {self.kind}: {self.message}"), excerpt(self.span)]
        elif self.path:
            out = [style.line(f"{self.path}: {self.kind}: {self.message}")]
        else:
            out = [style.line(f"{self.kind}: {self.message}")]
        for message, span in self.notes:
            if span is None:
                out.append(style.line(f"note: {message}"))
            else:
                out.append(style.line(f"{span.location}: note: {message}"))
                out.append(excerpt(span))
        if self.hint:
            out.append(style.line(f"hint: {self.hint}"))
        return "\n".join(out)

    def to_dict(self) -> dict:
        """The error as data (for --json): message, hint, location and notes."""
        def where(span) -> dict:
            if span is None:
                return {}
            return {"path": span.source.path, "line": span.line, "col": span.col,
                    "end_line": span.end_line, "end_col": span.end_col}

        out = {"message": self.message, "hint": self.hint, **where(self.span)}
        if self.span is None and self.path:
            out["path"] = self.path
        out["notes"] = [{"message": message, **where(span)} for message, span in self.notes]
        return out

    def __str__(self) -> str:
        return self.render()


class SpecSyntaxError(CnnDslError):
    """The text does not follow the grammar."""


class CheckError(CnnDslError):
    """The spec parses but is wrong: bad arguments, shapes that do not fit, bad names."""


class CheckWarning(CnnDslError):
    """Not an error: something that checks but is probably not what was meant (rendered `warning:`)."""

    kind = "warning"


class CompileError(CnnDslError):
    """The network is valid but cannot be compiled here (size, opset)."""


class WeightsError(CnnDslError):
    """A weights file does not match the network."""


class RunError(CnnDslError):
    """A model cannot be run: bad model file, bad input, unavailable device."""


class ExportError(CnnDslError):
    """A model cannot be exported: bad options, or the model repository cannot take it."""


class ImportModelError(CnnDslError):
    """An ONNX model cannot be imported as a spec: unreadable, unsafe, or beyond the language."""


class GraphError(CnnDslError):
    """A diagram cannot be drawn or written: unknown format, Graphviz missing or failing."""


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
