"""A real ``logloupe serve --auth`` process on a free port, a real HTTP client, and the first admin
made with ``logloupe users create-admin``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import httpx
import pytest
from click.testing import CliRunner

from logloupe.cli.main import main
from tests.helpers import free_port, wait_http

ENV_FAST = {"LOGLOUPE_AUTH_ARGON2_TIME_COST": "1", "LOGLOUPE_AUTH_ARGON2_MEMORY_KIB": "1024"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    data = tmp_path / "data"
    env = {**os.environ, **ENV_FAST, "LOGLOUPE_WRITER_FLUSH_MS": "5"}
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    result = subprocess.run(
        [sys.executable, "-m", "logloupe.cli", "users", "create-admin", "--username", "root",
         "--email", "root@example.com", "--tenant", "Ops", "--data-dir", str(data)],
        env={**env, "LOGLOUPE_ADMIN_PASSWORD": "first admin pw"},
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "created admin root" in result.stdout
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "logloupe.cli", "serve", "--auth", "--port", str(port), "--data-dir", str(data)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/healthz")
        yield url, data
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def test_real_server_first_admin_login_ingest_search(server: tuple[str, Path]) -> None:
    url, data = server
    with httpx.Client(base_url=url, timeout=30) as c:
        assert c.get("/api/v1/search").status_code == 401
        assert c.get("/metrics").status_code == 401
        tokens = c.post("/api/v1/auth/login", json={"username": "root", "password": "first admin pw"}).json()
        h = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert tokens["role"] == "admin"
        r = c.post("/api/v1/logs", json=[{"message": "over real http"}], headers=h)
        assert r.status_code == 200 and r.json()["accepted"] == 1
        found = c.get("/api/v1/search", params={"q": "real"}, headers=h).json()
        assert found["total"] == 1
        assert c.get("/metrics", headers=h).status_code == 200
        key = c.post("/api/v1/keys", json={"name": "es"}, headers=h).json()["key"]
        basic = httpx.BasicAuth("elastic", key)
        assert c.post("/api/v1/logs", json={"message": "basic"}, auth=basic).status_code == 200
        reader = c.post("/api/v1/keys", json={"name": "cli", "role": "viewer"}, headers=h).json()["key"]
    assert (data / "jwt.secret").stat().st_mode & 0o077 == 0

    # The CLI as a client of the real server: refused without credentials, fine with a key.
    log = data.parent / "app.log"
    log.write_text("ERROR cli line one\nINFO cli line two\n")
    runner = CliRunner()
    refused = runner.invoke(main, ["ingest", str(log), "--server", url])
    assert refused.exit_code == 2 and "LOGLOUPE_API_KEY" in refused.output
    done = runner.invoke(main, ["ingest", str(log), "--server", url], env={"LOGLOUPE_API_KEY": key})
    assert done.exit_code == 0 and "ingested 2 events" in done.output
    found = runner.invoke(main, ["search", "cli", "--json", "--server", url], env={"LOGLOUPE_API_KEY": reader})
    assert found.exit_code == 0 and '"total":2' in found.output


def test_create_admin_rejects_bad_input(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["users", "create-admin", "--username", "x' OR 1=1", "--email", "a@example.com", "--password", "longenough",
         "--data-dir", str(tmp_path / "d")],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "username" in result.output


def test_create_admin_in_default_tenant(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["users", "create-admin", "--username", "admin", "--email", "a@example.com", "--data-dir", str(tmp_path / "d")],
        input="a strong password\na strong password\n",
        env=ENV_FAST,
    )
    assert result.exit_code == 0, result.output
    assert "of tenant default" in result.output


def test_auth_allows_binding_other_interfaces() -> None:
    from logloupe.cli.store_commands import _check_bind
    from logloupe.settings import Settings

    _check_bind(Settings(host="0.0.0.0", auth_enabled=True))  # no error
    with pytest.raises(click.UsageError):
        _check_bind(Settings(host="0.0.0.0", auth_enabled=False))


def test_set_password_and_list(tmp_path: Path) -> None:
    runner = CliRunner()
    d = str(tmp_path / "d")
    made = runner.invoke(
        main,
        ["users", "create-admin", "--username", "ops", "--email", "ops@example.com", "--tenant", "Ops",
         "--password", "first password", "--data-dir", d],
        env=ENV_FAST,
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    reset = runner.invoke(
        main, ["users", "set-password", "--username", "ops@example.com", "--password", "second password", "--data-dir", d],
        env=ENV_FAST,
    )  # fmt: skip
    assert reset.exit_code == 0 and "password set for ops" in reset.output
    missing = runner.invoke(
        main, ["users", "set-password", "--username", "ghost", "--password", "x" * 10, "--data-dir", d]
    )
    assert missing.exit_code == 2 and "no account" in missing.output
    listed = runner.invoke(main, ["users", "list", "--data-dir", d])
    assert listed.exit_code == 0
    assert "ops\tops@example.com\tOps (t" in listed.output and ": admin" in listed.output
