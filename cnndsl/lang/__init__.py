"""The language front end: text <-> syntax. Source spans, parsing, syntax dataclasses, argument
values, limits and the formatter. Knows no layer semantics."""
