"""The ``circinus`` executable: the command-line interface, loaded so that Ctrl-C is answered
from the first instant.

NOTE: loading the interface (typer, rich, pydantic, numpy) takes about a second, and typer
builds its commands (reading their annotations) after that, both before a command's own
interrupt handling exists; a Ctrl-C there would end in a traceback of some import. This module
imports nothing heavy itself and answers it the way every command does.

A Ctrl-C that lands while Python evaluates a string (typer reading annotations does) marks the
interpreter to end itself by SIGINT when it finalises, whatever exit code the command chose:
the caller would see "killed by SIGINT", not 130. So an interrupted command (a Ctrl-C or
SIGTERM received at any point) ends here with its own code, after flushing its output, without
the interpreter's finalisation; the commands have already removed their partial output and
ended their workers by then.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import NoReturn

INTERRUPTED = 130
"""Exit status of an interrupted command (128 + SIGINT), as the commands use."""
_INTERRUPT_CODES = (130, 143)  # 128 + SIGINT, 128 + SIGTERM

_received: list[int] = []
"""The SIGINTs this process received (handled as Python's default does, and counted)."""


def _on_sigint(signum: int, frame: object) -> None:
    _received.append(signum)
    raise KeyboardInterrupt


def run() -> None:
    """Load the command-line interface and run it (the ``circinus`` console script)."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_sigint)
    try:
        from circinus.cli.main import main

        main()
    except KeyboardInterrupt:  # before a command's own handling: loading, building commands
        pass
    except SystemExit as exc:
        if exc.code in _INTERRUPT_CODES:  # the command has said so
            _end(int(exc.code))
        if not _received:
            raise
    else:
        if not _received:
            return
    # Interrupted where no command could say so, or a Ctrl-C that something swallowed: the
    # command still ends as asked.
    sys.stderr.write("error: interrupted\n")
    _end(INTERRUPTED)


def _end(code: int) -> NoReturn:
    """Exit with ``code`` now, output flushed, without the interpreter's finalisation."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to say
            stream.flush()
    os._exit(code)
