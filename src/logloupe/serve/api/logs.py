"""HTTP ingest: ``POST /api/v1/logs`` (JSON object, array, NDJSON or text lines) and ``POST /ingest``.

The response comes once the events are durable in the write-ahead buffer (``pipeline/buffer.py``);
with ``?sync=true`` (or the ``ingest_wait_stored`` setting) once they are searchable. A partly bad
batch stores the good items and reports the bad ones by index; rejected input is quarantined with
its reason. ``store_items`` is the one entry point every protocol router uses.
"""

from __future__ import annotations

import ast
import asyncio
import threading
import urllib.parse
from itertools import repeat
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from logloupe.errors import InvalidInput, PayloadTooLarge
from logloupe.ingest.bodies import Item, ObjectLines, decompress, read_json, read_limited, split_lines
from logloupe.metrics import INGEST_LATENCY, REJECTED
from logloupe.model import FLAG_ATTRIBUTES_DROPPED, FLAG_INVALID_UTF8, FLAG_NESTING_FLATTENED, input_key
from logloupe.parse.formats import MAX_ATTRIBUTES, MAX_DEPTH
from logloupe.parse.line import parse_line
from logloupe.parse.records import Limits, parsed_fields, record_fields
from logloupe.pipeline.decode import encode_entry
from logloupe.pipeline.workers import IngestPipeline
from logloupe.serve.auth import require_ingest
from logloupe.serve.deps import Principal, get_principal, get_services
from logloupe.serve.services import Services
from logloupe.store.search import now_us

router = APIRouter(tags=["ingest"])


def limits_of(services: Services) -> Limits:
    s = services.settings
    return Limits(s.max_message_bytes, s.max_attributes, s.max_attribute_value_bytes, s.max_nesting_depth)


def pipeline_of(services: Services) -> IngestPipeline:
    """The process's ingest pipeline (created by ``setup``, or on first use)."""
    pipeline: IngestPipeline | None = services.extras.get("pipeline")
    if pipeline is None:
        with _PIPELINE_LOCK:
            pipeline = services.extras.get("pipeline")
            if pipeline is None:
                settings = services.settings
                pipeline = IngestPipeline(
                    settings,
                    services.store,
                    retention_days=services.writer.retention_days,
                    after_store=services.writer.after_store,
                    quarantine=services.meta.quarantine,
                    extras=services.extras,
                )
                services.extras["pipeline"] = pipeline
    return pipeline


_PIPELINE_LOCK = threading.Lock()


def setup(services: Services) -> None:
    pipeline_of(services)


def teardown(services: Services) -> None:
    pipeline: IngestPipeline | None = services.extras.pop("pipeline", None)
    if pipeline is not None:
        pipeline.close()


def encode_items(
    tenant: str, source: str, items: list[Item], *, service: str = "", host: str = ""
) -> tuple[bytes, int]:
    """The good items of a batch as one buffer entry, and their count.

    The entry's key is a digest of the items with the source and defaults they are stored under: a
    client that sends the same body again (a retry after a timeout) sends the same input, its events
    get the same ids and the store keeps them once (``store/events.py: EventStore.insert_arrow``).
    """
    kept = [it for it in items if it.has_record]
    records = [it.raw if it.raw_is_record else orjson.dumps(it.record) for it in kept]
    lines = [it.line for it in items if not it.has_record and it.line is not None and not it.error]
    # one pass for both (the hot path): a sender's own ids, and JSON read with U+FFFD (bodies.split_json)
    marked = [(i, it) for i, it in enumerate(kept) if it.doc_id or it.invalid_utf8]
    doc_ids = {i: it.doc_id for i, it in marked if it.doc_id}
    flags = {i: [FLAG_INVALID_UTF8] for i, it in marked if it.invalid_utf8}
    payload = _entry(tenant, source, records, lines, service, host, doc_ids, flags)
    return payload, len(records) + len(lines)


def _entry(
    tenant: str,
    source: str,
    records: list[bytes],
    lines: list[bytes],
    service: str,
    host: str,
    doc_ids: dict[int, str] | None = None,
    flags: dict[int, list[str]] | None = None,
) -> bytes:
    key = input_key("body", source, service, host, b"\n".join(records), b"\n".join(lines))
    return encode_entry(
        tenant,
        source,
        records,
        lines,
        service=service,
        host=host,
        observed_us=now_us(),
        key=key,
        doc_ids=doc_ids,
        flags=flags,
    )


def _shape_thresholds(limits: Limits) -> tuple[int, int, int]:
    """``limit_warnings``' test for a JSON record, as (depth, length, colons): it may be stored shaped
    only with more ``{`` than ``depth`` (deeper nesting), or at least ``length`` bytes and ``colons``
    ``:`` (more attributes than the limit, 4 bytes or more each: ``"k":0``)."""
    count = limits.max_attributes
    return limits.max_nesting_depth, 4 * (count - 2), count - 2


def _plain(lines: list[bytes], limits: Limits) -> bool:
    """True when no line of an ``ObjectLines`` body could get a warning from ``store_items``: none is
    longer than the message limit, and none could be a record ``limit_warnings`` reads again. Three
    C-level passes (the longest line, the most ``{``, the most ``:``) instead of an ``Item`` per line."""
    depth, length, colons = _shape_thresholds(limits)
    longest = max(map(len, lines))
    if longest > limits.max_message_bytes or max(map(bytes.count, lines, repeat(b"{"))) > depth:
        return False
    return longest < length or max(map(bytes.count, lines, repeat(b":"))) < colons


async def store_items(
    services: Services,
    principal: Principal,
    items: list[Item] | ObjectLines,
    *,
    source: str,
    position: str = "",
    wait: bool | None = None,
    service: str = "",
    host: str = "",
    rate_limit: bool = True,
) -> dict[str, Any]:
    """Quarantine the bad items; append the good ones to the durable buffer; return the per-item report.

    Returns once the good items are durable (see docs/ingest.md); with ``wait`` (default: the
    ``ingest_wait_stored`` setting) only once they are in the store and searchable. ``position`` is
    kept for callers of the old signature: event ids derive from the items (``encode_items``). A caller that
    stores one request in several calls charges the rate limit once itself and passes ``rate_limit=False``.
    """
    del position
    checker = services.extras.get("quota_checker")
    if isinstance(items, ObjectLines):
        # The usual NDJSON body: nothing to reject or warn about, so nothing to walk item by item
        # (the tenant's quotas are still checked first, on its counts).
        lines = items.lines
        if _plain(lines, limits_of(services)):
            if checker is not None:
                await asyncio.to_thread(checker.check_counts, principal, source, len(lines), sum(map(len, lines)))
            payload = _entry(principal.tenant, source, lines, [], service, host)
            await _append(services, principal, payload, len(lines), wait=wait, rate_limit=rate_limit)
            return {"accepted": len(lines), "rejected": 0, "errors": []}
        items = items.items()
    # First the tenant's quotas and the key's source scope (serve/auth.py: QuotaChecker): 403 / 429.
    if checker is not None:
        await asyncio.to_thread(checker.check, principal, source, items)
    rejected = [{"index": it.index, "reason": it.error} for it in items if it.error]
    if rejected:
        bad = [(it.error or "", it.raw) for it in items if it.error]
        await asyncio.to_thread(services.meta.quarantine, principal.tenant, source, bad)
    for r in rejected:
        reason = "invalid_json" if "JSON" in str(r["reason"]) else "invalid_item"
        REJECTED.labels(principal.tenant, source, reason).inc()
    good = [it for it in items if not it.error]
    # Stored, but cut: say which (the message limit truncates and flags; docs/limits.md).
    limit = services.settings.max_message_bytes
    warnings: list[dict[str, Any]] = [
        {"index": it.index, "reason": f"{size} bytes: the message is cut to {limit} bytes and flagged truncated"}
        for it in good
        if (size := len(it.line) if it.line is not None else len(it.raw) if it.raw_is_record else 0) > limit
    ]
    if good:
        shaped = limit_warnings(good, limits_of(services))
        if shaped:
            warnings = sorted(warnings + shaped, key=lambda w: int(w["index"]))  # stable: truncation first
    accepted = 0
    if good:
        payload, accepted = encode_items(principal.tenant, source, good, service=service, host=host)
        await _append(services, principal, payload, accepted, wait=wait, rate_limit=rate_limit)
    report: dict[str, Any] = {"accepted": accepted, "rejected": len(rejected), "errors": rejected[:100]}
    if warnings:
        report["warnings"] = warnings[:100]
    return report


async def _append(
    services: Services, principal: Principal, payload: bytes, count: int, *, wait: bool | None, rate_limit: bool
) -> None:
    """Make the entry durable; with ``wait`` (default: ``ingest_wait_stored``) wait until it is stored."""
    pipeline = pipeline_of(services)
    end = await asyncio.to_thread(pipeline.append, principal.tenant, payload, count, limit=rate_limit)
    if services.settings.ingest_wait_stored if wait is None else wait:
        await asyncio.wrap_future(pipeline.wait_entry(end, payload))


def limit_warnings(items: list[Item], limits: Limits) -> list[dict[str, Any]]:
    """The items of a JSON or text body that will be stored with attributes dropped or objects
    flattened (docs/limits.md), named by index, as the truncated ones are.

    Only an item whose bytes could hold that much is read again, as the decoder will read it
    (``record_fields``; ``parse_line`` for a JSON text line): deeper nesting takes more ``{`` than
    the limit, more attributes take as many ``:`` (and 4 bytes or more each, ``"k":0``, a free
    test that spares most items the count). The ``{`` count, a C-level scan of each record, is
    what this costs the ingest path (docs/limits.md).
    """
    depth, count = limits.max_nesting_depth, limits.max_attributes
    _, length, colons = _shape_thresholds(limits)
    # JSON text lines keep at most MAX_ATTRIBUTES attributes and MAX_DEPTH levels (parse/formats.py)
    line_depth, line_count = min(depth, MAX_DEPTH), min(count, MAX_ATTRIBUTES)
    suspects = [
        it
        for it in items
        if (
            it.raw_is_record
            and (it.raw.count(b"{") > depth or (len(it.raw) >= length and it.raw.count(b":") >= colons))
        )
        or (
            (line := it.line) is not None
            and line[:1] == b"{"
            and (line.count(b"{") > line_depth or line.count(b":") >= line_count - 2)
        )
    ]
    if not suspects:
        return []
    observed = now_us()
    warnings: list[dict[str, Any]] = []
    for it in suspects:
        if it.has_record:
            flags, kept, levels = record_fields(it.record or {}, limits).flags, count, depth
        else:
            parsed = parse_line(it.line or b"", now_us=observed)
            flags, kept, levels = parsed_fields(parsed, limits).flags, line_count, line_depth
        if FLAG_ATTRIBUTES_DROPPED in flags:
            reason = f"more than {kept} attributes: the rest are dropped and the event flagged attributes_dropped"
            warnings.append({"index": it.index, "reason": reason})
        if FLAG_NESTING_FLATTENED in flags:
            reason = f"objects nested deeper than {levels} levels are kept as JSON text, flagged nesting_flattened"
            warnings.append({"index": it.index, "reason": reason})
    return warnings


def form_record(body: bytes) -> Item:
    """A form-encoded record, as Python's ``logging.handlers.HTTPHandler`` posts a LogRecord's dict."""
    pairs = urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    record: dict[str, Any] = dict(pairs)
    if "levelname" in record and "msg" in record:  # a LogRecord: name the logger and time plainly
        record["logger"] = record.pop("name", "")
        record["msg"] = _format_log_message(record["msg"], record.pop("args", ""))
        record["timestamp"] = record.pop("created", None)
        record.pop("msecs", None)
        record.pop("relativeCreated", None)
        record.pop("levelno", None)
    if not record:
        return Item(0, error="empty form body", raw=body[:1024])
    return Item(0, record=record, raw=body[:1024])


def _format_log_message(msg: str, args: str) -> str:
    """HTTPHandler sends ``msg`` unformatted and ``args`` as a repr: format when the repr is plain literals."""
    if not args or "%" not in msg:
        return msg
    try:
        values = ast.literal_eval(args)
        formatted: str = msg % values
        return formatted
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return f"{msg} {args}"


async def quarantine_body(services: Services, principal: Principal, source: str, reason: str, raw: bytes) -> None:
    """A whole body no decoder could read: keep it (cut) with the reason, count it, so nothing vanishes."""
    await asyncio.to_thread(services.meta.quarantine, principal.tenant, source, [(reason, raw[:16384])])
    REJECTED.labels(principal.tenant, source, "undecodable_body").inc()


def sync_param(request: Request) -> bool | None:
    """``?sync=true``: acknowledge once searchable; absent: the server's default."""
    value = request.query_params.get("sync")
    if value is None:
        return None
    return value.lower() in ("1", "true", "yes", "on")


async def quarantine_too_large(services: Services, principal: Principal, source: str, exc: PayloadTooLarge) -> None:
    """A body refused for its size (413): a stub in the quarantine, the reason and the body's first
    16 KiB (``PayloadTooLarge.head``; inflated when it was compressed), counted, so it is listed."""
    await asyncio.to_thread(services.meta.quarantine, principal.tenant, source, [(exc.message, exc.head)])
    REJECTED.labels(principal.tenant, source, "payload_too_large").inc()


async def read_body(
    request: Request, services: Services, principal: Principal, source: str, *, inflate: bool = True
) -> bytes:
    """The request body, size-limited and (``inflate``) decompressed: gzip, deflate, zstd. Over the
    limit: 413, and a stub in the quarantine under ``source``."""
    limit = services.settings.max_body_bytes
    try:
        raw = await read_limited(request.stream(), limit)
        return decompress(raw, request.headers.get("content-encoding"), limit) if inflate else raw
    except PayloadTooLarge as exc:
        await quarantine_too_large(services, principal, source, exc)
        raise


@router.post("/api/v1/logs", summary="Ingest JSON (object, array, NDJSON) or text/plain lines")
async def ingest_logs(
    request: Request,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(require_ingest)],
) -> JSONResponse:
    body = await read_body(request, services, principal, "http")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/x-www-form-urlencoded":
        # curl -d / --data-binary send this type whatever the body is: read what the body is.
        head = body.lstrip()[:1]
        if head in (b"{", b"["):
            ctype = "application/json"
        elif b"=" not in body or b"\n" in body.strip() or b" " in body:
            ctype = "text/plain"  # form bodies encode spaces and newlines; lines of text do not
    items: list[Item] | ObjectLines
    if ctype == "application/x-www-form-urlencoded":
        items = [form_record(body)]
    elif ctype.startswith("text/"):
        items = split_lines(body, services.settings.max_message_bytes)
    else:
        items = read_json(body)
    if not items:
        raise InvalidInput("the body holds no log events")
    # ?service= and ?host= name the stream of a body that does not (text lines, say), like Datadog's intake.
    service = request.query_params.get("service", "")[:256]
    host = request.query_params.get("host", "")[:256]
    with INGEST_LATENCY.labels("http").time():
        report = await store_items(
            services, principal, items, source="http", wait=sync_param(request), service=service, host=host
        )
    status = 200 if report["accepted"] else 400
    if status == 400:
        report = {"error": {"code": "invalid_input", "message": "no valid events in the body", **report}}
    return JSONResponse(report, status_code=status)


@router.post("/ingest", summary='The simplest ingest: {"message": "..."} (or any /api/v1/logs body)')
async def ingest_simple(
    request: Request,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(require_ingest)],
) -> JSONResponse:
    return await ingest_logs(request, services, principal)


@router.get("/ingest", summary="The record in the query string: Python's HTTPHandler with its default GET")
async def ingest_query(
    request: Request,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(require_ingest)],
) -> JSONResponse:
    query = urllib.parse.urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "sync"]).encode()
    if len(query) > services.settings.max_body_bytes:
        raise InvalidInput("the query string is longer than max_body_bytes")
    item = form_record(query)
    if item.error:
        raise InvalidInput("give the record in the query string, e.g. /ingest?message=disk+full&level=ERROR")
    with INGEST_LATENCY.labels("http").time():
        report = await store_items(services, principal, [item], source="http", wait=sync_param(request))
    return JSONResponse(report, status_code=200 if report["accepted"] else 400)


@router.get("/api/v1/quarantine", summary="Rejected input with the reason, newest first")
def list_quarantine(
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
    limit: int = 100,
    before: int | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """``before``: the previous page's ``next_before`` (items older than it); ``source``: one endpoint's."""
    limit = min(max(limit, 1), 1000)
    items = services.meta.list_quarantine(principal.tenant, limit, before=before, source=source)
    return {
        "items": items,
        "total": services.meta.count_quarantine(principal.tenant, source),
        "next_before": items[-1]["id"] if len(items) == limit else None,
    }
