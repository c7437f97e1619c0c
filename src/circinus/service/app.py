"""The HTTP API of the planner service (FastAPI): routes, authentication, limits, error bodies.

NOTE: every route but ``/healthz`` needs ``Authorization: Bearer <token>``, compared in
constant time. Bodies are validated with the world format's own models; a bad one is answered
422 with the path of the offending field. Every error body is a
:class:`~circinus.service.models.Problem` of one line: never a traceback or a path of the
machine (errors the caller cannot cause are logged and answered 500 without detail). Bodies
larger than the settings' limit are refused with 413 before they are read.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from circinus.errors import CircinusError, SpecError, UnknownNameError
from circinus.online import OnlinePlanner
from circinus.service.core import Busy, Conflict, KeyReused, NotReady, PlannerService
from circinus.service.models import (
    ArrivalOut,
    ChangeOut,
    DepartureOut,
    DeviceResize,
    DeviceState,
    Health,
    LinkCapacity,
    Problem,
    QueryList,
    QueryState,
    QuerySummary,
    RebalanceOut,
    RebalanceRequest,
)
from circinus.service.render import (
    arrival_out,
    change_out,
    departure_out,
    devices,
    query_state,
    rebalance_out,
)
from circinus.service.store import StoreError, digest
from circinus.spec.models import Device
from circinus.spec.models import Query as QuerySpec

log = logging.getLogger("circinus.service")

API_VERSION = "1"
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:@/+-]*$"
_PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "description": text} for code, text in [
        (400, "The body cannot be read as JSON."),
        (401, "Missing or wrong bearer token."),
        (413, "Request body too large."),
        (422, "The request does not validate (the field is named)."),
        (429, "The planner's queue is full; retry after `Retry-After` seconds."),
        (503, "Not ready (starting or rebuilding the state); retry after `Retry-After`.")]}
_UNAUTHORISED: dict[int | str, dict[str, Any]] = {401: _PROBLEMS[401]}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No such query or device."}}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "description": "Conflicts with the state."}}

NameParam = Annotated[str, Path(min_length=1, max_length=128, pattern=_NAME,
                                description="A name of the world format.")]
KeyHeader = Annotated[str | None, Header(
    alias="Idempotency-Key", min_length=1, max_length=256,
    description="Makes a retry of this request return the first answer instead of deciding "
    "again.")]


_BEARER = HTTPBearer(auto_error=False, description="The token given to `circinus service`.")


def create_app(service: PlannerService, token: str, *, open_on_start: bool = True) -> FastAPI:
    """The API around ``service``; ``token``: the bearer token every route but ``/healthz``
    asks for. ``open_on_start``: rebuild or plan the state when the server starts (in the
    background: ``/readyz`` answers 503 until it is done)."""
    if len(token) < 16:
        raise SpecError("the service token must be at least 16 characters")
    secret = token.encode()

    async def authorised(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    ) -> None:
        given = b"" if credentials is None else credentials.credentials.encode()
        if not hmac.compare_digest(given, secret):
            raise _Unauthorised()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if open_on_start:
            future = service.start_in_background()
            future.add_done_callback(_log_failure)
        yield
        service.close()

    app = FastAPI(title="Circinus planner service", version=API_VERSION, lifespan=lifespan,
                  dependencies=[Depends(_known_parameters)],
                  openapi_url=None, docs_url=None, redoc_url=None,
                  description="The online planner behind an authenticated HTTP API: queries "
                  "arrive and leave, devices and links change, and every decision is committed "
                  "to the store before it is answered.")
    auth = [Depends(authorised)]

    @app.get("/healthz", response_model=Health, tags=["health"])
    async def healthz() -> Health:
        """Liveness: the process answers (no token needed)."""
        return Health(status="ok")

    @app.get("/readyz", response_model=Health, dependencies=auth, tags=["health"],
             responses={**_UNAUTHORISED,
                        503: {"model": Health, "description": "Not ready."}})
    async def readyz() -> Response:
        """Readiness: the state is planned or restored and decisions are taken."""
        if service.status == "ok":
            return _json(200, Health(status="ok").model_dump())
        status: Literal["starting", "unavailable"] = (
            "starting" if service.status == "starting" else "unavailable")
        return _json(503, Health(status=status, detail=service.detail).model_dump(),
                     {"Retry-After": "5"})

    @app.get("/metrics", dependencies=auth, tags=["health"], response_class=Response,
             responses={**_UNAUTHORISED, 200: {"content": {"text/plain": {}},
                                                "description": "Prometheus text."}})
    async def metrics() -> Response:
        """Prometheus metrics: decisions, admissions, rejections by reason, decision latency,
        utilisation per device and link, queue depth."""
        return Response(service.metrics.render(),
                        media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/openapi.json", dependencies=auth, include_in_schema=False)
    async def openapi() -> dict[str, Any]:
        return app.openapi()

    @app.post("/v1/queries", status_code=201, response_model=ArrivalOut, dependencies=auth,
              tags=["queries"], responses={**_PROBLEMS, **_CONFLICT})
    async def arrive(query: QuerySpec, request: Request, key: KeyHeader = None) -> Response:
        """A query arrives: it is searched and admitted if a plan fits (its plan and
        prediction), or it waits (the reason and its nearest admissible SLO)."""
        request_digest = digest("POST", "/v1/queries", await request.body())

        def act(p: OnlinePlanner) -> tuple[int, ArrivalOut]:
            if query.name in p.queries:
                raise Conflict(f"a query named {query.name!r} is present; DELETE it first or "
                               "choose another name")
            try:
                arrival = p.arrive(query)
            except UnknownNameError:
                raise
            except SpecError as exc:
                raise _in_body(exc) from None
            return 201, arrival_out(p, arrival)

        return await _decide(service, "arrive", query.name, act, key, request_digest)

    @app.get("/v1/queries", response_model=QueryList, dependencies=auth, tags=["queries"],
             responses=_PROBLEMS)
    async def list_queries() -> QueryList:
        """Every present query, in arrival order."""

        def read(p: OnlinePlanner) -> QueryList:
            admitted = set(p.admitted)
            return QueryList(admitted=len(admitted), waiting=len(p.queries) - len(admitted),
                             queries=[QuerySummary(name=n, admitted=n in admitted)
                                      for n in p.queries])

        return await service.run(read)

    @app.get("/v1/queries/{name:path}", response_model=QueryState, dependencies=auth,
             tags=["queries"], responses={**_PROBLEMS, **_NOT_FOUND})
    async def get_query(name: NameParam) -> QueryState:
        """A present query: its plan and prediction now, or why it waits."""
        return await service.run(lambda p: query_state(p, name))

    @app.delete("/v1/queries/{name:path}", response_model=DepartureOut, dependencies=auth,
                tags=["queries"], responses={**_PROBLEMS, **_NOT_FOUND})
    async def depart(name: NameParam) -> Response:
        """A query leaves; what it held goes to waiting queries."""
        return await _decide(service, "depart", name,
                             lambda p: (200, departure_out(p.depart(name))), None, None)

    @app.get("/v1/devices", response_model=list[DeviceState], dependencies=auth,
             tags=["devices"], responses=_PROBLEMS)
    async def list_devices() -> list[DeviceState]:
        """Every device with its capacity and what the admitted plans use of it."""
        return await service.run(devices)

    @app.post("/v1/devices", status_code=201, response_model=ChangeOut, dependencies=auth,
              tags=["devices"], responses={**_PROBLEMS, **_CONFLICT})
    async def add_device(device: Device, request: Request, key: KeyHeader = None) -> Response:
        """A device comes online; waiting queries that can reach it are searched again."""
        request_digest = digest("POST", "/v1/devices", await request.body())

        def act(p: OnlinePlanner) -> tuple[int, ChangeOut]:
            if device.name in p.topology.devices:
                raise Conflict(f"a device named {device.name!r} exists; PUT to resize it")
            return 201, change_out(p.add_device(device))

        return await _decide(service, "add-device", device.name, act, key, request_digest)

    @app.put("/v1/devices/{name:path}", response_model=ChangeOut, dependencies=auth,
             tags=["devices"], responses={**_PROBLEMS, **_NOT_FOUND})
    async def resize_device(name: NameParam, size: DeviceResize) -> Response:
        """A device is resized (units and/or memory); plans over its new size move or wait."""
        return await _decide(service, "resize", name, lambda p: (200, change_out(
            p.set_capacity(device=name, units=size.units, memory_gb=size.memory_gb))),
            None, None)

    @app.delete("/v1/devices/{name:path}", response_model=ChangeOut, dependencies=auth,
                tags=["devices"], responses={**_PROBLEMS, **_NOT_FOUND})
    async def remove_device(name: NameParam) -> Response:
        """A device goes away; the queries it served are planned elsewhere if they fit."""
        return await _decide(service, "remove-device", name,
                             lambda p: (200, change_out(p.remove_device(name))), None, None)

    @app.put("/v1/links", response_model=ChangeOut, dependencies=auth, tags=["devices"],
             responses={**_PROBLEMS, **_NOT_FOUND})
    async def set_link(link: LinkCapacity) -> Response:
        """A directed link's capacity changes (null: unlimited)."""
        name = f"{link.src}->{link.dst}"
        return await _decide(service, "link", name, lambda p: (200, change_out(
            p.set_capacity(link=name, mbps=link.capacity_mbps))), None, None)

    @app.post("/v1/rebalance", response_model=RebalanceOut, dependencies=auth,
              tags=["plan"], responses=_PROBLEMS)
    async def rebalance(options: RebalanceRequest, request: Request,
                        key: KeyHeader = None) -> Response:
        """The global selector over every present query's candidates; kept if it admits more
        weight, or as much at a lower cost."""
        request_digest = digest("POST", "/v1/rebalance", await request.body())
        return await _decide(service, "rebalance", "", lambda p: (200, rebalance_out(
            p.rebalance(keep_admitted=options.keep_admitted,
                        time_limit_s=options.time_limit_s))), key, request_digest)

    @app.get("/v1/plan", dependencies=auth, tags=["plan"],
             responses={**_PROBLEMS, **_CONFLICT, 200: {
                 "description": "The plan file (docs/plan-format.md), or with "
                 "`format=ray-serve` the Ray Serve config that runs it.",
                 "content": {"application/json": {"schema": {"type": "object"}}}}})
    async def plan(fmt: Annotated[Literal["plan", "ray-serve"], Query(
            alias="format", description="plan: the plan file; ray-serve: the deploy config.")
            ] = "plan") -> Response:
        """The current plan as a plan file, or as the Ray Serve deploy config."""

        def read(p: OnlinePlanner) -> dict[str, Any]:
            planfile = p.plan_file(why_not=False)
            if fmt == "plan":
                return planfile.model_dump(mode="json")
            from circinus.runtime.build import build_config

            try:
                return build_config(p.index(), planfile, origin="plan").to_document()
            except SpecError as exc:
                raise Conflict(str(exc)) from None

        return _json(200, await service.run(read))

    _handlers(app)
    app.add_middleware(BodyLimit, limit=service.settings.max_body_bytes)
    return app


async def _decide(service: PlannerService, kind: str, subject: str,
                  act: Callable[[OnlinePlanner], tuple[int, Any]], key: str | None,
                  request: str | None) -> Response:
    answer = await service.run(
        lambda p: service.decide(p, kind, subject, act, key=key, request=request))
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    return _json(answer.status, answer.body, headers)


class _Unauthorised(Exception):
    pass


async def _known_parameters(request: Request) -> None:
    """Refuse query parameters the route does not take (a typo must not pass unnoticed)."""
    route = request.scope.get("route")
    known = {p.alias for p in getattr(getattr(route, "dependant", None), "query_params", ())}
    for name in request.query_params:
        if name not in known:
            raise RequestValidationError([{
                "loc": ("query", name), "type": "extra_forbidden",
                "msg": "unknown parameter" + (f"; the parameters are {sorted(known)}"
                                              if known else "; this route takes none")}])


class FieldError(SpecError):
    """A request field the planner refuses (e.g. a query naming an unknown pipeline)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def _in_body(exc: SpecError) -> SpecError:
    """The planner's error about the arriving query (``arrive: queries[0].x: ...``) with the
    field's path in the request (``body.x``)."""
    text = str(exc).removeprefix("arrive: ")
    path, sep, rest = text.partition(": ")
    if not sep or not path.startswith("queries[0]"):
        return exc
    field = "body" + path.removeprefix("queries[0]")
    return FieldError(f"{field}: {rest}", field)


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def _problem(status: int, error: str, *, field: str | None = None,
             headers: dict[str, str] | None = None) -> JSONResponse:
    return _json(status, Problem(error=" ".join(error.split()), field=field).model_dump(),
                 headers)


def _handlers(app: FastAPI) -> None:
    """Every error as a one-line :class:`Problem` (module note)."""

    async def unauthorised(_: Request, __: Exception) -> Response:
        return _problem(401, "missing or wrong bearer token; send Authorization: Bearer "
                        "<token>", headers={"WWW-Authenticate": "Bearer"})

    async def invalid(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        hint = ("; send a JSON object with Content-Type: application/json"
                if where == "body" else "")
        return _problem(422, f"{where}: {first.get('msg', 'invalid')}{hint}",
                        field=where or None)

    async def circinus_error(_: Request, exc: Exception) -> Response:
        status = (404 if isinstance(exc, UnknownNameError) else 409 if isinstance(exc, Conflict)
                  else 422)
        return _problem(status, str(exc), field=exc.field if isinstance(exc, FieldError) else None)

    async def busy(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, Busy)
        return _problem(429, f"{exc}; retry after {exc.retry_after} s",
                        headers={"Retry-After": str(exc.retry_after)})

    async def not_ready(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, NotReady)
        return _problem(503, f"not ready: {exc}", headers={"Retry-After": str(exc.retry_after)})

    async def store_failed(_: Request, exc: Exception) -> Response:
        log.error("store: %s", exc)
        return _problem(503, "the decision could not be committed and was not taken; retry",
                        headers={"Retry-After": "5"})

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        headers = None if exc.headers is None else dict(exc.headers)
        if exc.status_code == 405:  # every method of the path, not only its first route's
            allowed = sorted({m for r in request.app.routes
                              if r.matches(request.scope)[0] != Match.NONE
                              for m in getattr(r, "methods", ()) or ()})
            headers = {**(headers or {}), "Allow": ", ".join(allowed)}
        return _problem(exc.status_code, str(exc.detail), headers=headers)

    async def internal(_: Request, exc: Exception) -> Response:
        log.error("internal error", exc_info=exc)
        return _problem(500, "internal error; the service log has the details")

    async def too_large(_: Request, __: Exception) -> Response:
        return _problem(413, "request body too large; send a smaller body")

    app.add_exception_handler(_TooLarge, too_large)
    app.add_exception_handler(_Unauthorised, unauthorised)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StoreError, store_failed)
    app.add_exception_handler(KeyReused, circinus_error)
    app.add_exception_handler(CircinusError, circinus_error)
    app.add_exception_handler(Busy, busy)
    app.add_exception_handler(NotReady, not_ready)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, internal)


class BodyLimit:
    """ASGI middleware refusing request bodies over ``limit`` bytes with 413, by their
    ``Content-Length`` before reading, and by counting while reading otherwise."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", ())).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await _too_large(self.limit, scope, receive, send)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge()
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, sending)
        except _TooLarge:
            if not started:
                await _too_large(self.limit, scope, receive, send)


class _TooLarge(Exception):
    pass


async def _too_large(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    response = _problem(413, f"request body over {limit} bytes; send a smaller body")
    await response(scope, receive, send)


def _log_failure(future: Future[None]) -> None:
    exc = future.exception()
    if exc is not None:
        log.error("the service cannot start: %s", exc)
