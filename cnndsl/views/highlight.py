"""Syntax highlighting: a Pygments lexer for .cnn specs (`pygmentize -l cnndsl spec.cnn`).

Keywords come from the grammar and layer kinds from the layer registry, so neither list can
drift from the language. Registered with Pygments by the ``pygments.lexers`` entry point.
"""

from __future__ import annotations

import re

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import (
    Comment,
    Error,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Whitespace,
)

from cnndsl.views.words import grammar_keywords, layer_kinds

NAME = r"[A-Za-z_][A-Za-z0-9_]*"


class CnnDslLexer(RegexLexer):
    """Highlights cnndsl specs: keywords, layer kinds, labels, options, numbers, comments."""

    name = "cnndsl"
    aliases = ["cnndsl", "cnn"]
    filenames = ["*.cnn"]
    mimetypes = ["text/x-cnndsl"]

    tokens = {
        "root": [
            (r"[ \t\f]+|\r?\n", Whitespace),
            (r"\\(?=[ \t\f]*\r?\n)", Punctuation),  # a line continuation
            (r"#[^\n]*", Comment.Single),
            (r'("[^"\n]*")([ \t\f]*)(:)', bygroups(Name.Label, Whitespace, Punctuation)),  # "denselayer{i+1}":
            (r'"[^"\n]*"', String.Double),
            (r'"[^"\n]*', Error),  # an unterminated string
            (rf"(block)([ \t\f]+)({NAME})", bygroups(Keyword.Declaration, Whitespace, Name.Function)),
            (rf"(network|variant)([ \t\f]+)({NAME})", bygroups(Keyword.Declaration, Whitespace, Name.Namespace)),
            (rf"(shortcut)([ \t\f]+)({NAME})", bygroups(Keyword, Whitespace, Name.Label)),
            (rf"({NAME})([ \t\f]*)(:)", bygroups(Name.Label, Whitespace, Punctuation)),
            (rf"({NAME})([ \t\f]*)(=)(?!=)", bygroups(Name.Attribute, Whitespace, Operator)),
            (rf"{NAME}(?=\()", Name.Function),  # a built-in function: max(a, b)
            (words(grammar_keywords(), prefix=r"\b", suffix=r"\b"), Keyword),
            (words(layer_kinds(), prefix=r"\b", suffix=r"\b"), Name.Builtin),
            (words(("true", "false"), prefix=r"\b", suffix=r"\b"), Keyword.Constant),
            (r"\d+(?:x\d+)+(?![A-Za-z0-9_])", Number),  # a size: 3x3, 3x224x224
            (r"(?:\d+\.\d*|\.\d+)(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+", Number.Float),
            (r"\d+", Number.Integer),
            (r"==|!=|<=|>=|//|[-+*/%<>]", Operator),
            (r"[{}()\[\],;]", Punctuation),
            (NAME, Name),
        ],
    }

    def analyse_text(text):  # Pygments makes it a static method
        """A guess for `pygmentize -g`: an `input CxHxW` line is a strong sign."""
        if re.search(r"^[ \t]*input[ \t]+\d+(?:x\d+)*[ \t]*(?:#.*)?$", text, re.MULTILINE):
            return 0.3
        return 0.0
