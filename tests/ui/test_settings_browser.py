"""Settings and the user menu in Debian's Chromium against a real server with authentication on.

An admin signs in through /login, manages members (role change, removal), invitations, API keys
(the secret shown once, then working, then revoked), retention, quotas and the LLM policy; names
and addresses carry script payloads that must stay text. A viewer sees the same page read-only.
Log out revokes the token and returns to /login.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn

from logloupe.serve.app import create_app
from tests.auth.conftest import PASSWORD, auth_settings
from tests.helpers import free_port, wait_http
from tests.ui.conftest import Page, shot

ORG = '<img src=x onerror="window.__xss=1"> Acme'
EMAIL = "<svg/onload=window.__xss=1>@example.com"
KEY_NAME = "<script>window.__xss=1</script> shipper"


@dataclass
class AuthServer:
    url: str

    def register(self, username: str, tenant: str, email: str = "") -> dict[str, Any]:
        body = {
            "username": username,
            "email": email or f"{username}@example.com",
            "password": PASSWORD,
            "tenant": tenant,
        }
        r = httpx.post(f"{self.url}/api/v1/auth/register", json=body)
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    def token(self, username: str) -> str:
        r = httpx.post(f"{self.url}/api/v1/auth/login", json={"username": username, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])

    def get(self, path: str, token: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", headers={"Authorization": f"Bearer {token}"})

    def invite(self, token: str, role: str) -> str:
        r = httpx.post(
            f"{self.url}/api/v1/tenant/invitations", json={"role": role}, headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 201, r.text
        return str(r.json()["token"])


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    port = free_port()
    settings = auth_settings(tmp_path_factory.mktemp("settings-ui") / "data", port=port)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/healthz")
        srv = AuthServer(url)
        srv.register("ada", ORG)
        admin = srv.token("ada")
        srv.register("bob", srv.invite(admin, "viewer"), email=EMAIL)
        srv.register("vic", srv.invite(admin, "viewer"))
        yield srv
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _sign_in(pg: Any, srv: AuthServer, username: str) -> None:
    pg.goto(f"{srv.url}/login?next=/app/settings")
    pg.fill("#username", username)
    pg.fill("#password", PASSWORD)
    pg.click("#submit")
    pg.wait_for_url(f"{srv.url}/app/settings")
    pg.wait_for_selector('.page.settings[data-ready="1"]')


def _no_script_ran(pg: Any) -> None:
    assert pg.evaluate("window.__xss") is None
    assert pg.evaluate("document.querySelectorAll('#shell script, #shell img[src=x], #shell svg[onload]').length") == 0


def _member(pg: Any, username: str) -> Any:
    return pg.locator(f'[data-testid="members"] tr[data-user="{username}"]')


def test_admin_manages_the_tenant_and_logs_out(auth_server: AuthServer, page: Page) -> None:
    srv, pg = auth_server, page.page
    _sign_in(pg, srv, "ada")
    admin = pg.evaluate('localStorage.getItem("logloupe.token")')
    tenant = srv.get("/api/v1/tenant", admin).json()

    # The user menu: who, which organisation (its name is a payload: shown as text), role.
    menu = pg.get_by_test_id("user-menu")
    assert "ada" in menu.inner_text() and "admin" in menu.inner_text()
    menu.click()
    assert pg.get_by_test_id("um-user").inner_text() == "ada"
    assert (
        ORG in pg.get_by_test_id("um-tenant").inner_text()
        and tenant["id"] in pg.get_by_test_id("um-tenant").inner_text()
    )
    assert pg.get_by_test_id("um-role").inner_text() == "admin"
    pg.keyboard.press("Escape")
    assert ORG in pg.get_by_test_id("org-facts").inner_text()

    # Members: all three, the payload address as text; bob becomes an editor; vic is removed.
    _member(pg, "bob").wait_for()
    assert _member(pg, "ada").get_by_text("you").count() == 1
    assert EMAIL in _member(pg, "bob").inner_text()
    assert pg.locator('[data-testid="members"] tr[data-user]').count() == 3
    options = _member(pg, "bob").get_by_test_id("member-role").locator("option").all_inner_texts()
    assert options == tenant["options"]["roles"]
    _member(pg, "bob").get_by_test_id("member-role").select_option("editor")
    pg.locator(".toast").filter(has_text="bob is now editor").wait_for()
    roles = {m["username"]: m["role"] for m in srv.get("/api/v1/tenant/members", admin).json()["items"]}
    assert roles == {"ada": "admin", "bob": "editor", "vic": "viewer"}
    remove = _member(pg, "vic").locator('[data-act="remove"]')
    remove.click()
    assert remove.inner_text() == "Confirm remove"  # asks once more, without a browser dialog
    remove.click()
    _member(pg, "vic").wait_for(state="detached")
    assert "vic" not in {m["username"] for m in srv.get("/api/v1/tenant/members", admin).json()["items"]}

    # Invitations: the token shown once works for registering.
    form = pg.get_by_test_id("invite-form")
    form.locator("select").select_option("editor")
    form.get_by_role("button", name="Create invitation").click()
    invite = pg.get_by_test_id("secret-value").inner_text()
    assert invite.startswith("inv_")
    open_rows = pg.locator('[data-testid="invitations"] tr[data-invitation]')
    open_rows.first.wait_for()
    assert open_rows.count() == 1 and "editor" in open_rows.first.inner_text()
    assert invite not in pg.get_by_test_id("invitations").inner_text()  # the list never shows the token
    assert srv.register("cat", invite)["role"] == "editor"
    pg.reload()
    pg.wait_for_selector('.page.settings[data-ready="1"]')
    assert _member(pg, "cat").count() == 1 and open_rows.count() == 0  # used: no longer open
    assert pg.get_by_test_id("secret").count() == 0  # shown once: gone after a reload

    # API keys: created with a payload name, the secret ingests, revoking stops it.
    keys = pg.get_by_test_id("key-form")
    keys.get_by_label("Key name").fill(KEY_NAME)
    keys.get_by_role("button", name="Create key").click()
    pg.get_by_test_id("secret").filter(has_text="API key").wait_for()
    secret = pg.get_by_test_id("secret").filter(has_text="API key").get_by_test_id("secret-value").inner_text()
    row = pg.locator('[data-testid="keys"] tr[data-key]').filter(has_text=KEY_NAME)
    row.wait_for()
    ok = httpx.post(f"{srv.url}/api/v1/logs", json={"message": "via key"}, headers={"X-API-Key": secret})
    assert ok.status_code == 200, ok.text
    shot(pg, "settings")
    _no_script_ran(pg)
    row.locator('[data-act="revoke"]').click()
    row.locator('[data-act="revoke"]').click()
    pg.locator('[data-testid="keys"] tr.revoked').filter(has_text=KEY_NAME).wait_for()
    assert httpx.post(f"{srv.url}/api/v1/logs", json={"message": "x"}, headers={"X-API-Key": secret}).status_code == 401

    # Retention, quotas and the LLM policy; the masking modes are the ones the API accepts.
    pg.get_by_label("Retention days").fill("45")
    pg.get_by_test_id("retention-form").get_by_role("button", name="Save").click()
    pg.locator(".toast").filter(has_text="Retention: 45 days").wait_for()
    pg.wait_for_selector('.page.settings[data-ready="1"]')
    quotas = pg.get_by_test_id("quota-form")
    quotas.locator('[data-quota="rate_per_s"]').fill("500")
    quotas.locator('[data-quota="burst"]').fill("1000")
    quotas.locator('[data-quota="daily_bytes"]').fill("1048576")
    quotas.get_by_role("button", name="Save quotas").click()
    pg.locator(".toast").filter(has_text="Quotas saved").wait_for()
    pg.wait_for_selector('.page.settings[data-ready="1"]')
    modes = tenant["options"]["masking_modes"]
    assert pg.get_by_test_id("masking-mode").locator("option").all_inner_texts() == modes
    llm = pg.get_by_test_id("llm-form")
    llm.get_by_label("Allow anthropic").check()
    pg.get_by_test_id("masking-mode").select_option(modes[-1])
    llm.get_by_role("button", name="Save LLM policy").click()
    pg.locator(".toast").filter(has_text="LLM policy saved").wait_for()
    now = srv.get("/api/v1/tenant", admin).json()
    assert now["retention_days"] == 45
    assert now["quotas"] == {"rate_per_s": 500.0, "burst": 1000, "daily_bytes": 1048576}
    assert now["llm"] == {"allowed_providers": ["anthropic"], "masking_mode": modes[-1]}
    _no_script_ran(pg)
    assert not page.errors, page.errors

    # Log out: the session is revoked on the server, the token forgotten, back to /login.
    pg.get_by_test_id("user-menu").click()
    pg.get_by_test_id("logout").click()
    pg.wait_for_url(f"{srv.url}/login")
    assert pg.evaluate('localStorage.getItem("logloupe.token")') is None
    assert pg.evaluate('localStorage.getItem("logloupe.refresh")') is None
    assert srv.get("/api/v1/tenant", admin).status_code == 401


def test_a_viewer_sees_the_settings_read_only(auth_server: AuthServer, page: Page) -> None:
    srv, pg = auth_server, page.page
    admin = srv.token("ada")
    srv.register("val", srv.invite(admin, "viewer"))
    _sign_in(pg, srv, "val")
    assert "viewer" in pg.get_by_test_id("user-menu").inner_text()
    assert "only an admin can change" in pg.get_by_test_id("not-admin").inner_text()
    assert pg.get_by_test_id("members").count() == 0 and pg.get_by_test_id("keys").count() == 0
    assert pg.get_by_label("Retention days").is_disabled()
    assert pg.get_by_test_id("masking-mode").is_disabled()
    assert pg.get_by_role("button", name="Save quotas").count() == 0
    assert pg.get_by_role("button", name="Save LLM policy").count() == 0
    shot(pg, "settings-viewer")
    _no_script_ran(pg)
    assert not page.errors, page.errors
