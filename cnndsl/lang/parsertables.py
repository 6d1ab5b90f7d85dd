"""The LALR parser for grammar/cnn.lark, from tables generated at development time.

lark's own cache (``cache=True``) pickle-loads a predictably named file in the shared temp folder,
so any local user who writes that file first runs code in every later cnndsl command. cnndsl never
reads a pickle: the parse tables are generated once, by ``python tools/regen.py``, into
``cnndsl/lang/grammar_tables.json`` inside the package (JSON: data, never code), stamped with the
SHA-256 of the grammar they came from. When the stamp does not match the grammar (the grammar was edited and the
tables not regenerated) the parser is built from the grammar in memory: slower, never wrong, and
tests/test_parse.py fails until the tables are regenerated.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

# Options fixed when the tables are generated; callers pass only the ones lark accepts on loading.
# Two start symbols: a whole spec, and one expression (the `{...}` holes of a quoted label).
TABLE_OPTIONS = {"parser": "lalr", "lexer": "contextual", "maybe_placeholders": True, "start": ["start", "expr"]}
_RUNTIME_OPTIONS = ("postlex", "lexer_callbacks", "propagate_positions", "transformer", "tree_class")


def grammar_text() -> str:
    """The grammar, from the source tree or from the installed package."""
    here = Path(__file__).resolve().parent
    beside = here.parent.parent / "grammar" / "cnn.lark"
    if beside.is_file():
        return beside.read_text(encoding="utf-8")
    from importlib.resources import files

    return files("cnndsl.grammar").joinpath("cnn.lark").read_text(encoding="utf-8")


def grammar_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


TABLES = Path(__file__).resolve().parent / "grammar_tables.json"
# JSON has neither tuples nor integer keys, which lark's tables use: each is stored as a one-key
# object under a key no lark name can be.
_TUPLE, _INT_KEYS = "\x00tuple", "\x00int-keys"


def _encode(value):
    if isinstance(value, tuple):
        return {_TUPLE: [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: _encode(v) for k, v in value.items()}
        return {_INT_KEYS: [[k, _encode(v)] for k, v in value.items()]}
    return value


def _decode(obj: dict):
    if len(obj) == 1:
        if _TUPLE in obj:
            return tuple(obj[_TUPLE])
        if _INT_KEYS in obj:
            return {k: v for k, v in obj[_INT_KEYS]}
    return obj


@lru_cache(maxsize=1)
def _tables() -> dict | None:
    """The generated tables when they match the grammar in use, else None."""
    try:
        tables = json.loads(TABLES.read_text(encoding="utf-8"), object_hook=_decode)
    except (OSError, ValueError):
        return None
    if not isinstance(tables, dict) or tables.get("grammar_sha256") != grammar_digest(grammar_text()):
        return None
    return tables


def tables_are_current() -> bool:
    """True when cnndsl/lang/grammar_tables.json was generated from the grammar in use."""
    return _tables() is not None


def make_parser(**runtime):
    """A lark parser for the grammar; `runtime` holds options lark accepts on loading (postlex,
    lexer_callbacks, propagate_positions, ...)."""
    from lark import Lark

    unknown = set(runtime) - set(_RUNTIME_OPTIONS)
    if unknown:
        raise ValueError(f"options fixed when the tables are generated: {sorted(unknown)}")
    tables = _tables()
    if tables is not None:
        try:
            return Lark._load_from_dict(tables["data"], tables["memo"], **runtime)
        except Exception:  # a lark release that reads its tables differently: build them instead
            pass
    return Lark(grammar_text(), **TABLE_OPTIONS, **runtime)


def tables_source() -> str:
    """The text of cnndsl/lang/grammar_tables.json for the grammar in use and the installed lark."""
    import lark
    from lark import Lark
    from lark.grammar import Rule
    from lark.lexer import TerminalDef

    text = grammar_text()
    data, memo = Lark(text, **TABLE_OPTIONS).memo_serialize([TerminalDef, Rule])
    data["options"] = {k: v for k, v in data["options"].items() if k not in _RUNTIME_OPTIONS}
    tables = {"generated_by": "tools/regen.py from grammar/cnn.lark; do not edit",
              "grammar_sha256": grammar_digest(text), "lark_version": lark.__version__,
              "data": _encode(data), "memo": _encode(memo)}
    return json.dumps(tables, separators=(",", ":")) + "\n"
