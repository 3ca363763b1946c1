"""Accounts, memberships, API keys, tokens, invitations, login attempts and tenant policies.

Pure storage over the metadata database (tables registered in ``store/meta.py``); no HTTP and no
crypto beyond hashing secrets for lookup. Secrets (API keys, invitation tokens) are stored as
SHA-256 digests: they are long random strings, so a fast hash is enough to make a stolen database
useless, and lookup stays one indexed equality. Passwords are hashed with argon2 by the caller.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa

from logloupe.errors import InvalidInput, NotFound
from logloupe.parse.masking import MASKING_MODES, masking_mode
from logloupe.store.meta import (
    MetaStore,
    api_keys,
    ingest_usage,
    invitations,
    login_attempts,
    memberships,
    refresh_tokens,
    revoked_tokens,
    tenant_policies,
    tenants,
    users,
)

ROLES = ("viewer", "editor", "admin")
KEY_ROLES = ("ingest", "viewer")


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class User:
    id: str
    username: str
    email: str
    password_hash: str
    disabled: bool


@dataclass(frozen=True)
class ApiKey:
    id: str
    tenant: str
    name: str
    prefix: str
    role: str
    sources: tuple[str, ...]
    created_by: str
    created_at: float
    last_used_at: float | None
    revoked_at: float | None

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "role": self.role,
            "sources": list(self.sources),
            "created_by": self.created_by,
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
            "revoked": self.revoked_at is not None,
            "revoked_at": self.revoked_at,
        }


@dataclass(frozen=True)
class Policy:
    tenant: str
    ingest_rate_per_s: float = 0.0
    ingest_burst: int = 0
    ingest_daily_bytes: int = 0
    llm_allowed_providers: tuple[str, ...] = field(default_factory=tuple)
    llm_masking_mode: str = "mask"

    def to_api(self) -> dict[str, Any]:
        return {
            "quotas": {
                "rate_per_s": self.ingest_rate_per_s,
                "burst": self.ingest_burst,
                "daily_bytes": self.ingest_daily_bytes,
            },
            "llm": {"allowed_providers": list(self.llm_allowed_providers), "masking_mode": self.llm_masking_mode},
        }


def _key(row: Any) -> ApiKey:
    return ApiKey(
        id=row.id,
        tenant=row.tenant,
        name=row.name,
        prefix=row.prefix,
        role=row.role,
        sources=tuple(orjson.loads(row.sources or "[]")),
        created_by=row.created_by,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def _user(row: Any) -> User:
    return User(row.id, row.username, row.email, row.password_hash, bool(row.disabled))


class Accounts:
    """Account operations over the metadata store's engine (one per process, thread-safe)."""

    def __init__(self, meta: MetaStore) -> None:
        self.meta = meta
        self.engine = meta.engine

    # -- tenants -----------------------------------------------------------------------

    def create_tenant(self, name: str, retention_days: int) -> str:
        """A new organisation with a fresh id; the name must be free (joining needs an invitation)."""
        with self.engine.begin() as conn:
            if conn.execute(sa.select(tenants.c.id).where(sa.func.lower(tenants.c.name) == name.lower())).first():
                raise InvalidInput(f"an organisation named {name!r} already exists; ask its admin for an invitation")
            tenant_id = "t" + secrets.token_hex(6)
            conn.execute(
                tenants.insert().values(id=tenant_id, name=name, retention_days=retention_days, created_at=time.time())
            )
        return tenant_id

    def tenant_by_name(self, name: str) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(tenants.c.id).where(sa.func.lower(tenants.c.name) == name.lower())).first()
        return None if row is None else str(row.id)

    # -- users and memberships -----------------------------------------------------------

    def create_user(self, username: str, email: str, password_hash: str) -> User:
        with self.engine.begin() as conn:
            clash = conn.execute(
                sa.select(users.c.id).where(
                    sa.or_(
                        sa.func.lower(users.c.username) == username.lower(),
                        sa.func.lower(users.c.email) == email.lower(),
                    )
                )
            ).first()
            if clash:
                raise InvalidInput("that username or email is already registered")
            user = User("u" + secrets.token_hex(8), username, email, password_hash, False)
            conn.execute(
                users.insert().values(
                    id=user.id,
                    username=username,
                    email=email,
                    password_hash=password_hash,
                    disabled=False,
                    created_at=time.time(),
                )
            )
        return user

    def find_user(self, identifier: str) -> User | None:
        """By username or email, case-insensitively."""
        ident = identifier.lower()
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(users).where(
                    sa.or_(sa.func.lower(users.c.username) == ident, sa.func.lower(users.c.email) == ident)
                )
            ).first()
        return None if row is None else _user(row)

    def get_user(self, user_id: str) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(users).where(users.c.id == user_id)).first()
        return None if row is None else _user(row)

    def set_password_hash(self, user_id: str, password_hash: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(users.update().where(users.c.id == user_id).values(password_hash=password_hash))

    def add_member(self, tenant: str, user_id: str, role: str) -> None:
        if role not in ROLES:
            raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
        with self.engine.begin() as conn:
            existing = conn.execute(
                sa.select(memberships.c.role).where(memberships.c.tenant == tenant, memberships.c.user_id == user_id)
            ).first()
            if existing:
                conn.execute(
                    memberships.update()
                    .where(memberships.c.tenant == tenant, memberships.c.user_id == user_id)
                    .values(role=role)
                )
            else:
                conn.execute(
                    memberships.insert().values(tenant=tenant, user_id=user_id, role=role, created_at=time.time())
                )

    def role_of(self, tenant: str, user_id: str) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(memberships.c.role)
                .select_from(memberships.join(users, users.c.id == memberships.c.user_id))
                .where(memberships.c.tenant == tenant, memberships.c.user_id == user_id, users.c.disabled.is_(False))
            ).first()
        return None if row is None else str(row.role)

    def tenants_of(self, user_id: str) -> list[dict[str, str]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(memberships.c.tenant, memberships.c.role, tenants.c.name)
                .select_from(memberships.join(tenants, tenants.c.id == memberships.c.tenant))
                .where(memberships.c.user_id == user_id)
                .order_by(memberships.c.created_at)
            ).all()
        return [{"tenant": r.tenant, "name": r.name, "role": r.role} for r in rows]

    def members(self, tenant: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(users.c.id, users.c.username, users.c.email, memberships.c.role, memberships.c.created_at)
                .select_from(memberships.join(users, users.c.id == memberships.c.user_id))
                .where(memberships.c.tenant == tenant)
                .order_by(users.c.username)
            ).all()
        return [
            {"user_id": r.id, "username": r.username, "email": r.email, "role": r.role, "since": r.created_at}
            for r in rows
        ]

    def _admins(self, conn: Any, tenant: str) -> int:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(memberships)
                .where(memberships.c.tenant == tenant, memberships.c.role == "admin")
            ).scalar_one()
        )

    def set_member_role(self, tenant: str, user_id: str, role: str) -> None:
        if role not in ROLES:
            raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(memberships.c.role).where(memberships.c.tenant == tenant, memberships.c.user_id == user_id)
            ).first()
            if row is None:
                raise NotFound(f"no member {user_id!r}")
            if row.role == "admin" and role != "admin" and self._admins(conn, tenant) <= 1:
                raise InvalidInput("an organisation keeps at least one admin")
            conn.execute(
                memberships.update()
                .where(memberships.c.tenant == tenant, memberships.c.user_id == user_id)
                .values(role=role)
            )

    def remove_member(self, tenant: str, user_id: str) -> None:
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(memberships.c.role).where(memberships.c.tenant == tenant, memberships.c.user_id == user_id)
            ).first()
            if row is None:
                raise NotFound(f"no member {user_id!r}")
            if row.role == "admin" and self._admins(conn, tenant) <= 1:
                raise InvalidInput("an organisation keeps at least one admin")
            conn.execute(memberships.delete().where(memberships.c.tenant == tenant, memberships.c.user_id == user_id))
            # Their sessions in this tenant end now.
            conn.execute(
                refresh_tokens.update()
                .where(
                    refresh_tokens.c.user_id == user_id,
                    refresh_tokens.c.tenant == tenant,
                    refresh_tokens.c.revoked_at.is_(None),
                )
                .values(revoked_at=time.time())
            )

    # -- API keys -----------------------------------------------------------------------

    def create_key(self, tenant: str, name: str, role: str, sources: list[str], created_by: str) -> tuple[str, ApiKey]:
        """A new key: the secret is returned once and only its digest is kept."""
        if role not in KEY_ROLES:
            raise InvalidInput(f"an API key's role is one of {', '.join(KEY_ROLES)}")
        if not name.strip() or len(name) > 200:
            raise InvalidInput("an API key needs a name of 1 to 200 characters")
        if len(sources) > 100 or any(not s or len(s) > 200 for s in sources):
            raise InvalidInput("sources: up to 100 non-empty names or patterns")
        secret = "llk_" + secrets.token_urlsafe(32)
        key = ApiKey(
            id="k" + secrets.token_hex(8),
            tenant=tenant,
            name=name.strip(),
            prefix=secret[:10],
            role=role,
            sources=tuple(sources),
            created_by=created_by,
            created_at=time.time(),
            last_used_at=None,
            revoked_at=None,
        )
        with self.engine.begin() as conn:
            conn.execute(
                api_keys.insert().values(
                    id=key.id,
                    tenant=tenant,
                    name=key.name,
                    prefix=key.prefix,
                    key_hash=digest(secret),
                    role=role,
                    sources=orjson.dumps(list(sources)).decode(),
                    created_by=created_by,
                    created_at=key.created_at,
                )
            )
        return secret, key

    def key_by_secret(self, secret: str) -> ApiKey | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.key_hash == digest(secret))).first()
        return None if row is None else _key(row)

    def touch_key(self, key: ApiKey, now: float) -> None:
        # Last-used time to the minute is enough; it saves a write on every request.
        if key.last_used_at is None or now - key.last_used_at > 60:
            with self.engine.begin() as conn:
                conn.execute(api_keys.update().where(api_keys.c.id == key.id).values(last_used_at=now))

    def list_keys(self, tenant: str) -> list[ApiKey]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(api_keys).where(api_keys.c.tenant == tenant).order_by(api_keys.c.created_at)
            ).all()
        return [_key(r) for r in rows]

    def revoke_key(self, tenant: str, key_id: str) -> None:
        with self.engine.begin() as conn:
            result = conn.execute(
                api_keys.update()
                .where(api_keys.c.tenant == tenant, api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            )
        if result.rowcount == 0:
            raise NotFound(f"no active API key {key_id!r}")

    # -- refresh tokens and revocations ---------------------------------------------------

    def add_refresh(self, jti: str, user_id: str, tenant: str, expires_at: float) -> None:
        with self.engine.begin() as conn:
            conn.execute(refresh_tokens.delete().where(refresh_tokens.c.expires_at < time.time()))
            conn.execute(
                refresh_tokens.insert().values(
                    jti=jti, user_id=user_id, tenant=tenant, created_at=time.time(), expires_at=expires_at
                )
            )

    def use_refresh(self, jti: str, user_id: str) -> str:
        """Revoke a refresh token as it is used (rotation) and say how it stood: ok, unknown, revoked."""
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(refresh_tokens).where(refresh_tokens.c.jti == jti, refresh_tokens.c.user_id == user_id)
            ).first()
            if row is None:
                return "unknown"
            if row.revoked_at is not None:
                return "revoked"
            conn.execute(refresh_tokens.update().where(refresh_tokens.c.jti == jti).values(revoked_at=time.time()))
        return "ok"

    def revoke_all_refresh(self, user_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                refresh_tokens.update()
                .where(refresh_tokens.c.user_id == user_id, refresh_tokens.c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            )

    def revoke_access(self, jti: str, expires_at: float) -> None:
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(revoked_tokens.delete().where(revoked_tokens.c.expires_at < now))
            if not conn.execute(sa.select(revoked_tokens.c.jti).where(revoked_tokens.c.jti == jti)).first():
                conn.execute(revoked_tokens.insert().values(jti=jti, expires_at=expires_at))

    def access_revoked(self, jti: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(revoked_tokens.c.jti).where(revoked_tokens.c.jti == jti)).first() is not None

    # -- invitations ----------------------------------------------------------------------

    def create_invitation(self, tenant: str, role: str, email: str, created_by: str, ttl_s: int) -> tuple[str, str]:
        if role not in ROLES:
            raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
        token = "inv_" + secrets.token_urlsafe(24)
        inv_id = "i" + secrets.token_hex(8)
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(
                invitations.insert().values(
                    id=inv_id,
                    tenant=tenant,
                    token_hash=digest(token),
                    role=role,
                    email=email,
                    created_by=created_by,
                    created_at=now,
                    expires_at=now + ttl_s,
                )
            )
        return token, inv_id

    def list_invitations(self, tenant: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(invitations).where(invitations.c.tenant == tenant).order_by(invitations.c.created_at)
            ).all()
        return [
            {
                "id": r.id,
                "role": r.role,
                "email": r.email,
                "created_by": r.created_by,
                "created_at": r.created_at,
                "expires_at": r.expires_at,
                "used": r.used_at is not None,
            }
            for r in rows
        ]

    def delete_invitation(self, tenant: str, inv_id: str) -> None:
        with self.engine.begin() as conn:
            result = conn.execute(
                invitations.delete().where(invitations.c.tenant == tenant, invitations.c.id == inv_id)
            )
        if result.rowcount == 0:
            raise NotFound(f"no invitation {inv_id!r}")

    def claim_invitation(self, token: str, email: str) -> tuple[str, str, str]:
        """Mark an invitation used; returns (invitation id, tenant, role). One use, before it expires."""
        now = time.time()
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(invitations).where(invitations.c.token_hash == digest(token))).first()
            if row is None or row.used_at is not None or row.expires_at < now:
                raise InvalidInput("the invitation is unknown, used or expired")
            if row.email and row.email.lower() != email.lower():
                raise InvalidInput("the invitation was made out to another email address")
            result = conn.execute(
                invitations.update()
                .where(invitations.c.id == row.id, invitations.c.used_at.is_(None))
                .values(used_at=now)
            )
            if result.rowcount == 0:
                raise InvalidInput("the invitation is unknown, used or expired")
        return str(row.id), str(row.tenant), str(row.role)

    def mark_invitation_user(self, inv_id: str, user_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(invitations.update().where(invitations.c.id == inv_id).values(used_by=user_id))

    # -- login attempts (lockout and rate limit) --------------------------------------------

    def record_attempt(self, identifier: str, client: str, ok: bool) -> None:
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(
                login_attempts.insert().values(identifier=identifier.lower()[:254], client=client[:64], at=now, ok=ok)
            )
            # Keep the table small: a day of history is more than any window needs.
            conn.execute(login_attempts.delete().where(login_attempts.c.at < now - 86400))

    def recent_failures(self, *, identifier: str | None = None, client: str | None = None, since: float) -> list[float]:
        """Times of failed attempts since ``since`` (and since the last success, for an identifier)."""
        cond = [login_attempts.c.at >= since]
        if identifier is not None:
            cond.append(login_attempts.c.identifier == identifier.lower()[:254])
        if client is not None:
            cond.append(login_attempts.c.client == client[:64])
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(login_attempts.c.at, login_attempts.c.ok).where(*cond).order_by("at")).all()
        failures: list[float] = []
        for r in rows:
            if r.ok and identifier is not None:
                failures = []
            elif not r.ok:
                failures.append(float(r.at))
        return failures

    def clear_attempts(self, identifier: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(login_attempts.delete().where(login_attempts.c.identifier == identifier.lower()[:254]))

    # -- per-tenant policy: quotas and LLM ------------------------------------------------------

    def policy(self, tenant: str) -> Policy:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(tenant_policies).where(tenant_policies.c.tenant == tenant)).first()
        if row is None:
            return Policy(tenant)
        return Policy(
            tenant=tenant,
            ingest_rate_per_s=float(row.ingest_rate_per_s),
            ingest_burst=int(row.ingest_burst),
            ingest_daily_bytes=int(row.ingest_daily_bytes),
            llm_allowed_providers=tuple(orjson.loads(row.llm_allowed_providers or "[]")),
            llm_masking_mode=masking_mode(str(row.llm_masking_mode)),
        )

    def set_policy(self, tenant: str, **values: Any) -> Policy:
        current = self.policy(tenant)
        merged: dict[str, Any] = {
            "ingest_rate_per_s": current.ingest_rate_per_s,
            "ingest_burst": current.ingest_burst,
            "ingest_daily_bytes": current.ingest_daily_bytes,
            "llm_allowed_providers": list(current.llm_allowed_providers),
            "llm_masking_mode": current.llm_masking_mode,
        }
        merged.update({k: v for k, v in values.items() if v is not None})
        merged["llm_masking_mode"] = masking_mode(str(merged["llm_masking_mode"]))
        if merged["llm_masking_mode"] not in MASKING_MODES:
            raise InvalidInput(f"masking_mode must be one of {', '.join(MASKING_MODES)}")
        row = {**merged, "llm_allowed_providers": orjson.dumps(sorted(set(merged["llm_allowed_providers"]))).decode()}
        with self.engine.begin() as conn:
            exists = conn.execute(sa.select(tenant_policies.c.tenant).where(tenant_policies.c.tenant == tenant)).first()
            if exists:
                conn.execute(tenant_policies.update().where(tenant_policies.c.tenant == tenant).values(**row))
            else:
                conn.execute(tenant_policies.insert().values(tenant=tenant, **row))
        return self.policy(tenant)

    def usage(self, tenant: str, day: str) -> tuple[int, int]:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(ingest_usage.c.events, ingest_usage.c.bytes).where(
                    ingest_usage.c.tenant == tenant, ingest_usage.c.day == day
                )
            ).first()
        return (0, 0) if row is None else (int(row.events), int(row.bytes))

    def add_usage(self, tenant: str, day: str, events: int, nbytes: int) -> None:
        with self.engine.begin() as conn:
            result = conn.execute(
                ingest_usage.update()
                .where(ingest_usage.c.tenant == tenant, ingest_usage.c.day == day)
                .values(events=ingest_usage.c.events + events, bytes=ingest_usage.c.bytes + nbytes)
            )
            if result.rowcount == 0:
                conn.execute(ingest_usage.insert().values(tenant=tenant, day=day, events=events, bytes=nbytes))
