"""The ``circinus`` executable: the command-line interface, loaded so that Ctrl-C is answered
from the first instant.

NOTE: loading the interface (typer, rich, pydantic, numpy) takes about a second, before the
commands' own interrupt handling exists; a Ctrl-C in that second would end in a traceback of
some import. This module imports nothing heavy itself and answers it the way every command does.
"""

from __future__ import annotations

import sys

INTERRUPTED = 130
"""Exit status of an interrupted command (128 + SIGINT), as the commands use."""


def run() -> None:
    """Load the command-line interface and run it (the ``circinus`` console script)."""
    try:
        from circinus.cli.main import main
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        raise SystemExit(INTERRUPTED) from None
    main()
