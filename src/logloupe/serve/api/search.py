"""Search, histogram, facets and event context. Thin: parameters in, ``store/search.py`` does the work."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from logloupe.errors import BadRequest
from logloupe.serve.deps import Principal, get_principal, get_services
from logloupe.serve.services import Services
from logloupe.store import search as ops
from logloupe.store.events import ALL_FIELDS, DEFAULT_FIELDS, EVENT_FIELDS
from logloupe.store.timerange import parse_time

router = APIRouter(prefix="/api/v1", tags=["search"])


FIELDS_HELP = (
    "Comma-separated event fields to add to the page's default ones (id, ts, tenant, service, host, level,"
    " message, pattern_id, attributes); 'all' for every field."
)


def page_fields(fields: str | list[str] | None) -> frozenset[str]:
    """The event fields a search page shows: the defaults plus those named in ``fields``, or all."""
    listed = fields.split(",") if isinstance(fields, str) else fields or []
    names = {name.strip() for name in listed if name.strip()}
    if names & {"all", "*"}:
        return ALL_FIELDS
    unknown = sorted(names - ALL_FIELDS)
    if unknown:
        raise BadRequest(f"unknown event field(s) {', '.join(unknown)}: known are {', '.join(EVENT_FIELDS)}, or all")
    return DEFAULT_FIELDS | names


class SearchBody(BaseModel):
    q: str = Field(default="", description="Query in the LogLoupe query language (docs/query-language.md).")
    from_: str | None = Field(default=None, alias="from", description="Start: ISO 8601, epoch, or now-1h.")
    to: str | None = Field(default=None, description="End: ISO 8601, epoch, or now.")
    sort: str = Field(default="ts:desc", description="ts:desc (newest first) or ts:asc.")
    limit: int = Field(default=100, ge=0, description="Events per page.")
    cursor: str | None = Field(default=None, description="next_cursor from the previous page.")
    fields: str | list[str] | None = Field(default=None, description=FIELDS_HELP + " A list in a JSON body.")

    model_config = {"populate_by_name": True}


def scope_for(services: Services, principal: Principal, q: str, from_: str | None, to: str | None) -> ops.Scope:
    """The tenant-scoped Scope of a request; other API modules build theirs here too."""
    now = ops.now_us()
    try:
        from_us = parse_time(from_, now) if from_ else None
        to_us = parse_time(to, now) if to else None
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    if from_us is not None and to_us is not None and from_us > to_us:
        raise BadRequest("'from' is after 'to'")
    return ops.Scope(
        tenant=principal.tenant,
        q=q,
        from_us=from_us,
        to_us=to_us,
        now_us=now,
        regex_max=services.settings.regex_max_length,
        pattern_groups=services.meta.pattern_groups(principal.tenant),
    )


_scope = scope_for


def sort_order(sort: str) -> str:
    """``asc`` or ``desc`` from a request's ``sort`` (``ts:desc``, ``@timestamp:asc``, ``desc``...);
    anything else is refused by ``ops.search``."""
    return sort.removeprefix("ts:").removeprefix("@timestamp:").lower()


def _run_search(services: Services, principal: Principal, body: SearchBody) -> dict[str, Any]:
    sort = sort_order(body.sort)
    if body.limit > services.settings.search_max_limit:
        raise BadRequest(f"limit above the maximum of {services.settings.search_max_limit}")
    started = time.perf_counter()
    scope = _scope(services, principal, body.q, body.from_, body.to)
    shown = page_fields(body.fields)
    result = ops.search(services.store, scope, limit=body.limit, sort=sort, cursor=body.cursor, fields=shown)
    return {
        "total": result.total,
        "events": [e.to_api(shown) for e in result.events],
        "next_cursor": result.next_cursor,
        "took_ms": round((time.perf_counter() - started) * 1000, 2),
    }


@router.get("/search", summary="Search events: exact total, a page of events, a cursor for the next page")
def search_get(
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
    q: str = "",
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: str | None = None,
    sort: str = "ts:desc",
    limit: Annotated[int, Query(ge=0)] = 100,
    cursor: str | None = None,
    fields: Annotated[str | None, Query(description=FIELDS_HELP)] = None,
) -> dict[str, Any]:
    body = SearchBody(q=q, **{"from": from_}, to=to, sort=sort, limit=limit, cursor=cursor, fields=fields)
    return _run_search(services, principal, body)


@router.post("/search", summary="Search events (parameters in a JSON body)")
def search_post(
    body: SearchBody,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
) -> dict[str, Any]:
    return _run_search(services, principal, body)


@router.get("/histogram", summary="Event counts over time, split by level or any field")
def histogram(
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
    q: str = "",
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: str | None = None,
    interval: Annotated[str | None, Query(description="Bucket size such as 1m; automatic if absent")] = None,
    split: Annotated[str, Query(description="Field to split by; empty for none")] = "level",
    buckets: Annotated[int, Query(ge=1, le=1000, description="Target bucket count when automatic")] = 100,
) -> dict[str, Any]:
    scope = _scope(services, principal, q, from_, to)
    return ops.histogram(services.store, scope, interval=interval, split=split or None, target_buckets=buckets)


@router.get("/facets", summary="Top values per field")
def facets(
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
    q: str = "",
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: str | None = None,
    fields: Annotated[
        str | None, Query(description="Comma-separated; default: standard fields + top attributes")
    ] = None,
    size: Annotated[int, Query(ge=1, le=1000)] = 10,
) -> dict[str, Any]:
    scope = _scope(services, principal, q, from_, to)
    names = [f.strip() for f in fields.split(",") if f.strip()] if fields else None
    return ops.facets(services.store, scope, fields=names, size=size)


@router.get("/events/{event_id}", summary="One event by id")
def get_event(
    event_id: str,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
) -> dict[str, Any]:
    return ops.get_event(services.store, principal.tenant, event_id).to_api()


@router.get("/events/{event_id}/context", summary="Events before and after one event, same service and host")
def event_context(
    event_id: str,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
    before: Annotated[int, Query(ge=0, le=1000)] = 10,
    after: Annotated[int, Query(ge=0, le=1000)] = 10,
) -> dict[str, Any]:
    found = ops.context(services.store, principal.tenant, event_id, before=before, after=after)
    return {
        "event": found["event"].to_api(),
        "before": [e.to_api() for e in found["before"]],
        "after": [e.to_api() for e in found["after"]],
    }
