"""Aggregates for the dashboard: one request fills every panel, all under the same filters."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from logloupe.model import LEVEL_NAMES, format_pattern_id
from logloupe.serve.api.patterns import with_service
from logloupe.serve.api.search import scope_for
from logloupe.serve.deps import Principal, get_principal, get_services
from logloupe.serve.services import Services
from logloupe.store import search as ops
from logloupe.store.events import ALL_FIELDS

router = APIRouter(prefix="/api/v1/stats", tags=["stats"])


@router.get("/overview", summary="Dashboard KPIs and panels: totals, levels, services, timeline, error patterns")
def overview(
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
    q: str = "",
    service: str | None = None,
    from_: Annotated[str | None, Query(alias="from")] = "now-1h",
    to: str | None = "now",
    buckets: Annotated[int, Query(ge=1, le=500)] = 60,
) -> dict[str, Any]:
    query = with_service(q, service)
    scope = scope_for(services, principal, query, from_, to)
    where, params = scope.where()
    store = services.store
    level_rows = store.rows(f"SELECT toString(level) AS k, count() AS c FROM events WHERE {where} GROUP BY k", params)
    by_level = {name: 0 for name in LEVEL_NAMES}
    for r in level_rows:
        by_level[r["k"]] = int(r["c"])
    total = sum(by_level.values())
    errors = by_level["ERROR"] + by_level["FATAL"]
    service_rows = store.rows(
        f"SELECT service AS k, count() AS c, countIf(toInt8(level) >= 5) AS e FROM events WHERE {where}"
        " GROUP BY k ORDER BY c DESC, k LIMIT 12",
        params,
    )
    error_where = f"{where} AND toInt8(level) >= 5"
    pattern_rows = store.rows(
        f"SELECT pattern_id AS pid, count() AS c, any(message) AS ex, any(service) AS svc"
        f" FROM events WHERE {error_where} GROUP BY pid ORDER BY c DESC LIMIT 8",
        params,
    )
    names = services.meta.pattern_names(principal.tenant)
    timeline = ops.histogram(store, scope, split="level", target_buckets=buckets)
    error_scope = scope_for(
        services, principal, f"level:>=ERROR AND ({query})" if query else "level:>=ERROR", from_, to
    )
    latest = ops.search(store, error_scope, limit=10, fields=ALL_FIELDS)
    lo = scope.from_us if scope.from_us is not None else scope.now_us
    hi = scope.to_us if scope.to_us is not None else scope.now_us
    span_s = max(1.0, (hi - lo) / 1_000_000)
    return {
        "total": total,
        "errors": errors,
        "error_rate": errors / total if total else 0.0,
        "events_per_s": total / span_s,
        "by_level": by_level,
        "by_service": [{"service": r["k"], "count": int(r["c"]), "errors": int(r["e"])} for r in service_rows],
        "timeline": timeline,
        "top_error_patterns": [
            {
                "id": format_pattern_id(int(r["pid"])),
                "name": names.get(int(r["pid"]), {}).get("name", ""),
                "count": int(r["c"]),
                "example": r["ex"],
                "service": r["svc"],
            }
            for r in pattern_rows
        ],
        "latest_errors": [e.to_api() for e in latest.events],
    }
