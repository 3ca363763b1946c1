"""The FastAPI application factory: services in the lifespan, routers from the API modules,
and one error handler that turns every failure into the one error body."""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from logloupe import __version__
from logloupe.errors import LogLoupeError, TooManyRequests, error_body
from logloupe.serve.services import Services
from logloupe.settings import Settings

log = logging.getLogger(__name__)

# One line per API module; each exposes ``router`` (and may expose ``setup(services)``, ``teardown(services)``
# and ``configure_app(app)``, called once when the app is built: middleware, OpenAPI additions).
ROUTER_MODULES = [
    "logloupe.serve.api.health",
    "logloupe.serve.api.search",
    "logloupe.serve.api.export",
    "logloupe.serve.api.logs",
    "logloupe.serve.api.saved_searches",
    "logloupe.serve.api.metrics",
    "logloupe.serve.api.auth",
    "logloupe.serve.api.tenant_admin",
    "logloupe.serve.ui.login.page",
    "logloupe.serve.api.alerts",
    "logloupe.serve.api.patterns",
    "logloupe.serve.api.stats",
    "logloupe.serve.api.tail",
    "logloupe.serve.api.ui",
    "logloupe.serve.api.elastic",
    "logloupe.serve.api.otlp",
    "logloupe.serve.api.loki",
    "logloupe.serve.api.upload",
    "logloupe.serve.api.syslog",
    "logloupe.serve.api.sources",
    "logloupe.serve.api.anomalies",
    "logloupe.serve.api.insights",
    "logloupe.serve.api.parsing",
    "logloupe.serve.api.pattern_labels",
]


def _modules() -> list[Any]:
    found = []
    for name in ROUTER_MODULES:
        try:
            found.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return found


def _product(request: Request) -> dict[str, str]:
    """Elasticsearch clients refuse any answer without ``X-Elastic-Product``, errors included (they
    would report "not Elasticsearch" instead of the 401, 413 or 429): give it on the ES routes."""
    path = request.url.path
    if path == "/" or path.startswith("/_") or "/_bulk" in path or "/_doc" in path:
        return {"X-Elastic-Product": "Elasticsearch"}
    return {}


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    settings = settings or (services.settings if services else Settings())
    modules = _modules()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = services is None
        svc = services or Services.open(settings)
        app.state.services = svc
        try:
            for module in modules:
                setup: Callable[[Services], None] | None = getattr(module, "setup", None)
                if setup is not None:
                    setup(svc)
        except BaseException:
            if own:  # a module refused to start (bad configuration): release the store
                svc.close()
            raise
        app.state.ready = True
        try:
            yield
        finally:
            app.state.ready = False
            for module in reversed(modules):
                teardown: Callable[[Services], None] | None = getattr(module, "teardown", None)
                if teardown is not None:
                    teardown(svc)
            if own:
                svc.close()

    app = FastAPI(
        title="LogLoupe",
        version=__version__,
        description="Ingest, search, analyse and alert on logs. Errors share one body: "
        '`{"error": {"code", "message", ...}}`.',
        lifespan=lifespan,
    )
    app.state.ready = False

    @app.exception_handler(LogLoupeError)
    async def _domain_error(request: Request, exc: LogLoupeError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, TooManyRequests) else {}
        if exc.status >= 500:
            log.error("request failed: %s", exc.message)
        return JSONResponse(exc.body(), status_code=exc.status, headers={**headers, **_product(request)})

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"location": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")} for e in exc.errors()
        ]
        first = problems[0] if problems else {"location": "", "message": "invalid request"}
        return JSONResponse(
            error_body("invalid_input", f"{first['location']}: {first['message']}", problems=problems),
            status_code=400,
            headers=_product(_request),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden"}.get(
            exc.status_code, "http_error"
        )
        return JSONResponse(
            error_body(code, str(exc.detail)),
            status_code=exc.status_code,
            headers={**(getattr(exc, "headers", None) or {}), **_product(_request)},
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return JSONResponse(
            error_body("internal", "internal error; see the server log"), status_code=500, headers=_product(_request)
        )

    for module in modules:
        app.include_router(module.router)
    for module in modules:
        configure: Callable[[FastAPI], None] | None = getattr(module, "configure_app", None)
        if configure is not None:
            configure(app)
    return app
