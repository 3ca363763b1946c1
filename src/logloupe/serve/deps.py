"""FastAPI dependencies: the services, and who is asking (the principal) — tenancy starts here."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from logloupe.serve.services import Services


@dataclass(frozen=True)
class Principal:
    tenant: str
    user: str = "local"
    role: str = "admin"  # viewer < editor < admin; "ingest" for ingest-only API keys
    sources: tuple[str, ...] = ()  # an API key limited to these sources (fnmatch patterns); empty: any
    via: str = "local"  # local, bearer or key


# Both are coroutines: FastAPI runs a plain function dependency in its thread pool, a round trip per
# request that cost the ingest path ~8 % of the server's GIL time (docs/ingest.md) for a lookup.


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_principal(request: Request) -> Principal:
    """Single-user local mode: the implicit tenant. The auth module replaces this resolver."""
    services: Services = request.app.state.services
    resolver = services.extras.get("principal_resolver")
    if resolver is None:
        return Principal(tenant=services.settings.default_tenant)
    principal: Principal = await run_in_threadpool(resolver, request)  # it may read the accounts database
    return principal
