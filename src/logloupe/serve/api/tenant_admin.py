"""A tenant's own administration: API keys, members, invitations, retention, quotas, LLM policy.

Every call acts on the caller's tenant (from their credentials; there is no tenant parameter to
forge). Reads of the tenant record are open to members; changes need the admin role.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from logloupe.analyse.llm import PROVIDERS
from logloupe.parse.masking import MASKING_MODES
from logloupe.serve.auth import require_role
from logloupe.serve.deps import Principal, get_principal, get_services
from logloupe.serve.services import Services
from logloupe.store.accounts import KEY_ROLES, ROLES, Accounts
from logloupe.store.retention import enforce_retention
from logloupe.store.search import now_us

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["tenant"])

Admin = Annotated[Principal, Depends(require_role("admin"))]
Svc = Annotated[Services, Depends(get_services)]


def _accounts(services: Services) -> Accounts:
    return Accounts(services.meta)


class KeyBody(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    role: str = Field(default="ingest", description="ingest (write only) or viewer (read only).")
    sources: list[str] = Field(default_factory=list, description="Limit to these sources (fnmatch); empty: any.")


class RoleBody(BaseModel):
    role: str = Field(description="viewer, editor or admin.")


class InvitationBody(BaseModel):
    role: str = Field(default="viewer", description="viewer, editor or admin.")
    email: str = Field(default="", max_length=254, description="If set, only this address may accept.")


class RetentionBody(BaseModel):
    days: int = Field(ge=1, le=3650)


class QuotaBody(BaseModel):
    rate_per_s: float | None = Field(default=None, ge=0, description="Sustained events per second; 0: unlimited.")
    burst: int | None = Field(default=None, ge=0, description="Events allowed at once above the rate.")
    daily_bytes: int | None = Field(default=None, ge=0, description="Bytes accepted per UTC day; 0: unlimited.")


class LlmPolicyBody(BaseModel):
    allowed_providers: list[str] | None = Field(default=None, description="Providers this tenant may send data to.")
    masking_mode: str | None = Field(
        default=None,
        description="What leaves the machine (LLM prompts, alert notifications): mask, hash, keep or strict "
        "(mask plus IP addresses and host names). 'off' is the old name of 'keep'. Anything else: 400.",
    )


# -- API keys ---------------------------------------------------------------------------------------


@router.post("/keys", summary="Create an API key; the secret is in this answer only")
def create_key(body: KeyBody, services: Svc, principal: Admin) -> JSONResponse:
    secret, key = _accounts(services).create_key(principal.tenant, body.name, body.role, body.sources, principal.user)
    return JSONResponse({**key.to_api(), "key": secret}, status_code=201)


@router.get("/keys", summary="The tenant's API keys (never the secret)")
def list_keys(services: Svc, principal: Admin) -> dict[str, Any]:
    return {"items": [k.to_api() for k in _accounts(services).list_keys(principal.tenant)]}


@router.delete("/keys/{key_id}", summary="Revoke an API key")
def revoke_key(key_id: str, services: Svc, principal: Admin) -> dict[str, Any]:
    _accounts(services).revoke_key(principal.tenant, key_id)
    return {"revoked": key_id}


# -- the tenant --------------------------------------------------------------------------------------


@router.get("/tenant", summary="Your tenant: name, your role, retention, quotas, LLM policy, and the allowed values")
def get_tenant(services: Svc, principal: Annotated[Principal, Depends(get_principal)]) -> dict[str, Any]:
    tenant = services.meta.get_tenant(principal.tenant)
    policy = _accounts(services).policy(principal.tenant)
    return {
        "id": tenant.id,
        "name": tenant.name,
        "role": principal.role,
        "user": principal.user,
        "retention_days": tenant.retention_days,
        **policy.to_api(),
        # Off: single-user local mode, where the server's LLM settings apply instead of the tenant's policy.
        "auth_enabled": services.settings.auth_enabled,
        # What the write endpoints accept, so clients (the Settings page) need not hard-code it.
        "options": {
            "roles": list(ROLES),
            "key_roles": list(KEY_ROLES),
            "providers": [p for p in PROVIDERS if p != "offline"],
            "masking_modes": list(MASKING_MODES),
            "server_llm_provider": services.settings.llm_provider,
            "retention_days": {"min": 1, "max": 3650},
        },
    }


@router.put("/tenant/retention", summary="Set retention in days; older events are deleted from the store now")
async def set_retention(body: RetentionBody, services: Svc, principal: Admin) -> dict[str, Any]:
    services.meta.set_retention(principal.tenant, body.days)
    await asyncio.to_thread(enforce_retention, services.store, principal.tenant, body.days, now_us())
    return {"retention_days": body.days}


@router.put("/tenant/quotas", summary="Ingest quotas: rate, burst, daily volume (429 beyond)")
def set_quotas(body: QuotaBody, services: Svc, principal: Admin) -> dict[str, Any]:
    policy = _accounts(services).set_policy(
        principal.tenant,
        ingest_rate_per_s=body.rate_per_s,
        ingest_burst=body.burst,
        ingest_daily_bytes=body.daily_bytes,
    )
    return policy.to_api()["quotas"]  # type: ignore[no-any-return]


@router.put("/tenant/llm-policy", summary="Which LLM providers may see this tenant's data, and masking")
def set_llm_policy(body: LlmPolicyBody, services: Svc, principal: Admin) -> dict[str, Any]:
    policy = _accounts(services).set_policy(
        principal.tenant, llm_allowed_providers=body.allowed_providers, llm_masking_mode=body.masking_mode
    )
    return policy.to_api()["llm"]  # type: ignore[no-any-return]


# -- members and invitations ---------------------------------------------------------------------------


@router.get("/tenant/members", summary="Members and their roles")
def list_members(services: Svc, principal: Admin) -> dict[str, Any]:
    return {"items": _accounts(services).members(principal.tenant)}


@router.put("/tenant/members/{user_id}", summary="Change a member's role")
def set_member_role(user_id: str, body: RoleBody, services: Svc, principal: Admin) -> dict[str, Any]:
    _accounts(services).set_member_role(principal.tenant, user_id, body.role)
    return {"user_id": user_id, "role": body.role}


@router.delete("/tenant/members/{user_id}", summary="Remove a member (their sessions here end)")
def remove_member(user_id: str, services: Svc, principal: Admin) -> dict[str, Any]:
    _accounts(services).remove_member(principal.tenant, user_id)
    return {"removed": user_id}


@router.post("/tenant/invitations", summary="Invite someone; the token is in this answer only")
def create_invitation(body: InvitationBody, services: Svc, principal: Admin) -> JSONResponse:
    token, inv_id = _accounts(services).create_invitation(
        principal.tenant, body.role, body.email, principal.user, services.settings.auth_invitation_ttl_s
    )
    return JSONResponse({"id": inv_id, "token": token, "role": body.role, "email": body.email}, status_code=201)


@router.get("/tenant/invitations", summary="Open and used invitations")
def list_invitations(services: Svc, principal: Admin) -> dict[str, Any]:
    return {"items": _accounts(services).list_invitations(principal.tenant)}


@router.delete("/tenant/invitations/{invitation_id}", summary="Withdraw an invitation")
def delete_invitation(invitation_id: str, services: Svc, principal: Admin) -> dict[str, Any]:
    _accounts(services).delete_invitation(principal.tenant, invitation_id)
    return {"deleted": invitation_id}


# -- retention, enforced in the background too ---------------------------------------------------------


class RetentionSweeper:
    """Deletes every tenant's events older than its retention, every ``retention_sweep_s`` seconds,
    and its quarantined input past the same retention or the quarantine's size cap.

    Rows carry a TTL, but the engine applies TTLs at merges, hours later; this makes the promise hold
    within one interval. A cheap count first, so a tenant with nothing to delete costs no mutation.
    """

    def __init__(self, services: Services) -> None:
        self.services = services
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, now: int | None = None) -> dict[str, int]:
        """One sweep at ``now`` (epoch µs, default the clock); the events deleted per tenant."""
        deleted: dict[str, int] = {}
        now = now_us() if now is None else now
        for tenant in self.services.meta.list_tenants():
            self.services.meta.prune_quarantine(tenant.id, older_than=now / 1e6 - tenant.retention_days * 86_400)
            cutoff = now - tenant.retention_days * 86_400_000_000
            n = int(
                self.services.store.scalar(
                    "SELECT count() FROM events WHERE tenant = {tenant:String}"
                    " AND observed_ts < fromUnixTimestamp64Micro({cutoff:Int64}, 'UTC')",
                    {"tenant": tenant.id, "cutoff": cutoff},
                )
                or 0
            )
            if n:
                enforce_retention(self.services.store, tenant.id, tenant.retention_days, now)
                deleted[tenant.id] = n
        return deleted

    def _loop(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                self.run_once()
            except Exception:  # the sweeper must outlive a failed sweep; the next one retries
                log.exception("retention sweep failed")

    def start(self, interval_s: float) -> None:
        self._thread = threading.Thread(target=self._loop, args=(interval_s,), name="retention-sweep", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


def setup(services: Services) -> None:
    sweeper = RetentionSweeper(services)
    services.extras["retention_sweeper"] = sweeper
    if services.settings.retention_sweep_s > 0:
        sweeper.start(services.settings.retention_sweep_s)


def teardown(services: Services) -> None:
    sweeper = services.extras.pop("retention_sweeper", None)
    if isinstance(sweeper, RetentionSweeper):
        sweeper.stop()
