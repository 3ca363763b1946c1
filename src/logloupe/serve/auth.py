"""Who is asking: passwords, tokens, API keys, roles, quotas — the one place credentials are checked.

With ``auth_enabled`` the API module ``serve/api/auth.py`` installs :func:`resolve_request` as
``services.extras["principal_resolver"]``; ``serve/deps.py:get_principal`` then answers with the
caller's tenant and role or raises 401/403. Without it the server runs in single-user local mode.

Credentials, in the order they are tried:

    Authorization: Bearer <access JWT>     a member's session (HS256, short-lived, revocable)
    Authorization: Bearer <key>            an API key (``llk_...``), for clients that only speak Bearer
    Authorization: ApiKey <key>            an API key (also ES style: base64("id:key"))
    X-API-Key: <key>                       an API key
    Authorization: Basic base64(user:key)  an API key as the password (Elasticsearch clients)

Cookies never authenticate (so cross-site requests carry no ambient authority: no CSRF).
``X-Scope-OrgID`` (Loki) is never trusted alone: it must name the credentials' own tenant.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import fnmatch
import math
import os
import re
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import jwt
import orjson
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from logloupe.errors import Forbidden, LogLoupeError, PayloadTooLarge, TooManyRequests, Unauthorized
from logloupe.metrics import AUTH_FAILURES, QUOTA_REJECTED
from logloupe.serve.deps import Principal, get_principal
from logloupe.serve.services import Services
from logloupe.settings import Settings
from logloupe.store.accounts import Accounts

ROLE_RANK = {"ingest": 0, "viewer": 1, "editor": 2, "admin": 3}
ISSUER = "logloupe"
SECRET_FILE = "jwt.secret"  # noqa: S105 (a file name, not a secret)

# Paths an ingest-only API key may call. Protocol modules add theirs with ``register_ingest_path``.
INGEST_PATHS: list[re.Pattern[str]] = [
    re.compile(p)
    for p in (
        r"^/api/v1/logs$",
        r"^/ingest$",
        r"^/api/v1/upload(/.*)?$",
        r"^/api/v1/ingest(/.*)?$",
        r"^/v1/logs$",  # OTLP/HTTP
        r"^/otlp(/.*)?$",
        r"^/loki/api/v1/push$",
        r"^/(es/)?_bulk$",  # Elasticsearch _bulk and the handshake calls its clients make
        r"^/(es/)?[^/]+/_bulk$",
        r"^/(es/?)?$",
        r"^/(es/)?_(license|xpack|cluster/health|nodes|index_template|template|ilm)(/.*)?$",
    )
]

# Reachable without credentials even when auth is on.
PUBLIC_PATHS = {
    "/healthz",
    "/login",
    "/login/login.js",
    "/login/login.css",
    "/api/v1/auth/login",
    "/api/v1/auth/register",
    "/api/v1/auth/refresh",
}
# With auth on, these need credentials whatever the method; other GETs (HTML shells, static files of the
# UI, which hold no data) stay public, and every data endpoint checks through ``get_principal``.
GATED_PREFIXES = ("/api/", "/metrics", "/openapi.json", "/docs", "/redoc", "/ingest", "/_")  # /_…: Elasticsearch API


def register_ingest_path(pattern: str) -> None:
    """Let ingest-only API keys call paths matching this regular expression (for protocol modules)."""
    INGEST_PATHS.append(re.compile(pattern))


def is_ingest_path(path: str) -> bool:
    return any(p.search(path) for p in INGEST_PATHS)


# -- secrets and hashing -------------------------------------------------------------------------


def load_secret(settings: Settings) -> str:
    """The configured secret, or one generated on first use and kept in the data dir, mode 0600."""
    if settings.auth_jwt_secret:
        if len(settings.auth_jwt_secret) < 32:
            raise LogLoupeError("auth_jwt_secret must be at least 32 characters")
        return settings.auth_jwt_secret
    path = Path(settings.data_dir) / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)
        value = path.read_text().strip()
        if len(value) >= 32:
            return value
        raise LogLoupeError(f"{path} holds no usable secret; delete it to generate a new one") from None
    value = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value


def password_hasher(settings: Settings) -> PasswordHasher:
    return PasswordHasher(time_cost=settings.auth_argon2_time_cost, memory_cost=settings.auth_argon2_memory_kib)


@dataclass
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    tenant: str
    role: str

    def to_api(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": "bearer",
            "expires_in": self.expires_in,
            "tenant": self.tenant,
            "role": self.role,
        }


@dataclass
class Auth:
    """What the auth area keeps per server: the account store, the token secret, the hasher."""

    settings: Settings
    accounts: Accounts
    secret: str
    hasher: PasswordHasher
    # A hash to verify against when the user does not exist, so both paths cost the same.
    dummy_hash: str = ""
    # argon2 takes auth_argon2_memory_kib per hash: a flood of logins must not take all the memory.
    hashing: threading.BoundedSemaphore = field(default_factory=lambda: threading.BoundedSemaphore(4))

    @classmethod
    def open(cls, services: Services) -> Auth:
        hasher = password_hasher(services.settings)
        auth = cls(services.settings, Accounts(services.meta), load_secret(services.settings), hasher)
        auth.dummy_hash = hasher.hash(secrets.token_urlsafe(16))
        return auth

    # -- passwords --

    def hash_password(self, password: str) -> str:
        with self.hashing:
            return self.hasher.hash(password)

    def verify_password(self, password_hash: str | None, password: str) -> bool:
        try:
            with self.hashing:
                ok = self.hasher.verify(password_hash or self.dummy_hash, password)
            return ok and password_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    # -- tokens --

    def issue(self, user_id: str, tenant: str, role: str) -> TokenPair:
        now = int(time.time())
        access: dict[str, Any] = {
            "iss": ISSUER,
            "sub": user_id,
            "tid": tenant,
            "typ": "access",
            "jti": secrets.token_hex(16),
            "iat": now,
            "exp": now + self.settings.auth_access_ttl_s,
        }
        refresh_jti = secrets.token_hex(16)
        refresh = {**access, "typ": "refresh", "jti": refresh_jti, "exp": now + self.settings.auth_refresh_ttl_s}
        self.accounts.add_refresh(refresh_jti, user_id, tenant, float(refresh["exp"]))
        return TokenPair(
            jwt.encode(access, self.secret, algorithm="HS256"),
            jwt.encode(refresh, self.secret, algorithm="HS256"),
            self.settings.auth_access_ttl_s,
            tenant,
            role,
        )

    def decode(self, token: str, typ: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.secret,
                algorithms=["HS256"],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "jti", "typ", "tid", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            AUTH_FAILURES.labels("token_expired").inc()
            raise Unauthorized("the token has expired") from None
        except jwt.PyJWTError:
            AUTH_FAILURES.labels("token_invalid").inc()
            raise Unauthorized("invalid token") from None
        if claims.get("typ") != typ or not isinstance(claims.get("tid"), str) or not isinstance(claims["sub"], str):
            AUTH_FAILURES.labels("token_invalid").inc()
            raise Unauthorized("invalid token")
        return claims


def auth_of(services: Services) -> Auth:
    auth = services.extras.get("auth")
    if auth is None:
        auth = services.extras["auth"] = Auth.open(services)
    assert isinstance(auth, Auth)
    return auth


# -- credentials → principal -----------------------------------------------------------------------


def _header(headers: Mapping[str, str], name: str) -> str:
    """``name`` is lower case; Starlette's Headers are case-insensitive, other mappings are lowered."""
    return (headers.get(name) or "").strip()


def _key_from_apikey_scheme(value: str) -> str:
    # Elasticsearch clients send base64("id:api_key"); others send the key itself.
    if value.startswith("llk_"):
        return value
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return value
    return decoded.split(":", 1)[1] if ":" in decoded else decoded


def _key_from_basic(value: str) -> str:
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise Unauthorized("malformed Basic credentials") from None
    _user, _, password = decoded.partition(":")
    return password


def principal_from_key(services: Services, key: str) -> Principal:
    """An API key (from any header, a syslog structured-data token, ...) → its principal, or 401."""
    auth = auth_of(services)
    found = auth.accounts.key_by_secret(key) if key else None
    if found is None or found.revoked_at is not None:
        AUTH_FAILURES.labels("key_revoked" if found else "key_unknown").inc()
        raise Unauthorized("invalid or revoked API key")
    auth.accounts.touch_key(found, time.time())
    return Principal(tenant=found.tenant, user=f"key:{found.name}", role=found.role, sources=found.sources, via="key")


def principal_from_bearer(services: Services, token: str) -> Principal:
    auth = auth_of(services)
    claims = auth.decode(token, "access")
    if auth.accounts.access_revoked(str(claims["jti"])):
        AUTH_FAILURES.labels("token_revoked").inc()
        raise Unauthorized("the token has been revoked; log in again")
    role = auth.accounts.role_of(claims["tid"], claims["sub"])
    if role is None:
        AUTH_FAILURES.labels("not_member").inc()
        raise Unauthorized("the account is no longer a member of this organisation")
    user = auth.accounts.get_user(claims["sub"])
    return Principal(tenant=claims["tid"], user=user.username if user else claims["sub"], role=role, via="bearer")


def principal_from_headers(services: Services, headers: Mapping[str, str]) -> Principal:
    """The principal for a request's headers (any mapping; case-insensitive names welcome).

    For protocol modules that do not go through ``get_principal`` (syslog over TCP with a token,
    custom servers). Local mode (auth off): the implicit tenant, as admin. Raises Unauthorized (401)
    or Forbidden (403, ``X-Scope-OrgID`` naming another tenant).
    """
    if not services.settings.auth_enabled:
        return Principal(tenant=services.settings.default_tenant)
    if not isinstance(headers, Headers):
        headers = {str(k).lower(): str(v) for k, v in headers.items()}
    authorization = _header(headers, "authorization")
    scheme, _, value = authorization.partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme == "bearer" and value.startswith("llk_"):
        principal = principal_from_key(services, value)  # OTLP exporters and others that only speak Bearer
    elif scheme == "bearer" and value:
        principal = principal_from_bearer(services, value)
    elif scheme == "apikey" and value:
        principal = principal_from_key(services, _key_from_apikey_scheme(value))
    elif scheme == "basic" and value:
        principal = principal_from_key(services, _key_from_basic(value))
    elif _header(headers, "x-api-key"):
        principal = principal_from_key(services, _header(headers, "x-api-key"))
    else:
        AUTH_FAILURES.labels("missing").inc()
        raise Unauthorized("credentials required: Authorization: Bearer <token>, ApiKey <key>, or X-API-Key")
    org = _header(headers, "x-scope-orgid")
    if org and org != principal.tenant:
        name = auth_of(services).accounts.tenant_by_name(org)
        if name != principal.tenant:
            AUTH_FAILURES.labels("tenant_mismatch").inc()
            raise Forbidden("X-Scope-OrgID names a tenant these credentials do not belong to")
    return principal


def check_path(principal: Principal, method: str, path: str) -> None:
    """Ingest-only keys reach ingest paths and nothing else."""
    if principal.role == "ingest" and not is_ingest_path(path):
        AUTH_FAILURES.labels("key_scope").inc()
        raise Forbidden("this API key may only ingest")


def resolve_request(request: Request) -> Principal:
    """The ``principal_resolver`` installed when auth is on (cached per request)."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    services: Services = request.app.state.services
    principal = principal_from_headers(services, request.headers)
    check_path(principal, request.method, request.url.path)
    request.state.principal = principal
    return principal


def require_role(role: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the principal, if their role is at least ``role`` (viewer < editor < admin)."""
    needed = ROLE_RANK[role]

    async def dependency(principal: Principal = Depends(get_principal)) -> Principal:  # noqa: B008
        if ROLE_RANK.get(principal.role, -1) < needed:
            AUTH_FAILURES.labels("role").inc()
            raise Forbidden(f"this needs the {role} role; you are {principal.role}")
        return principal

    dependency.__name__ = f"require_{role}"
    return dependency


async def require_ingest(principal: Principal = Depends(get_principal)) -> Principal:  # noqa: B008
    """Ingest: an API key (ingest role) or a member who may write (editor or admin)."""
    if principal.role not in ("ingest", "editor", "admin"):
        AUTH_FAILURES.labels("role").inc()
        raise Forbidden(f"ingesting needs an ingest API key or the editor role; you are {principal.role}")
    return principal


# -- ingest quotas ---------------------------------------------------------------------------------


class IngestItem(Protocol):
    raw: bytes
    error: str | None


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class QuotaChecker:
    """Called by ``serve/api/logs.py: store_items`` before anything is stored.

    Checks the caller may ingest (role, the key's sources), then the tenant's quotas: a token
    bucket (``rate_per_s`` refill, ``burst`` size, in events) and a daily volume in bytes. Over a
    quota: 429 with Retry-After, counted in ``logloupe_quota_rejected_total``. Zero means unlimited.
    """

    accounts: Accounts
    clock: Callable[[], float] = time.time
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, principal: Principal, source: str, items: Sequence[IngestItem]) -> None:
        self.check_counts(principal, source, sum(1 for it in items if not it.error), sum(len(it.raw) for it in items))

    def check_counts(self, principal: Principal, source: str, n: int, nbytes: int) -> None:
        """``check`` for ``n`` good items of ``nbytes`` bytes in all (``ObjectLines``: no item objects)."""
        if principal.role not in ("ingest", "editor", "admin"):
            raise Forbidden(f"ingesting needs an ingest API key or the editor role; you are {principal.role}")
        if principal.sources and not any(fnmatch.fnmatchcase(source, pat) for pat in principal.sources):
            AUTH_FAILURES.labels("key_scope").inc()
            raise Forbidden(f"this API key may not ingest from source {source!r}")
        policy = self.accounts.policy(principal.tenant)
        now = self.clock()
        day = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%d")
        if policy.ingest_daily_bytes > 0:
            _events, used = self.accounts.usage(principal.tenant, day)
            if used + nbytes > policy.ingest_daily_bytes:
                QUOTA_REJECTED.labels(principal.tenant, "daily_volume").inc(max(n, 1))
                retry = int(86400 - now % 86400) + 1
                raise TooManyRequests(
                    f"daily ingest volume of {policy.ingest_daily_bytes} bytes reached",
                    retry_after_s=retry,
                    quota="daily_bytes",
                )
        if policy.ingest_rate_per_s > 0 and n:
            burst = max(policy.ingest_burst, 1) if policy.ingest_burst else max(1, math.ceil(policy.ingest_rate_per_s))
            with self._lock:
                bucket = self._buckets.get(principal.tenant)
                if bucket is None:
                    bucket = self._buckets[principal.tenant] = _Bucket(float(burst), now)
                bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.at) * policy.ingest_rate_per_s)
                bucket.at = now
                needed = min(n, burst)  # a batch bigger than the burst passes on a full bucket, then owes
                if bucket.tokens < needed:
                    retry = max(1, math.ceil((needed - bucket.tokens) / policy.ingest_rate_per_s))
                    QUOTA_REJECTED.labels(principal.tenant, "rate").inc(n)
                    raise TooManyRequests(
                        f"ingest rate above {policy.ingest_rate_per_s}/s (burst {burst})",
                        retry_after_s=retry,
                        quota="rate",
                    )
                bucket.tokens -= n
        if policy.ingest_daily_bytes > 0 or policy.ingest_rate_per_s > 0:
            self.accounts.add_usage(principal.tenant, day, n, nbytes)


# -- the gate for endpoints that do not ask for a principal (metrics, OpenAPI) ------------------------


class CredentialGate:
    """Pure ASGI middleware: with auth on, gated paths need valid credentials before routing.

    Data endpoints check again through ``get_principal`` (the result is cached on the request).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        method: str = scope.get("method", "")
        app = scope.get("app")
        services = getattr(getattr(app, "state", None), "services", None)
        if services is None or services.extras.get("principal_resolver") is None:
            await self.app(scope, receive, send)
            return
        if path in PUBLIC_PATHS:
            if method == "POST" and not _small_body(scope):
                await _send_error(send, PayloadTooLarge(f"send at most {PUBLIC_BODY_MAX} bytes, with Content-Length"))
                return
            await self.app(scope, receive, send)
            return
        if method in ("GET", "HEAD") and not path.startswith(GATED_PREFIXES):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            principal = await asyncio.to_thread(resolve_request, request)
        except LogLoupeError as exc:
            await _send_error(send, exc)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


# Unauthenticated endpoints (login, register, refresh) take small JSON bodies only.
PUBLIC_BODY_MAX = 65536


def _small_body(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            return value.isdigit() and int(value) <= PUBLIC_BODY_MAX
    return False


async def _send_error(send: Send, exc: LogLoupeError) -> None:
    body = orjson.dumps(exc.body())
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if exc.status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="logloupe"'))
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


SECURITY_SCHEMES: dict[str, Any] = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "Access token from POST /api/v1/auth/login (HS256, short-lived).",
    },
    "apiKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An API key (also accepted as `Authorization: ApiKey <key>`).",
    },
    "basicAuth": {
        "type": "http",
        "scheme": "basic",
        "description": "For Elasticsearch-compatible clients: any user name, the API key as the password.",
    },
}


def configure_app(app: FastAPI) -> None:
    """Add the gate and describe the security schemes in the OpenAPI document."""
    app.add_middleware(CredentialGate)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        schema["security"] = [{"bearerAuth": []}, {"apiKeyHeader": []}, {"basicAuth": []}]
        for path in PUBLIC_PATHS:
            for op in schema.get("paths", {}).get(path, {}).values():
                if isinstance(op, dict):
                    op["security"] = []
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
