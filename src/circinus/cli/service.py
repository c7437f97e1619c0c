"""``circinus service``: the online planner behind an authenticated HTTP API (needs the
``service`` extra; without it the command stops with one line naming the extra)."""

from __future__ import annotations

import os
import secrets
import socket
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from circinus.cli.common import error, guard, interrupt_code
from circinus.errors import CircinusError, SpecError

if TYPE_CHECKING:
    from circinus.spec.index import WorldIndex

TOKEN_ENV = "CIRCINUS_SERVICE_TOKEN"
"""Environment variable holding the bearer token when no ``--token-file`` is given."""
MIN_TOKEN_CHARS = 16


class MissingExtra(CircinusError):
    """An optional dependency the command needs is not installed."""


def service(
    world: Annotated[Path, typer.Argument(help="World file: its devices, links, pipelines and "
                                          "the queries planned at the first start.")],
    store: Annotated[str | None, typer.Option(
        help="Decision store: a SQLAlchemy URL (sqlite:///file.db, postgresql+psycopg://...) "
        "or a file path; default: service-<world file name>.db in $CIRCINUS_CACHE or "
        "~/.cache/circinus. "
        "A store holding state is restored from, not re-planned.")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on (127.0.0.1: this machine "
                                      "only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8080,
    token_file: Annotated[Path | None, typer.Option(
        help="File holding the bearer token; created with a fresh token (mode 600) if missing. "
        f"Default: the token in ${TOKEN_ENV}.")] = None,
    max_pending: Annotated[int, typer.Option(
        min=1, max=100_000, help="Requests that may wait for the planner (429 beyond).")] = 64,
    max_body_kb: Annotated[int, typer.Option(
        min=1, max=65_536, help="Largest request body, KiB (413 beyond).")] = 1024,
    why_not: Annotated[bool, typer.Option(
        "--why-not/--no-why-not",
        help="Give a waiting arrival its nearest admissible SLO.")] = True,
) -> None:
    """Serve WORLD's online planner over HTTP: queries arrive and leave, devices change, and
    every decision is committed to the store before it is answered."""

    def run() -> None:
        try:
            import uvicorn

            from circinus.service import DecisionStore, PlannerService, ServiceSettings
            from circinus.service.app import create_app
            from circinus.service.store import fingerprint
        except ImportError as exc:
            raise MissingExtra(f"circinus service needs the service extra ({exc.name} is "
                               "missing): pip install 'circinus[service]'") from None
        from circinus.cli.common import measured
        from circinus.spec.load import parse_world, read_document
        from circinus.spec.validate import build_index

        if token_file is not None and token_file.exists():
            _token(token_file)  # a bad token file fails before anything else is done
        _free(host, port)
        if not world.is_file():
            raise SpecError(f"{world}: no such file; give the world file to serve")
        file_id = fingerprint(world.read_bytes())
        db = DecisionStore(store or _default_store(world))
        stored, stored_file = db.identity()
        planned: WorldIndex | str
        if stored is not None and stored_file == file_id:
            # The file the state was first planned from: the store's state wins, so the file
            # need not be read (at 10,000 queries, seconds of every restart).
            planned = stored
        else:
            data = read_document(world)
            name = data.get("name") if isinstance(data, dict) else None
            if stored is not None and stored != name:
                db.close()
                raise SpecError(f"--store: {db.display_url!r} holds the state of world "
                                f"{stored!r}, not {name!r}; use another --store")
            if stored is not None:  # the store's state wins: the queries are not planned
                data = {**data, "queries": []}
            planned = measured(build_index(parse_world(data, origin=str(world))), None,
                               quiet=False)
        token = _token(token_file)
        settings = ServiceSettings(max_pending=max_pending, max_body_bytes=max_body_kb * 1024,
                                   why_not=why_not)
        svc = PlannerService(planned, db, settings=settings, fingerprint=file_id)
        app = create_app(svc, token)
        if isinstance(planned, str) or stored is not None:
            how = f"restoring the state of {stored!r}"
        else:
            how = f"planning the {len(planned.world.queries)} queries of {planned.world.name!r}"
        Console(stderr=True, soft_wrap=True).print(
            f"circinus service on http://{host}:{port} ({how}; store {db.display_url}); "
            "GET /readyz says when it is ready", highlight=False)
        try:
            uvicorn.run(app, host=host, port=port, log_level="info", access_log=False,
                        server_header=False, timeout_graceful_shutdown=10)
        finally:
            if svc.abandoned:
                # stopped while the writer still plans the world: the interpreter would wait
                # for that thread at exit, for as long as the planning takes
                error("interrupted while the state was being planned or restored; the store "
                      "keeps only what was committed")
                sys.stderr.flush()
                os._exit(interrupt_code())

    guard(run)


def _token(path: Path | None) -> str:
    """The bearer token from ``path`` (created when missing) or the environment."""
    if path is None:
        token = os.environ.get(TOKEN_ENV, "").strip()
        if not token:
            raise SpecError(f"--token-file: give a token file (created with a fresh token if "
                            f"missing) or set {TOKEN_ENV}")
        where = f"${TOKEN_ENV}"
    elif not path.exists():
        if not path.parent.is_dir():
            raise SpecError(f"--token-file: folder {str(path.parent)!r} does not exist; create "
                            "it first")
        token = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        Console(stderr=True, soft_wrap=True).print(
            f"a fresh token was written to {path} (readable by you alone)", highlight=False)
        return token
    else:
        if path.is_dir():
            raise SpecError(f"--token-file: {str(path)!r} is a folder; give a file")
        token = path.read_text(encoding="utf-8").strip()
        where = f"--token-file {str(path)!r}"
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
        raise SpecError(f"{where}: the token must be one word of at least {MIN_TOKEN_CHARS} "
                        "characters; e.g. python -c 'import secrets; "
                        "print(secrets.token_urlsafe(32))'")
    return token


def _free(host: str, port: int) -> None:
    """Refuse at once an address that cannot be listened on (a port in use, an unknown
    host), before the world is planned."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise SpecError(f"--host: cannot resolve {host!r} ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise SpecError(f"--port: cannot listen on {host}:{port} ({exc.strerror}); choose "
                            "another --port or stop what uses it") from None


def _default_store(world: Path) -> str:
    """A SQLite file named after the world file, in the cache folder."""
    folder = Path(os.environ.get("CIRCINUS_CACHE", Path.home() / ".cache" / "circinus"))
    folder.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in world.stem)
    return f"sqlite:///{folder / f'service-{safe}.db'}"
