"""FastAPI dependencies: the services, and who is asking (the principal) — tenancy starts here."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from logloupe.serve.services import Services


@dataclass(frozen=True)
class Principal:
    tenant: str
    user: str = "local"
    role: str = "admin"


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_principal(request: Request) -> Principal:
    """Single-user local mode: the implicit tenant. The auth module replaces this resolver."""
    services = get_services(request)
    resolver = services.extras.get("principal_resolver")
    if resolver is not None:
        principal: Principal = resolver(request)
        return principal
    return Principal(tenant=services.settings.default_tenant)
