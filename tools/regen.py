"""Regenerate the files cnndsl derives from its sources, or check that they are current.

    python tools/regen.py          # rewrite what is stale
    python tools/regen.py --check  # exit 1, naming each stale file

- cnndsl/lang/grammar_tables.json: the parser's LALR tables, from grammar/cnn.lark (see cnndsl/lang/parsertables.py).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cnndsl.lang import parsertables  # noqa: E402


def _tables() -> tuple[Path, str | None]:
    return parsertables.TABLES, None if parsertables.tables_are_current() else parsertables.tables_source()


GENERATED = [_tables]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only report stale files")
    args = ap.parse_args(argv)
    stale = 0
    for make in GENERATED:
        path, text = make()
        if text is None:
            continue
        stale += 1
        if args.check:
            print(f"stale: {path.relative_to(ROOT)} (run python tools/regen.py)")
            continue
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        print(f"wrote {path.relative_to(ROOT)}")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
