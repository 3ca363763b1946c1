"""Pull sources inside ``logloupe serve``: started in the lifespan from the ``sources`` settings, each
in its own thread writing through the server's StoreWriter, checkpoints in the metadata store.

``GET /api/v1/sources`` lists them with status, last read, errors, lag and position (the UI's
Sources page); the same figures are in ``/metrics`` as ``logloupe_source_*``.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from logloupe.errors import NotFound
from logloupe.ingest.checkpoints import MetaCheckpoints
from logloupe.ingest.sinks import WriterSink
from logloupe.ingest.sources import SourceRunner, build_source, load_specs
from logloupe.serve.deps import Principal, get_principal, get_services
from logloupe.serve.services import Services

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["sources"])

EXTRA = "sources"


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


@router.get("/sources", summary="Pull sources: status, last read, errors, lag and position")
def list_sources(
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
) -> dict[str, Any]:
    return {"sources": [r.source.status.to_api() for r in _visible(services, principal)]}


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
