"""Per-source parsing settings: ``/api/v1/parsing/sources`` (per tenant) and a dry run, ``/api/v1/parsing/test``.

A source is matched by ingest path (``source``) and service, and carries a time zone, named grok
patterns, multiline settings and a format hint (``parse/sources.py``). The tenant's own sources are
tried before the settings file's ``parsing_sources``. Every change rebuilds the rules the ingest
pipeline reads (``services.extras["source_rules"]``): the next decoded batch uses them.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, Field

from logloupe.errors import InvalidInput, NotFound
from logloupe.parse.line import parse_line
from logloupe.parse.sources import MAX_RULES, SourceRules, rule_from_spec, rules_from
from logloupe.serve.auth import require_role
from logloupe.serve.deps import Principal, get_principal, get_services
from logloupe.serve.services import Services
from logloupe.store.search import now_us

router = APIRouter(prefix="/api/v1/parsing", tags=["parsing"])
_LOCK = threading.Lock()
MAX_TEST_LINES = 100


def reload_rules(services: Services) -> SourceRules:
    """Rebuild the rules from the settings file and every tenant's sources; publish them to the pipeline."""
    with _LOCK:
        rules = rules_from(services.settings.parsing_sources, services.meta.parsing_sources())
        services.extras["source_rules"] = rules
    return rules


def setup(services: Services) -> None:
    # A bad [[parsing_sources]] table stops the server with the reason (InvalidInput names it).
    reload_rules(services)


def _file_rules_for(services: Services, tenant: str) -> list[dict[str, Any]]:
    out = []
    for spec in services.settings.parsing_sources:
        rule = rule_from_spec(spec)
        if rule.tenant in ("*", tenant):
            out.append({**rule.spec, "from": "settings"})
    return out


@router.get("/sources", summary="The tenant's parsing sources (then the settings file's), in the order tried")
def list_sources(
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
) -> dict[str, Any]:
    own = services.meta.parsing_sources(principal.tenant).get(principal.tenant, [])
    return {"items": [{**s, "from": "api"} for s in own] + _file_rules_for(services, principal.tenant)}


@router.get("/sources/{name}", summary="One of the tenant's parsing sources")
def get_source(
    name: str,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
) -> dict[str, Any]:
    for spec in services.meta.parsing_sources(principal.tenant).get(principal.tenant, []):
        if spec["name"] == name:
            return {**spec, "from": "api"}
    raise NotFound(f"no parsing source {name!r}")


@router.put("/sources/{name}", summary="Create or replace a parsing source (time zone, patterns, multiline)")
def put_source(
    name: str,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(require_role("admin"))],
    body: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    if body.get("name") not in (None, name):
        raise InvalidInput(f"the body names {body.get('name')!r} but the path names {name!r}")
    rule = rule_from_spec({**body, "name": name}, tenant=principal.tenant)
    spec = dict(rule.spec)
    position = body.get("position")
    if position is not None and (not isinstance(position, int) or isinstance(position, bool)):
        raise InvalidInput("position must be an integer (lower is tried first)")
    existing = services.meta.parsing_sources(principal.tenant).get(principal.tenant, [])
    if len(existing) >= MAX_RULES and all(s["name"] != name for s in existing):
        raise InvalidInput(f"a tenant may have at most {MAX_RULES} parsing sources")
    created = services.meta.put_parsing_source(principal.tenant, spec, position)
    reload_rules(services)
    return {**spec, "from": "api", "created": created}


@router.delete("/sources/{name}", summary="Delete a parsing source")
def delete_source(
    name: str,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(require_role("admin"))],
) -> dict[str, Any]:
    services.meta.delete_parsing_source(principal.tenant, name)
    reload_rules(services)
    return {"deleted": name}


class DryRunBody(BaseModel):
    lines: list[str] = Field(min_length=1, max_length=MAX_TEST_LINES)
    source: str = "http"
    service: str = ""
    rule: dict[str, Any] | None = None  # a draft source to try; default: what ingest would use


@router.post("/test", summary="Parse sample lines as ingest would for a source (nothing is stored)")
def test_lines(
    body: DryRunBody,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
) -> dict[str, Any]:
    if body.rule is not None:
        options = rule_from_spec({"name": "draft", **body.rule}, tenant=principal.tenant).options
    else:
        rules: SourceRules = services.extras.get("source_rules") or SourceRules()
        options = rules.options_for(principal.tenant, body.source, body.service)
    now = now_us()
    items = []
    for line in body.lines:
        p = parse_line(line, now_us=now, default_tz=options.timezone, custom=options.patterns, hint=options.format)
        items.append(
            {
                "format": p.format,
                "ts_us": p.ts_us,
                "level": p.level.name,
                "service": p.service,
                "host": p.host,
                "message": p.message,
                "attributes": p.attributes,
                "flags": p.flags,
            }
        )
    return {"timezone": options.timezone, "patterns": [f.name for f in options.patterns], "items": items}
