"""Accounts over HTTP: register, login, refresh, logout, me. Installs the principal resolver when
auth is on (``setup``), and the credential gate and OpenAPI security schemes (``configure_app``)."""

from __future__ import annotations

import re
import time
import unicodedata
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from logloupe.errors import BadRequest, Forbidden, InvalidInput, TooManyRequests, Unauthorized
from logloupe.metrics import AUTH_FAILURES, LOGINS
from logloupe.serve import auth as core
from logloupe.serve.deps import Principal, get_principal, get_services
from logloupe.serve.services import Services
from logloupe.store.accounts import Accounts

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,63}$")
EMAIL_RE = re.compile(r"^[^@\s\x00-\x1f]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024


class RegisterBody(BaseModel):
    username: str = Field(max_length=200)
    email: str = Field(max_length=254)
    password: str = Field(max_length=MAX_PASSWORD)
    tenant: str = Field(
        max_length=200, description="Name of a new organisation (you become its admin), or an invitation token."
    )


class LoginBody(BaseModel):
    username: str | None = Field(default=None, max_length=254, description="Username or email.")
    email: str | None = Field(default=None, max_length=254)
    password: str = Field(max_length=MAX_PASSWORD)
    tenant: str | None = Field(default=None, max_length=200, description="Organisation id or name; default: first.")


class RefreshBody(BaseModel):
    refresh_token: str = Field(max_length=4096)


class LogoutBody(BaseModel):
    refresh_token: str | None = Field(default=None, max_length=4096)
    everywhere: bool = Field(default=False, description="Revoke every refresh token of this account.")


def _auth(services: Services) -> core.Auth:
    if not services.settings.auth_enabled:
        raise BadRequest("authentication is off: this server runs in single-user local mode")
    return core.auth_of(services)


def validate_account(username: str, email: str, password: str) -> None:
    if not USERNAME_RE.match(username):
        raise InvalidInput("username: 3 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    if not EMAIL_RE.match(email):
        raise InvalidInput("email: not a valid address")
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(f"password: {MIN_PASSWORD} to {MAX_PASSWORD} characters")


def validate_org_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= 200 or any(unicodedata.category(c).startswith("C") for c in name):
        raise InvalidInput("tenant: an organisation name of 1 to 200 printable characters")
    if name.lower().startswith("inv_"):
        raise InvalidInput("tenant: names starting with 'inv_' are invitation tokens")
    return name


def create_account(
    services: Services, username: str, email: str, password: str, tenant: str, *, role: str = "admin"
) -> dict[str, Any]:
    """One account joined to an organisation: a new one by name, or the one an invitation names."""
    auth = core.auth_of(services)
    validate_account(username, email, password)
    accounts = auth.accounts
    if accounts.find_user(username) or accounts.find_user(email):
        raise InvalidInput("that username or email is already registered")
    password_hash = auth.hash_password(password)
    invitation_id = None
    if tenant.startswith("inv_"):
        invitation_id, tenant_id, role = accounts.claim_invitation(tenant, email)
    else:
        name = validate_org_name(tenant)
        tenant_id = accounts.create_tenant(name, services.settings.retention_days)
    user = accounts.create_user(username, email, password_hash)
    accounts.add_member(tenant_id, user.id, role)
    if invitation_id:
        accounts.mark_invitation_user(invitation_id, user.id)
    t = services.meta.get_tenant(tenant_id)
    return {"user_id": user.id, "username": user.username, "tenant": t.id, "tenant_name": t.name, "role": role}


@router.post("/register", summary="Create an account: a new organisation (you are its admin) or join by invitation")
def register(body: RegisterBody, services: Annotated[Services, Depends(get_services)]) -> JSONResponse:
    _auth(services)
    if not body.tenant.startswith("inv_") and not services.settings.auth_allow_registration:
        raise Forbidden("registration of new organisations is closed; ask an admin for an invitation")
    created = create_account(services, body.username, body.email, body.password, body.tenant)
    return JSONResponse(created, status_code=201)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/login", summary="Username or email + password → access and refresh tokens")
def login(body: LoginBody, request: Request, services: Annotated[Services, Depends(get_services)]) -> dict[str, Any]:
    auth = _auth(services)
    accounts: Accounts = auth.accounts
    settings = services.settings
    identifier = (body.username or body.email or "").strip()
    if not identifier:
        raise InvalidInput("username or email is required")
    client = _client(request)
    now = time.time()
    by_client = accounts.recent_failures(client=client, since=now - settings.auth_login_window_s)
    if len(by_client) >= settings.auth_login_ip_failures:
        LOGINS.labels("rate_limited").inc()
        retry = int(by_client[0] + settings.auth_login_window_s - now) + 1
        raise TooManyRequests("too many failed logins from this address; try later", retry_after_s=max(retry, 1))
    user = accounts.find_user(identifier)
    # Lock the account, not the spelling: a username and its email share one counter.
    lock_key = f"user:{user.id}" if user else f"name:{identifier.lower()}"
    by_name = accounts.recent_failures(identifier=lock_key, since=now - settings.auth_lockout_s)
    if len(by_name) >= settings.auth_lockout_failures:
        LOGINS.labels("locked").inc()
        AUTH_FAILURES.labels("locked").inc()
        retry = int(by_name[-1] + settings.auth_lockout_s - now) + 1
        raise TooManyRequests("this account is locked after repeated failed logins; try later", retry_after_s=retry)
    ok = auth.verify_password(user.password_hash if user else None, body.password)
    if user is None or not ok or user.disabled:
        accounts.record_attempt(lock_key, client, False)
        LOGINS.labels("bad_credentials").inc()
        AUTH_FAILURES.labels("bad_password").inc()
        raise Unauthorized("wrong username or password")
    memberships = accounts.tenants_of(user.id)
    if body.tenant:
        wanted = body.tenant.lower()
        memberships = [m for m in memberships if m["tenant"] == body.tenant or m["name"].lower() == wanted]
    if not memberships:
        raise Forbidden("this account is not a member of that organisation")
    accounts.record_attempt(lock_key, client, True)
    if auth.hasher.check_needs_rehash(user.password_hash):
        accounts.set_password_hash(user.id, auth.hash_password(body.password))
    LOGINS.labels("ok").inc()
    chosen = memberships[0]
    pair = auth.issue(user.id, chosen["tenant"], chosen["role"])
    return {**pair.to_api(), "username": user.username, "tenants": accounts.tenants_of(user.id)}


@router.post("/refresh", summary="A refresh token → a new access and refresh token (the old one is revoked)")
def refresh(body: RefreshBody, services: Annotated[Services, Depends(get_services)]) -> dict[str, Any]:
    auth = _auth(services)
    claims = auth.decode(body.refresh_token, "refresh")
    state = auth.accounts.use_refresh(str(claims["jti"]), claims["sub"])
    if state == "revoked":
        # A revoked refresh token used again means it leaked: end every session of the account.
        auth.accounts.revoke_all_refresh(claims["sub"])
        AUTH_FAILURES.labels("refresh_reuse").inc()
        raise Unauthorized("the refresh token was already used or revoked; log in again")
    if state != "ok":
        AUTH_FAILURES.labels("token_invalid").inc()
        raise Unauthorized("unknown refresh token")
    role = auth.accounts.role_of(claims["tid"], claims["sub"])
    if role is None:
        raise Unauthorized("the account is no longer a member of this organisation")
    return auth.issue(claims["sub"], claims["tid"], role).to_api()


@router.post("/logout", summary="Revoke this access token (and a refresh token, or every session)")
def logout(
    request: Request,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
    body: LogoutBody | None = None,
) -> dict[str, Any]:
    auth = _auth(services)
    if principal.via != "bearer":
        raise BadRequest("log out with a bearer token; API keys are revoked with DELETE /api/v1/keys/{id}")
    token = request.headers.get("authorization", "").partition(" ")[2].strip()
    claims = auth.decode(token, "access")
    auth.accounts.revoke_access(str(claims["jti"]), float(claims["exp"]))
    body = body or LogoutBody()
    if body.everywhere:
        auth.accounts.revoke_all_refresh(claims["sub"])
    elif body.refresh_token:
        refresh_claims = auth.decode(body.refresh_token, "refresh")
        if refresh_claims["sub"] == claims["sub"]:
            auth.accounts.use_refresh(str(refresh_claims["jti"]), claims["sub"])
    return {"revoked": True}


class PasswordBody(BaseModel):
    current_password: str = Field(max_length=MAX_PASSWORD)
    new_password: str = Field(max_length=MAX_PASSWORD)


@router.post("/password", summary="Change your password; every session of the account ends")
def change_password(
    body: PasswordBody,
    request: Request,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
) -> dict[str, Any]:
    auth = _auth(services)
    if principal.via != "bearer":
        raise BadRequest("change a password with a bearer token")
    user = auth.accounts.find_user(principal.user)
    if user is None:
        raise Unauthorized("unknown account")
    lock_key = f"user:{user.id}"
    failures = auth.accounts.recent_failures(identifier=lock_key, since=time.time() - services.settings.auth_lockout_s)
    if len(failures) >= services.settings.auth_lockout_failures:
        raise TooManyRequests("this account is locked after repeated failed attempts; try later", retry_after_s=60)
    if not auth.verify_password(user.password_hash, body.current_password):
        auth.accounts.record_attempt(lock_key, _client(request), False)
        AUTH_FAILURES.labels("bad_password").inc()
        raise Forbidden("the current password is wrong")
    validate_account(user.username, user.email, body.new_password)
    auth.accounts.set_password_hash(user.id, auth.hash_password(body.new_password))
    auth.accounts.revoke_all_refresh(user.id)
    token = request.headers.get("authorization", "").partition(" ")[2].strip()
    claims = auth.decode(token, "access")
    auth.accounts.revoke_access(str(claims["jti"]), float(claims["exp"]))
    return {"changed": True}


@router.get("/me", summary="Who you are: tenant, role, and your organisations")
def me(
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "user": principal.user,
        "tenant": principal.tenant,
        "role": principal.role,
        "via": principal.via,
        "auth_enabled": services.settings.auth_enabled,
    }
    if principal.via == "bearer":
        auth = core.auth_of(services)
        user = auth.accounts.find_user(principal.user)
        out["tenants"] = auth.accounts.tenants_of(user.id) if user else []
    return out


def setup(services: Services) -> None:
    services.extras["quota_checker"] = core.QuotaChecker(Accounts(services.meta))
    if services.settings.auth_enabled:
        services.extras["auth"] = core.Auth.open(services)
        services.extras["principal_resolver"] = core.resolve_request


def teardown(services: Services) -> None:
    for name in ("principal_resolver", "auth", "quota_checker"):
        services.extras.pop(name, None)


def configure_app(app: FastAPI) -> None:
    core.configure_app(app)
