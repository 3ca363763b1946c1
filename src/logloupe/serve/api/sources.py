"""Pull sources inside ``logloupe serve``: started in the lifespan from the ``sources`` settings, each
in its own thread writing through the server's StoreWriter, checkpoints in the metadata store.

``GET /api/v1/sources`` lists them with status, last read, errors, lag and position (the UI's
Sources page); the same figures are in ``/metrics`` as ``logloupe_source_*``.

A ``logloupe tail --server`` running elsewhere reports its status to
``PUT /api/v1/sources/{name}/status`` every few seconds: it is listed with the server's own sources
(``remote: true``, ``reported_at``; ``stale`` when no report came for ``REMOTE_STALE_S``) and its
lag, position and open files go to the same gauges.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends

from logloupe.errors import Forbidden, InvalidInput, NotFound
from logloupe.ingest.checkpoints import MetaCheckpoints
from logloupe.ingest.sinks import WriterSink
from logloupe.ingest.sources import SourceRunner, build_source, load_specs
from logloupe.metrics import SOURCE_FILES, SOURCE_LAG_BYTES, SOURCE_LAG_SECONDS, SOURCE_POSITION
from logloupe.serve.deps import Principal, get_principal, get_services
from logloupe.serve.services import Services

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["sources"])

EXTRA = "sources"
REMOTE = "remote_sources"  # (tenant, name) -> (status, monotonic time received)
REMOTE_STALE_S = 60.0
REMOTE_MAX = 1000  # per server; the oldest report is forgotten past it
_REMOTE_LOCK = threading.Lock()
INGEST_ROLES = ("ingest", "editor", "admin")


def setup(services: Services) -> None:
    settings = services.settings
    specs = load_specs(settings.sources, settings.sources_file)
    checkpoints = MetaCheckpoints(services.meta)
    # Build every source first, so a bad table stops start-up before anything runs.
    built = []
    for spec in specs:
        tenant = str(spec.get("tenant") or settings.default_tenant)
        built.append((tenant, build_source(spec, WriterSink(services, tenant), checkpoints)))
    runners: list[tuple[str, SourceRunner]] = []
    for tenant, source in built:
        services.meta.ensure_tenant(tenant, retention_days=settings.retention_days)
        runners.append((tenant, SourceRunner(source).start()))
        log.info("source %s (%s) started", source.id, source.kind)
    services.extras[EXTRA] = runners


def teardown(services: Services) -> None:
    for _tenant, runner in services.extras.pop(EXTRA, []):
        runner.stop()


def _visible(services: Services, principal: Principal) -> list[SourceRunner]:
    return [r for tenant, r in services.extras.get(EXTRA, []) if tenant == principal.tenant]


def _remote(services: Services, principal: Principal) -> list[dict[str, Any]]:
    now = time.monotonic()
    with _REMOTE_LOCK:
        reports = dict(services.extras.get(REMOTE, {}))
    out = []
    for (tenant, _name), (status, at) in sorted(reports.items()):
        if tenant == principal.tenant:
            age = now - at
            stale = age > REMOTE_STALE_S and status.get("status") != "stopped"
            out.append({**status, "status": "stale" if stale else status.get("status"), "remote": True,
                        "reported_s_ago": round(age, 1)})  # fmt: skip
    return out


@router.get("/sources", summary="Pull sources: status, last read, errors, lag and position")
def list_sources(
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
) -> dict[str, Any]:
    own = [r.source.status.to_api() for r in _visible(services, principal)]
    return {"sources": own + _remote(services, principal)}


_NUMBER_KEYS = ("events_total", "batches_total", "errors_total")


@router.put("/sources/{name}/status", summary="A remote `logloupe tail` reports its status, lag and position")
def report_status(
    name: str,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
    status: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    if principal.role not in INGEST_ROLES:
        raise Forbidden(f"reporting a source needs an ingest API key or the editor role; you are {principal.role}")
    if not 0 < len(name) <= 200:
        raise InvalidInput("source name: 1 to 200 characters")
    lag, position = status.get("lag") or {}, status.get("position") or {}
    if not isinstance(lag, dict) or not isinstance(position, dict):
        raise InvalidInput("lag and position must be objects")
    clean: dict[str, Any] = {
        "id": name,
        "kind": str(status.get("kind") or "tail")[:40],
        "status": str(status.get("status") or "running")[:40],
        "last_read_at": _number(status.get("last_read_at")),
        "last_ack_at": _number(status.get("last_ack_at")),
        "last_error": str(status.get("last_error") or "")[:500],
        "last_error_at": _number(status.get("last_error_at")),
        "lag": {k: _number(v) for k, v in list(lag.items())[:10] if isinstance(k, str)},
        "position": {k: _number(v) for k, v in list(position.items())[:10] if isinstance(k, str) and k != "offsets"},
        **{k: int(_number(status.get(k)) or 0) for k in _NUMBER_KEYS},
    }
    with _REMOTE_LOCK:
        reports: dict[tuple[str, str], tuple[dict[str, Any], float]] = services.extras.setdefault(REMOTE, {})
        reports.pop((principal.tenant, name), None)
        if len(reports) >= REMOTE_MAX:
            reports.pop(next(iter(reports)))
        reports[(principal.tenant, name)] = (clean, time.monotonic())
    label = name if principal.tenant == services.settings.default_tenant else f"{principal.tenant}/{name}"
    SOURCE_LAG_BYTES.labels(label).set(clean["lag"].get("bytes") or 0)
    SOURCE_LAG_SECONDS.labels(label).set(clean["lag"].get("seconds") or 0)
    SOURCE_POSITION.labels(label).set(clean["position"].get("bytes") or 0)
    SOURCE_FILES.labels(label).set(clean["position"].get("open_files") or 0)
    return {"ok": True}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@router.get("/sources/{name}", summary="One pull source's status")
def get_source(
    name: str,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
) -> dict[str, Any]:
    for runner in _visible(services, principal):
        if runner.source.id == name:
            return runner.source.status.to_api()
    raise NotFound(f"no source {name!r}")
