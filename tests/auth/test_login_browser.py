"""The /login page in a real browser (Chromium through Playwright) against a real server."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from logloupe.serve.app import create_app
from tests.auth.conftest import PASSWORD, auth_settings
from tests.helpers import free_port, wait_http

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    settings = auth_settings(tmp_path_factory.mktemp("browser") / "data", port=port)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/healthz")
        body = {"username": "brenda", "email": "b@example.com", "password": PASSWORD, "tenant": "Browser Org"}
        assert httpx.post(f"{url}/api/v1/auth/register", json=body).status_code == 201
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def browser(base_url: str) -> Iterator[object]:
    try:
        with sync_api.sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM) if CHROMIUM else p.chromium.launch()
            yield b
            b.close()
    except sync_api.Error as exc:  # no browser on this machine
        pytest.skip(f"no Chromium: {exc}")


def test_login_stores_the_token_and_goes_to_next(browser: object, base_url: str) -> None:
    page = browser.new_page()  # type: ignore[attr-defined]
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{base_url}/login?next=/healthz")
    page.fill("#username", "brenda")
    page.fill("#password", PASSWORD)
    page.click("#submit")
    page.wait_for_url(f"{base_url}/healthz")
    token = page.evaluate('() => localStorage.getItem("logloupe.token")')
    assert token and token.count(".") == 2
    me = httpx.get(f"{base_url}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["user"] == "brenda" and me["role"] == "admin"
    assert not [e for e in errors if "Content Security Policy" in e]
    page.close()


def test_wrong_password_shows_the_error_and_stores_nothing(browser: object, base_url: str) -> None:
    page = browser.new_page()  # type: ignore[attr-defined]
    page.goto(f"{base_url}/login")
    page.fill("#username", "brenda")
    page.fill("#password", "not the password")
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])")
    assert "wrong username or password" in page.text_content("#error")
    assert page.evaluate('() => localStorage.getItem("logloupe.token")') is None
    page.close()


def test_next_cannot_leave_the_site(browser: object, base_url: str) -> None:
    page = browser.new_page()  # type: ignore[attr-defined]
    page.goto(f"{base_url}/login?next=//evil.example/x")
    page.fill("#username", "brenda")
    page.fill("#password", PASSWORD)
    page.click("#submit")
    page.wait_for_url(lambda url: url.startswith(base_url + "/") and "/login" not in url)
    assert page.url.startswith(base_url)
    page.close()
