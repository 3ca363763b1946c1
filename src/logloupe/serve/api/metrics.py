"""``GET /metrics`` in the Prometheus text exposition format, and the optional push to VictoriaMetrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from logloupe.metrics import REGISTRY, WRITER_QUEUE, MetricsPusher
from logloupe.serve.auth import require_role
from logloupe.serve.deps import Principal, get_services
from logloupe.serve.services import Services

router = APIRouter(tags=["metrics"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(require_role("admin"))],
) -> Response:
    WRITER_QUEUE.set(services.writer.queued)
    text = generate_latest(REGISTRY)
    if principal.tenant != services.settings.default_tenant:
        text = own_tenant_only(text, principal.tenant)
    return Response(text, media_type=CONTENT_TYPE_LATEST)


def own_tenant_only(text: bytes, tenant: str) -> bytes:
    """Drop samples labelled with another tenant. The default tenant's admins (the operators) see all."""
    mine = f'tenant="{tenant}"'.encode()
    return b"\n".join(
        line for line in text.split(b"\n") if line.startswith(b"#") or b'tenant="' not in line or mine in line
    )


def setup(services: Services) -> None:
    """Optional push to VictoriaMetrics (setting ``victoria_metrics_url``)."""
    url = services.settings.victoria_metrics_url
    if url:
        pusher = MetricsPusher(url, services.settings.metrics_push_interval_s)
        pusher.start()
        services.extras["metrics_pusher"] = pusher


def teardown(services: Services) -> None:
    pusher: MetricsPusher | None = services.extras.pop("metrics_pusher", None)
    if pusher is not None:
        WRITER_QUEUE.set(services.writer.queued)
        pusher.close()
