"""Grafana Loki push: ``POST /loki/api/v1/push`` (JSON, or snappy-compressed protobuf)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from logloupe.errors import InvalidInput, PayloadTooLarge
from logloupe.ingest import loki
from logloupe.ingest.bodies import Item
from logloupe.metrics import INGEST_LATENCY
from logloupe.serve.api.logs import quarantine_body, quarantine_too_large, read_body, store_items, sync_param
from logloupe.serve.auth import require_ingest
from logloupe.serve.deps import Principal, get_services
from logloupe.serve.services import Services

router = APIRouter(tags=["loki"])


@router.post("/loki/api/v1/push", status_code=204, summary="Loki push (JSON or snappy protobuf)")
async def loki_push(
    request: Request,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(require_ingest)],
) -> Response:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    with INGEST_LATENCY.labels("loki").time():
        encoding = request.headers.get("content-encoding", "").strip().lower()
        protobuf = ctype in ("application/x-protobuf", "application/protobuf")
        snappy = protobuf and encoding in ("", "snappy")
        # a snappy body is inflated by the decoder, within the limit
        body = await read_body(request, services, principal, "loki", inflate=not snappy)
        try:
            if protobuf:
                records = loki.decode_protobuf(body, snappy=snappy, limit=services.settings.max_body_bytes)
            else:
                records = loki.decode_json(body)
        except InvalidInput as exc:
            await quarantine_body(services, principal, "loki", exc.message, body)
            raise
        except PayloadTooLarge as exc:  # a snappy block that claims more than the limit
            await quarantine_too_large(services, principal, "loki", exc)
            raise
        items = [Item(i, record=r) for i, r in enumerate(records)]
        if items:
            await store_items(services, principal, items, source="loki", wait=sync_param(request))
    return Response(status_code=204)
