"""Patterns: statistics from the events table joined with names and merges from the metadata store."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from logloupe.errors import BadRequest, InvalidInput, NotFound
from logloupe.model import format_pattern_id, parse_pattern_id
from logloupe.serve.api.search import scope_for
from logloupe.serve.deps import Principal, get_principal, get_services
from logloupe.serve.services import Services
from logloupe.store.patterns import list_patterns
from logloupe.store.query import phrase

router = APIRouter(prefix="/api/v1/patterns", tags=["patterns"])


def pattern_id(text: str) -> int:
    """A 16-hex pattern id from a path or body; a clear 400 otherwise."""
    try:
        value = parse_pattern_id(text.strip().lower())
    except ValueError:
        value = 0
    if not value or len(text.strip()) != 16 or value >= 1 << 64:
        raise BadRequest(f"'{text}' is not a pattern id (16 hex characters)")
    return value


def with_service(q: str, service: str | None) -> str:
    """Narrow a query to one service without touching the user's text."""
    if not service:
        return q
    return f"service:{phrase(service)}" + (f" AND ({q})" if q.strip() else "")


@router.get("", summary="Patterns in a time range: count, trend, first/last seen, level mix, an example")
def get_patterns(
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
    q: str = "",
    service: str | None = None,
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    buckets: Annotated[int, Query(ge=2, le=200, description="Points in each trend series")] = 24,
) -> dict[str, Any]:
    scope = scope_for(services, principal, with_service(q, service), from_, to)
    return list_patterns(
        services.store,
        scope,
        groups=scope.pattern_groups,
        names=services.meta.pattern_names(principal.tenant),
        limit=limit,
        trend_buckets=buckets,
    )


class RenameBody(BaseModel):
    name: str = Field(max_length=200, description="Display name; empty to clear")


@router.post("/{pid}/rename", summary="Name a pattern")
def rename(
    pid: str,
    body: RenameBody,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
) -> dict[str, Any]:
    _own(services, principal, [pattern_id(pid)])  # before anything is written
    services.meta.upsert_pattern(principal.tenant, pattern_id(pid), name=body.name.strip())
    _tell_miner(services, principal, "rename", [pattern_id(pid)], name=body.name.strip())
    return {"id": format_pattern_id(pattern_id(pid)), "name": body.name.strip()}


def _own(services: Services, principal: Principal, ids: list[int]) -> set[int]:
    """The ids that are this tenant's patterns (its patterns table or its events); 404 for any other."""
    known = set(services.meta.pattern_names(principal.tenant))
    unknown = [pid for pid in ids if pid not in known]
    if unknown:
        params: dict[str, Any] = {"tenant": principal.tenant}
        names = []
        for i, pid in enumerate(unknown):
            params[f"p{i}"] = pid
            names.append(f"{{p{i}:UInt64}}")
        rows = services.store.rows(
            "SELECT DISTINCT pattern_id AS pid FROM events WHERE tenant = {tenant:String}"
            f" AND pattern_id IN ({', '.join(names)})",
            params,
        )
        known |= {int(r["pid"]) for r in rows}
    missing = [format_pattern_id(pid) for pid in ids if pid not in known]
    if missing:
        raise NotFound(f"no pattern {', '.join(missing)}")
    return known


def _tell_miner(services: Services, principal: Principal, action: str, ids: list[int], **args: object) -> list[int]:
    """The template miner learns the correction too, so new lines follow it."""
    known = _own(services, principal, ids)
    return services.enricher.correct(principal.tenant, known, action, ids, **args)


class MergeBody(BaseModel):
    ids: list[str] = Field(min_length=2, max_length=100, description="Pattern ids; the first one survives")
    name: str | None = Field(default=None, max_length=200)


@router.post("/merge", summary="Merge patterns into the first id; searches for it find them all")
def merge(
    body: MergeBody,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
) -> dict[str, Any]:
    ids = [pattern_id(i) for i in body.ids]
    _own(services, principal, ids)  # before anything is written
    members = services.meta.merge_patterns(principal.tenant, ids[0], ids[1:])
    _tell_miner(services, principal, "merge", ids)
    if body.name is not None:
        services.meta.upsert_pattern(principal.tenant, ids[0], name=body.name.strip())
    return {"id": format_pattern_id(ids[0]), "merged": [format_pattern_id(m) for m in members]}


class SplitBody(BaseModel):
    ids: list[str] | None = Field(default=None, description="Merged ids to split off; all when absent")
    position: int | None = Field(
        default=None, ge=0, description="Token position whose variable should become constants again (miner split)"
    )


@router.post("/{pid}/split", summary="Split merged patterns off again")
def split(
    pid: str,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
    body: SplitBody | None = None,
) -> dict[str, Any]:
    target = pattern_id(pid)
    _own(services, principal, [target])
    if body is not None and body.position is not None:
        locked = _tell_miner(services, principal, "split", [target], position=body.position)
        if not locked:
            raise InvalidInput("this pattern has no variable at that position, or is unknown to the miner")
        return {"id": format_pattern_id(target), "split": [], "locked": [format_pattern_id(i) for i in locked]}
    chosen = [pattern_id(i) for i in body.ids] if body and body.ids else None
    split_off = services.meta.split_pattern(principal.tenant, target, chosen)
    return {"id": format_pattern_id(target), "split": [format_pattern_id(i) for i in split_off]}
