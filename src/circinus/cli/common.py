"""Helpers every ``circinus`` subcommand shares: error mapping, atomic writes, profiling.

Subcommand modules import this module and never :mod:`circinus.cli.main`, which imports them
(``tests/test_package_graph.py`` checks it).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import re
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import typer
from rich.console import Console
from rich.text import Text
from typer import _click as click
from typer.core import TyperGroup

from circinus.errors import CircinusError, SpecError

if TYPE_CHECKING:
    from circinus.spec.index import WorldIndex

_state = {"debug": False, "interrupted": False, "terminated": False}
"""``debug``: set once per invocation by the ``--debug`` option of the ``circinus`` callback;
``interrupted``: whether Ctrl-C has been reported; ``terminated``: whether the interrupt was
a SIGTERM (``kill``), which ends the command the same way with exit code 143."""
INTERRUPT_GRACE_S = 1.5
"""How long after Ctrl-C the program may take to end on its own before the watchdog ends it."""


def set_debug(debug: bool) -> None:
    """Whether :func:`guard` lets errors through with their traceback (``--debug``)."""
    _state["debug"] = debug


def guard(fn: Callable[[], Any], *, interrupted: str = "interrupted") -> Any:
    """Run ``fn``, turning Circinus errors into one line on stderr and an exit code.

    Ctrl-C prints ``error: <interrupted>`` and exits 130 (``interrupted`` may say what was
    kept); a closed output pipe (``circinus plan ... | head``) ends the command quietly with
    exit 0: the reader chose to stop reading.
    """
    try:
        return fn()
    except KeyboardInterrupt:
        if _state["debug"]:
            raise
        _state["interrupted"] = True
        error(interrupted)
        raise typer.Exit(interrupt_code()) from None
    except BrokenPipeError:
        _silence_stdout()
        raise typer.Exit(0) from None
    except SystemExit as exc:
        if closed_pipe(exc):
            raise typer.Exit(0) from None
        raise
    except CircinusError as exc:
        if _state["debug"]:
            raise
        error(str(exc))
        raise typer.Exit(exc.exit_code) from None
    except OSError as exc:
        if _state["debug"]:
            raise
        from circinus.spec.load import short_path

        where = f"{short_path(exc.filename)}: " if exc.filename else ""
        error(f"{where}{exc.strerror or exc}")
        raise typer.Exit(1) from None


MAX_ERROR_CHARS = 500
"""An error line longer than this is cut (a message quoting a huge value stays readable)."""


def error(message: str) -> None:
    """One line on stderr: plain text (never rich markup), control characters (terminal
    escapes) shown escaped, at most :data:`MAX_ERROR_CHARS` long."""
    _say("error: ", "bold red", message)


def warn(message: str) -> None:
    """Like :func:`error`, for what the command did but the user should know."""
    _say("warning: ", "bold yellow", message)


def _say(prefix: str, style: str, message: str) -> None:
    text = " ".join(printable(message).split())
    if len(text) > MAX_ERROR_CHARS:
        tail = f"... ({len(text):,} characters in all)"
        text = text[:MAX_ERROR_CHARS - len(tail)] + tail
    line = Text.assemble((prefix, style), text)
    Console(stderr=True, soft_wrap=True).print(line, highlight=False)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with every control character but tab and newline written as an escape
    (``\\x1b``), so that printing it cannot move the cursor or change colours."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def closed_pipe(exc: SystemExit) -> bool:
    """Whether ``exc`` is rich's way of ending the program when stdout is a closed pipe (it
    points stdout at /dev/null and exits 1)."""
    return isinstance(exc.__context__, BrokenPipeError)


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush into a closed pipe does
    not print a second error."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def check_output(path: Path, option: str, *, inputs: Sequence[Path | None] = (),
                 folder: Sequence[str] | None = None) -> None:
    """Refuse an output ``path`` before any work is done: its folder missing, a folder where a
    file is wanted (or, with ``folder``, the names of the files written into the folder
    ``path``, a file where a folder is), or one of the command's ``inputs`` (writing there
    would replace the input with the output).

    Raises:
        SpecError: naming ``option``.
    """
    from circinus.spec.load import short_path

    shown = short_path(path)
    try:
        parent = path.absolute().parent
        if folder is None and not parent.is_dir():
            raise SpecError(f"{option}: folder {short_path(parent)!r} does not exist; create "
                            "it first")
        if folder is not None and path.exists() and not path.is_dir():
            raise SpecError(f"{option}: {shown!r} is a file; name a folder")
        if folder is None and path.is_dir():
            raise SpecError(f"{option}: {shown!r} is a folder; name a file in it")
    except OSError as exc:
        raise SpecError(f"{option}: {shown!r} cannot be written ({exc.strerror or exc})"
                        ) from exc
    targets = [path] if folder is None else [path / name for name in folder]
    for given in inputs:
        if given is not None and any(_same_file(t, given) for t in targets):
            raise SpecError(f"{option}: {shown!r} would overwrite the input "
                            f"{short_path(given)!r}; name another "
                            f"{'file' if folder is None else 'folder'}")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def write_atomic(path: Path, text: str | bytes | Iterable[str] | Iterable[bytes]) -> None:
    """Write ``text`` (or its pieces, one after another: a large file need not be held whole;
    or its UTF-8 encoding, written as it is) and a final newline to ``path`` via a temporary
    file in the same folder, so that a crash or an interruption never leaves half a file, nor
    the temporary file. Pieces of bytes are written by a thread of their own while the next
    is made (:func:`_write_behind`)."""
    fd, tmp = tempfile.mkstemp(dir=path.absolute().parent, prefix=f".{path.name}.",
                               suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's file is private; the result should not be
        pieces: Iterator[str | bytes] = iter(
            [text] if isinstance(text, (str, bytes)) else text)
        first = next(pieces, "")
        if isinstance(first, bytes):
            with os.fdopen(fd, "wb") as raw:
                _write_behind(raw, first, pieces)  # type: ignore[arg-type]
                raw.write(b"\n")
        else:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(first)
                for piece in pieces:
                    out.write(piece)  # type: ignore[arg-type]
                out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write_behind(out: BinaryIO, first: bytes, pieces: Iterator[bytes]) -> None:
    """Write ``first`` and then ``pieces`` to ``out`` on a thread of their own, while this one
    makes the next piece: a write releases the GIL, so on a slow disk the serialising of a
    large plan file and its writing overlap (100,000 generated queries: 169 MB, which took a
    second to write on its own). An error of the writes is raised here once the pieces stop;
    one of the pieces' making stops the writes."""
    ready: queue.Queue[bytes | None] = queue.Queue(maxsize=2)
    failed: list[BaseException] = []

    def drain() -> None:
        while (piece := ready.get()) is not None:
            if not failed:
                try:
                    out.write(piece)
                except BaseException as exc:  # raised in the caller's thread
                    failed.append(exc)

    writer = threading.Thread(target=drain, name="circinus-write", daemon=True)
    writer.start()
    try:
        ready.put(first)
        for piece in pieces:
            if failed:
                break
            ready.put(piece)
    finally:
        ready.put(None)
        writer.join()
    if failed:
        raise failed[0]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def measured(index: WorldIndex, store: str | None, *, quiet: bool) -> WorldIndex:
    """``index`` with what it leaves unknown measured (samples from and to the profile
    store), or ``index`` itself when nothing is unknown."""
    from circinus.spec.unknowns import needs_profiling

    if not needs_profiling(index.world):
        return index  # without loading the profiler
    from circinus.planner import default_decisions
    from circinus.profile import SqlProfileStore, default_store_url, measure_world
    from circinus.spec.validate import build_index

    db = SqlProfileStore(store or default_store_url())
    try:
        with Console(stderr=True).status("profiling (samples from the store are reused)",
                                         spinner="dots") if not quiet else _nothing():
            result = measure_world(index.world, db, decide=default_decisions)
    finally:
        db.close()
    if not quiet:
        Console(stderr=True).print(
            f"profiled: {result.samples} runs measured, {result.reused} samples reused "
            f"from {db.display_url}")
    return build_index(result.world)


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield


class OneLineErrorGroup(TyperGroup):
    """The ``circinus`` command group: a usage error (a bad option value, an unknown option)
    is one line on stderr, exit code 2, as every other error; ``--debug`` is accepted after the
    subcommand too (``circinus plan W --debug``)."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        argv = hoist_debug(list(sys.argv[1:] if args is None else args))
        if args is None and standalone_mode:  # the real command line, not a test runner
            arm_interrupt_watchdog()
        try:
            code = super().main(argv, prog_name, complete_var, standalone_mode=False,
                                windows_expand_args=windows_expand_args, **extra)
            if not standalone_mode:
                return code
            sys.exit(code if isinstance(code, int) else 0)
        except click.exceptions.NoArgsIsHelpError as exc:
            if not standalone_mode:
                raise
            typer.echo(exc.ctx.get_help() if exc.ctx is not None else exc.format_message())
            sys.exit(exc.exit_code)
        except click.exceptions.ClickException as exc:
            if not standalone_mode:
                raise
            hint = ""
            ctx = getattr(exc, "ctx", None)
            if isinstance(exc, click.exceptions.UsageError) and ctx is not None:
                hint = f" (see `{ctx.command_path} --help`)"
            error(exc.format_message() + hint)
            sys.exit(exc.exit_code)
        except typer.Abort:
            if not standalone_mode:
                raise
            error("interrupted")
            sys.exit(interrupt_code())
        except SystemExit as exc:
            if closed_pipe(exc):
                sys.exit(0)
            raise


def hoist_debug(args: list[str]) -> list[str]:
    """``args`` with every ``--debug`` before a ``--`` moved to the front, where the
    ``circinus`` callback reads it."""
    end = args.index("--") if "--" in args else len(args)
    found = [i for i in range(end) if args[i] == "--debug"]
    if not found:
        return args
    return ["--debug", *(a for i, a in enumerate(args) if i not in found)]


_wakeup: list[socket.socket] = []


def arm_interrupt_watchdog(grace_s: float = INTERRUPT_GRACE_S) -> None:
    """End the process ``grace_s`` after Ctrl-C if it has not ended by itself.

    NOTE: Python turns SIGINT into KeyboardInterrupt only between bytecodes, so a command inside
    a long C call (a solver, a model's training, a database wait) would not stop until the call
    returns, which may be minutes. The signal also writes a byte to a wake-up socket, in C, at
    once; a daemon thread waiting on it wakes, gives the program ``grace_s`` to stop by itself
    (printing its one line, removing partial output), and otherwise prints the line, kills the
    worker processes and exits 130. Samples, plans and reports are written atomically, so
    nothing is left half-written either way.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    receive, send = socket.socketpair()
    send.setblocking(False)
    try:
        signal.set_wakeup_fd(send.fileno(), warn_on_full_buffer=False)
    except ValueError:
        return
    _wakeup[:] = [receive, send]  # the signal writes to the socket's descriptor: keep it open
    # A forked worker inherits the wake-up descriptor: the SIGTERM its pool ends it with would
    # reach this process's watchdog as an interrupt (a report ended 130 after its load sweep).
    os.register_at_fork(after_in_child=_forget_wakeup)

    _terminate_owner[:] = [os.getpid()]
    signal.signal(signal.SIGTERM, _terminate)

    def watch() -> None:
        while not {signal.SIGINT, signal.SIGTERM} & set(receive.recv(64)):
            pass
        time.sleep(grace_s)
        if not _state["interrupted"]:
            with contextlib.suppress(OSError):
                os.write(2, b"error: interrupted\n")
        for child in multiprocessing.active_children():
            with contextlib.suppress(OSError):
                child.kill()
        os._exit(interrupt_code())

    threading.Thread(target=watch, name="interrupt-watchdog", daemon=True).start()


def _forget_wakeup() -> None:
    """In a forked child: its signals wake no watchdog of its parent's."""
    with contextlib.suppress(ValueError):  # forked from another thread than the main one
        signal.set_wakeup_fd(-1)


_terminate_owner: list[int] = []
"""The process whose SIGTERM ends the command the way Ctrl-C does."""


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM: end the way Ctrl-C does (worker processes ended, partial output removed), not
    at once as Python's default does, which leaves a command's worker processes running. A
    forked worker inherits the handler; there SIGTERM (the pool ending it) ends it at once, as
    before, with no traceback."""
    if os.getpid() not in _terminate_owner:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        return
    _state["terminated"] = True
    raise KeyboardInterrupt


def interrupt_code() -> int:
    """Exit code of an interrupted command: 128 + the signal (130 Ctrl-C, 143 SIGTERM)."""
    return 143 if _state["terminated"] else 130
