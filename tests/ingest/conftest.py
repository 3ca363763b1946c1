"""A real ``logloupe serve`` process with syslog listeners, shared by the real-client tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import free_port, wait_http

LOGLOUPE = [sys.executable, "-m", "logloupe.cli"]
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def free_udp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    data: Path
    udp_port: int
    tcp_port: int
    proc: subprocess.Popen[bytes]

    def search(self, q: str, expect: int, timeout_s: float = 30.0, limit: int = 1000) -> list[dict[str, Any]]:
        """Poll until ``q`` matches at least ``expect`` events; return them."""
        deadline = time.monotonic() + timeout_s
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            r = httpx.get(f"{self.url}/api/v1/search", params={"q": q, "limit": limit, "fields": "all"}, timeout=10)
            assert r.status_code == 200, r.text
            body = r.json()
            if body["total"] >= expect:
                return list(body["events"])
            time.sleep(0.2)
        raise AssertionError(f"{q!r}: expected {expect} events, found {body.get('total')}")


def start_server(data: Path, port: int, udp: int = 0, tcp: int = 0, **env: str) -> subprocess.Popen[bytes]:
    environ = {**os.environ, "LOGLOUPE_WRITER_FLUSH_MS": "20", **env}
    environ.pop("LOGLOUPE_CONFIG", None)
    # The syslog ports as `serve` flags, as a user would turn the listeners on.
    syslog = ["--syslog-udp-port", str(udp), "--syslog-tcp-port", str(tcp)]
    return subprocess.Popen(
        [*LOGLOUPE, "serve", "--port", str(port), "--data-dir", str(data), *syslog],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=environ,
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("served")
    port, udp, tcp = free_port(), free_udp_port(), free_port()
    proc = start_server(data, port, udp, tcp)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/healthz")
        yield Server(url, data, udp, tcp, proc)
    finally:
        stop(proc)
