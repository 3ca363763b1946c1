"""Which LLM provider may be used for a tenant, and how text is masked before it is sent.

The API (``serve/api/insights.py``) applies a tenant's stored LLM policy when auth is on;
``logloupe analyze`` and the background pattern labeller (``analyse/llm_patterns.py``) apply it
through ``policy_for``/``resolve_llm_policy`` here: ``Accounts.policy(tenant)`` gives the allowed
providers and the masking mode; ``<data-dir>/policies/<tenant>.json`` still applies on top.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from logloupe.analyse.redact import RedactionPolicy, tenant_policy, tenant_redaction
from logloupe.settings import Settings
from logloupe.store.meta import tenants

if TYPE_CHECKING:
    from logloupe.store.accounts import Accounts


@dataclass(frozen=True, slots=True)
class LLMPolicy:
    """What ``analyze`` may send where: the provider to use, the masking, and where they came from."""

    provider: str
    redaction: RedactionPolicy
    source: str  # "tenant": the tenant's stored LLM policy; "settings": settings and the CLI options
    masking_mode: str | None = None
    allowed_providers: tuple[str, ...] | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "provider": self.provider,
            "masking_mode": self.masking_mode,
            "allowed_providers": None if self.allowed_providers is None else list(self.allowed_providers),
            "note": self.note,
        }


def data_dir_accounts(settings: Settings) -> Accounts | None:
    """The data dir's accounts, when it has any (a server run with ``--auth`` keeps them in
    ``meta.db``); None in single-user local mode."""
    path = settings.data_dir / "meta.db"
    if not path.exists():
        return None
    from logloupe.store.accounts import Accounts
    from logloupe.store.meta import MetaStore, users

    meta = MetaStore(path)
    with meta.engine.connect() as conn:
        has_users = conn.execute(sa.select(users.c.id).limit(1)).first() is not None
    if not has_users:
        meta.engine.dispose()
        return None
    return Accounts(meta)


def resolve_llm_policy(settings: Settings, tenant: str, provider: str) -> tuple[str, LLMPolicy]:
    """The tenant (an id, or an organisation's name when the data dir has accounts) and the LLM
    policy ``analyze`` runs under: the tenant's stored policy (allowed providers, masking mode)
    when the data dir has accounts, as the API applies it; settings otherwise. A provider the
    tenant does not allow is replaced by the offline knowledge base, with a note.
    ``<data-dir>/policies/<tenant>.json`` still applies on top, as in the API."""
    accounts = data_dir_accounts(settings)
    if accounts is None:
        return tenant, policy_for(None, settings, tenant, provider)
    try:
        with accounts.engine.connect() as conn:
            known = conn.execute(sa.select(tenants.c.id).where(tenants.c.id == tenant)).first() is not None
        if not known:
            tenant = accounts.tenant_by_name(tenant) or tenant
        return tenant, policy_for(accounts, settings, tenant, provider)
    finally:
        accounts.engine.dispose()


def policy_for(accounts: Accounts | None, settings: Settings, tenant: str, provider: str) -> LLMPolicy:
    """The LLM policy for ``tenant``: its stored one when ``accounts`` is given (the data dir has
    accounts, or the server runs with auth), the settings otherwise."""
    base = RedactionPolicy(ip_addresses=settings.redact_ip_addresses)
    if accounts is None:
        return LLMPolicy(provider, tenant_policy(settings.data_dir, tenant, base), "settings")
    stored = accounts.policy(tenant)
    note = ""
    if provider != "offline" and provider not in stored.llm_allowed_providers:
        note = f"{provider} is not allowed by this tenant's LLM policy; the offline knowledge base is used"
        provider = "offline"
    # The same mode → rules mapping as the API and alert notifications (mask, hash, keep, strict).
    redaction = tenant_redaction(
        settings.data_dir, tenant, stored.llm_masking_mode, ip_addresses=settings.redact_ip_addresses
    )
    return LLMPolicy(provider, redaction, "tenant", stored.llm_masking_mode, stored.llm_allowed_providers, note)
