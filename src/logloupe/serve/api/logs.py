"""HTTP ingest: ``POST /api/v1/logs`` (JSON object, array, NDJSON or text lines) and ``POST /ingest``.

The response comes after the events are in the store. A partly bad batch stores the good items
and reports the bad ones by index; rejected input is quarantined with its reason.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from logloupe.errors import InvalidInput
from logloupe.ingest.bodies import Item, decompress, read_limited, split_json, split_lines
from logloupe.metrics import INGESTED, REJECTED
from logloupe.parse.records import Limits, line_fields, record_fields
from logloupe.pipeline.assemble import assemble
from logloupe.serve.deps import Principal, get_principal, get_services
from logloupe.serve.services import Services
from logloupe.store.search import now_us

router = APIRouter(tags=["ingest"])


def limits_of(services: Services) -> Limits:
    s = services.settings
    return Limits(s.max_message_bytes, s.max_attributes, s.max_attribute_value_bytes, s.max_nesting_depth)


async def store_items(
    services: Services, principal: Principal, items: list[Item], *, source: str, position: str = ""
) -> dict[str, Any]:
    """Parse, assemble and store items; quarantine the bad ones; return the per-item report."""
    limits = limits_of(services)
    fields = []
    rejected = []
    for item in items:
        if item.error:
            rejected.append({"index": item.index, "reason": item.error})
            continue
        if item.record is not None:
            fields.append(record_fields(item.record, limits))
        elif item.line is not None:
            fields.append(line_fields(item.line, limits))
    events = assemble(fields, tenant=principal.tenant, now_us=now_us(), source=source, position=position)
    if rejected:
        bad = [(it.error or "", it.raw) for it in items if it.error]
        await asyncio.to_thread(services.meta.quarantine, principal.tenant, source, bad)
    for r in rejected:
        reason = "invalid_json" if "JSON" in str(r["reason"]) else "invalid_item"
        REJECTED.labels(principal.tenant, source, reason).inc()
    if events:
        future = services.writer.submit(events, wait_s=1.0)
        await asyncio.wrap_future(future)
        per_level: dict[str, int] = {}
        for e in events:
            per_level[e.level.name] = per_level.get(e.level.name, 0) + 1
        for level, n in per_level.items():
            INGESTED.labels(principal.tenant, source, level).inc(n)
    return {"accepted": len(events), "rejected": len(rejected), "errors": rejected[:100]}


async def _body(request: Request, services: Services) -> bytes:
    limit = services.settings.max_body_bytes
    raw = await read_limited(request.stream(), limit)
    return decompress(raw, request.headers.get("content-encoding"), limit)


@router.post("/api/v1/logs", summary="Ingest JSON (object, array, NDJSON) or text/plain lines")
async def ingest_logs(
    request: Request,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
) -> JSONResponse:
    body = await _body(request, services)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    items = split_lines(body, services.settings.max_message_bytes) if ctype.startswith("text/") else split_json(body)
    if not items:
        raise InvalidInput("the body holds no log events")
    report = await store_items(services, principal, items, source="http")
    status = 200 if report["accepted"] else 400
    if status == 400:
        report = {"error": {"code": "invalid_input", "message": "no valid events in the body", **report}}
    return JSONResponse(report, status_code=status)


@router.post("/ingest", summary='The simplest ingest: {"message": "..."} (or any /api/v1/logs body)')
async def ingest_simple(
    request: Request,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
) -> JSONResponse:
    return await ingest_logs(request, services, principal)


@router.get("/api/v1/quarantine", summary="Rejected input with the reason, newest first")
def list_quarantine(
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
    limit: int = 100,
) -> dict[str, Any]:
    return {"items": services.meta.list_quarantine(principal.tenant, min(max(limit, 1), 1000))}
