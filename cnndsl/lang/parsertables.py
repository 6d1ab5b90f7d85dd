"""The LALR parser for grammar/cnn.lark, from tables generated at development time.

lark's own cache (``cache=True``) pickle-loads a predictably named file in the shared temp folder,
so any local user who writes that file first runs code in every later cnndsl command. cnndsl never
reads a pickle: the parse tables are generated once, by ``python tools/regen.py``, into
``cnndsl/lang/grammar_tables.py`` inside the package (a module of literals: data, never code that
does anything; installed with the package, never read from a shared folder), stamped with the
CRC-32 and length of the grammar they came from (change detection, not security: both files ship
in the package; hashlib would cost every command 4 ms of OpenSSL start-up). When the stamp does
not match the grammar (the grammar was edited and the tables not regenerated) the parser is built
from the grammar in memory: slower, never wrong, and tests/test_parsertables.py fails until the
tables are regenerated.
"""

from __future__ import annotations

import zlib
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
    """The stamp of a grammar text: its CRC-32 and its length."""
    data = text.encode("utf-8")
    return f"crc32:{zlib.crc32(data):08x}:{len(data)}"


TABLES = Path(__file__).resolve().parent / "grammar_tables.py"


@lru_cache(maxsize=1)
def _tables() -> dict | None:
    """The generated tables when they match the grammar in use, else None. They are a module of
    Python literals (data only: dicts, tuples, strings, numbers), so Python's own bytecode cache
    loads them: a JSON file of the same tables took as long to decode as lark takes to load them."""
    import importlib

    try:
        module = importlib.import_module("cnndsl.lang.grammar_tables")
    except (ImportError, SyntaxError, ValueError):
        return None
    if getattr(module, "GRAMMAR_STAMP", None) != grammar_digest(grammar_text()):
        return None
    return {"data": module.DATA, "memo": module.MEMO}


def tables_are_current() -> bool:
    """True when cnndsl/lang/grammar_tables.py was generated from the grammar in use."""
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
    """The text of cnndsl/lang/grammar_tables.py for the grammar in use and the installed lark."""
    import lark
    from lark import Lark
    from lark.grammar import Rule
    from lark.lexer import TerminalDef

    text = grammar_text()
    data, memo = Lark(text, **TABLE_OPTIONS).memo_serialize([TerminalDef, Rule])
    data["options"] = {k: v for k, v in data["options"].items() if k not in _RUNTIME_OPTIONS}
    for value in _leaves(data, memo):  # literals only: the module must stay data
        if not isinstance(value, (str, int, float, bool, type(None))):
            raise TypeError(f"lark's tables hold a {type(value).__name__}; they cannot be written as literals")
    return (f'"""The LALR tables of grammar/cnn.lark, written by tools/regen.py with lark {lark.__version__}; '
            'do not edit. Data only."""\n\n'
            f"GRAMMAR_STAMP = {grammar_digest(text)!r}\n\n"
            f"DATA = {data!r}\n\nMEMO = {memo!r}\n")  # one line each: data, not for reading


def _leaves(*values):
    for value in values:
        if isinstance(value, dict):
            yield from _leaves(*value.keys(), *value.values())
        elif isinstance(value, (list, tuple)):
            yield from _leaves(*value)
        else:
            yield value
