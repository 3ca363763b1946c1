"""Export: every event a search matches, streamed as NDJSON or CSV (Kibana's CSV report, Datadog's
log export). The search's own pages, walked by cursor, so an export sees what paging would."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from logloupe.errors import BadRequest
from logloupe.model import LogEvent
from logloupe.serve.api.search import scope_for, sort_order
from logloupe.serve.deps import Principal, get_principal, get_services
from logloupe.serve.services import Services
from logloupe.store import search as ops
from logloupe.store.events import ALL_FIELDS

router = APIRouter(prefix="/api/v1", tags=["search"])

PAGE = 5000  # events per search statement while exporting
CSV_COLUMNS = ("ts", "id", "service", "host", "level", "message", "pattern_id", "source", "trace_id", "span_id")
# A spreadsheet runs a cell that starts with one of these as a formula; log text is untrusted, so
# such a cell gets a leading apostrophe (OWASP's advice on CSV injection). Only the CSV export.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
MEDIA = {"ndjson": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}


def csv_cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def csv_row(event: LogEvent) -> list[str]:
    shown = event.to_api()
    row = [csv_cell(str(shown[c])) for c in CSV_COLUMNS]
    row.append(csv_cell(orjson.dumps(shown["attributes"]).decode()) if shown["attributes"] else "")
    return row


def _csv_text(rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)  # RFC 4180: CRLF, quoted when needed
    return buf.getvalue().encode()


@router.get("/export", summary="Every event a search matches, streamed as NDJSON or CSV (a download)")
def export(
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
    q: str = "",
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: str | None = None,
    sort: str = "ts:desc",
    format: Annotated[str, Query(description="ndjson or csv")] = "ndjson",
    limit: Annotated[int, Query(ge=1, description="Events at most; default 10,000")] = 10_000,
) -> StreamingResponse:
    """The first page runs before the answer starts, so a bad query is a 400 as on search; the
    headers then carry the exact number of matches and how many this export holds."""
    if format not in MEDIA:
        raise BadRequest("format must be ndjson or csv")
    cap = services.settings.export_max_events
    if limit > cap:
        raise BadRequest(f"limit above the export maximum of {cap} events (export_max_events)")
    order = sort_order(sort)
    # Up to now unless asked otherwise: the export is a snapshot, not a tail.
    scope = scope_for(services, principal, q, from_, to or "now")
    first = ops.search(services.store, scope, limit=min(PAGE, limit), sort=order, fields=ALL_FIELDS)
    exported = min(first.total, limit)

    def pages() -> Iterator[list[LogEvent]]:
        result, sent = first, 0  # each page asks for at most what is left of ``limit``
        while True:
            sent += len(result.events)
            yield result.events
            if sent >= limit or result.next_cursor is None or not result.events:
                return
            result = ops.search(
                services.store,
                scope,
                limit=min(PAGE, limit - sent),
                sort=order,
                cursor=result.next_cursor,
                fields=ALL_FIELDS,
            )

    def body() -> Iterator[bytes]:
        if format == "csv":
            yield _csv_text([[*CSV_COLUMNS, "attributes"]])
        for events in pages():
            if format == "csv":
                yield _csv_text([csv_row(e) for e in events])
            else:
                yield b"".join(orjson.dumps(e.to_api()) + b"\n" for e in events)

    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    headers: dict[str, Any] = {
        "Content-Disposition": f'attachment; filename="logloupe-export-{stamp}.{format}"',
        "X-LogLoupe-Total": str(first.total),
        "X-LogLoupe-Exported": str(exported),
    }
    return StreamingResponse(body(), media_type=MEDIA[format], headers=headers)
