"""OpenTelemetry OTLP/HTTP logs: ``POST /v1/logs`` (protobuf or JSON, gzip, chunked)."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Request, Response
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

from logloupe.errors import InvalidInput, UnsupportedMedia
from logloupe.ingest import otlp
from logloupe.ingest.bodies import Item
from logloupe.metrics import INGEST_LATENCY
from logloupe.serve.api.logs import quarantine_body, read_body, store_items, sync_param
from logloupe.serve.auth import require_ingest
from logloupe.serve.deps import Principal, get_services
from logloupe.serve.services import Services

router = APIRouter(tags=["opentelemetry"])


@router.post("/v1/logs", summary="OTLP/HTTP logs export (application/x-protobuf or application/json)")
async def otlp_logs(
    request: Request,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(require_ingest)],
) -> Response:
    ctype = request.headers.get("content-type", "application/x-protobuf").split(";")[0].strip().lower()
    if ctype not in ("application/x-protobuf", "application/protobuf", "application/json"):
        raise UnsupportedMedia(f"OTLP/HTTP takes application/x-protobuf or application/json, not {ctype!r}")
    with INGEST_LATENCY.labels("otlp").time():
        body = await read_body(request, services, principal, "otlp")
        try:
            records = otlp.decode_json(body) if ctype == "application/json" else otlp.decode_protobuf(body)
        except InvalidInput as exc:
            await quarantine_body(services, principal, "otlp", exc.message, body)
            raise
        items = [Item(i, record=r) for i, r in enumerate(records)]
        if items:
            await store_items(services, principal, items, source="otlp", wait=sync_param(request))
    if ctype == "application/json":
        return Response(orjson.dumps({}), media_type="application/json")
    return Response(ExportLogsServiceResponse().SerializeToString(), media_type="application/x-protobuf")
