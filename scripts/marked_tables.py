"""Tables kept between markers in Markdown files, rewritten from committed JSON by a script.

A table named NAME of kind KIND sits between ``<!-- KIND:NAME -->`` and ``<!-- /KIND:NAME -->``
on lines of their own. ``scripts/bench_tables.py``, ``serve_tables.py`` and
``capacity_tables.py`` each give a kind, the files that carry its tables and how each table is
made; this module does the rewriting and the ``--check``.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path


def rewrite(text: str, kind: str, name: str, table: str) -> str | None:
    """``text`` with the table ``kind:name`` replaced by ``table``; ``None`` without markers."""
    pattern = re.compile(rf"(<!-- {kind}:{name} -->\n)(?:.*?\n)?(<!-- /{kind}:{name} -->)",
                         re.DOTALL)
    if not pattern.search(text):
        return None
    return pattern.sub(lambda m: m.group(1) + table.rstrip("\n") + "\n" + m.group(2), text)


def main(argv: list[str] | None, *, doc: str, kind: str, source: str,
         files: Mapping[Path, tuple[str, ...]], make: Callable[[str], str], root: Path) -> int:
    """Rewrite every table ``files`` lists (file -> table names), or check them (``--check``:
    exit 1 naming the stale files). ``make(name)`` renders one table; ``source`` names the JSON
    in the messages."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if stale")
    args = parser.parse_args(argv)
    tables: dict[str, str] = {}
    stale = []
    for path, names in files.items():
        text = path.read_text(encoding="utf-8")
        new = text
        for name in names:
            if name not in tables:
                tables[name] = make(name)
            replaced = rewrite(new, kind, name, tables[name])
            if replaced is None:
                print(f"{path.relative_to(root)}: no <!-- {kind}:{name} --> ... "
                      f"<!-- /{kind}:{name} --> markers; add them where the table goes",
                      file=sys.stderr)
                return 1
            new = replaced
        if new != text:
            stale.append(path)
            if not args.check:
                path.write_text(new, encoding="utf-8")
    if args.check and stale:
        print(f"{', '.join(str(p.relative_to(root)) for p in stale)}: a table differs from "
              f"{source}; run `python scripts/{kind}_tables.py`", file=sys.stderr)
        return 1
    return 0
