"""A real ``logloupe serve`` with realistic events (patterns included), and Debian's Chromium."""

from __future__ import annotations

import hashlib
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from logloupe.ingest.demo import CALM_S, DemoTraffic
from logloupe.parse.records import Limits, record_fields
from logloupe.pipeline.assemble import assemble
from logloupe.store.events import EventStore
from logloupe.store.search import now_us
from tests.helpers import free_port, wait_http

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LOGLOUPE = [sys.executable, "-m", "logloupe.cli"]
_VARIABLE = re.compile(r"0x[0-9a-f]+|[0-9a-f]{16,}|\d+(\.\d+)?|\b\d+\.\d+\.\d+\.\d+\b|ord_\d+|job-\d+")


def template_of(message: str) -> str:
    """A stand-in for the template miner: numbers and ids masked."""
    first = message.split("\n", 1)[0]
    return _VARIABLE.sub("<*>", first)


def pattern_of(service: str, message: str) -> int:
    digest = hashlib.blake2b(f"{service}\x1f{template_of(message)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") or 1


def demo_events(minutes: int, rate: float, end_us: int) -> list[Any]:
    # The story starts its calm half hour before the window, so incidents fall anywhere inside it.
    traffic = DemoTraffic(start_us=end_us - minutes * 60_000_000 - CALM_S * 1_000_000)
    records = list(traffic.events(end_us - minutes * 60_000_000, end_us, rate))
    fields = [record_fields(r, Limits()) for r in records]
    events = assemble(fields, tenant="default", now_us=end_us, source="demo", position="ui-test")
    for e in events:
        e.pattern_id = pattern_of(e.service, e.message)
    return events


def new_pattern_events(end_us: int) -> list[Any]:
    """A pattern never seen before, in the last ten minutes: the Patterns page marks it new."""
    records = [
        {
            "timestamp": end_us / 1e6 - 600 + i * 20,
            "service": "payments",
            "level": "ERROR",
            "message": f"fraud check unreachable: circuit open for order ord_{40000 + i}",
        }
        for i in range(25)
    ]
    events = assemble(
        [record_fields(r, Limits()) for r in records], tenant="default", now_us=end_us, source="demo", position="new"
    )
    for e in events:
        e.pattern_id = pattern_of(e.service, e.message)
    return events


@dataclass
class Served:
    url: str
    data: Path
    proc: subprocess.Popen[bytes]


def start_server(data: Path) -> Served:
    port = free_port()
    proc = subprocess.Popen(
        [*LOGLOUPE, "serve", "--port", str(port), "--data-dir", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/healthz")
    except Exception:
        proc.kill()
        raise
    return Served(url, data, proc)


def stop_server(served: Served) -> None:
    served.proc.send_signal(signal.SIGINT)
    try:
        served.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        served.proc.kill()
        served.proc.wait()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Two hours of demo traffic written straight into the store (with pattern ids), then served."""
    data = tmp_path_factory.mktemp("ui") / "data"
    store = EventStore(data)
    try:
        end = now_us() - 2_000_000
        store.insert(demo_events(120, 3.0, end - 30 * 60_000_000))
        store.insert(demo_events(30, 12.0, end))
        store.insert(new_pattern_events(end))
    finally:
        store.close()
    served = start_server(data)
    yield served
    stop_server(served)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (scripts/test.sh installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


@dataclass
class Page:
    page: Any
    errors: list[str]


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, device_scale_factor=1)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    yield Page(pg, errors)
    context.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
