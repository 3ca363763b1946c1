"""``GET /metrics`` in the Prometheus text exposition format."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from logloupe.metrics import REGISTRY, WRITER_QUEUE
from logloupe.serve.deps import get_services
from logloupe.serve.services import Services

router = APIRouter(tags=["metrics"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(services: Annotated[Services, Depends(get_services)]) -> Response:
    WRITER_QUEUE.set(services.writer.queued)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
