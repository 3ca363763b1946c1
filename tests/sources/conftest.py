"""A real ``logloupe serve`` and real ``logloupe tail`` processes, and reading back what was stored."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from logloupe.ingest.checkpoints import FileCheckpoints
from tests.helpers import free_port, wait_http

LOGLOUPE = [sys.executable, "-m", "logloupe.cli"]
SRC = str(Path(__file__).resolve().parents[2] / "src")


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}


class Server:
    """``logloupe serve`` on a free port; stop and start it again on the same port and data."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data.parent / f"serve-{self.port}.log"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [*LOGLOUPE, "serve", "--port", str(self.port), "--data-dir", str(self.data)],
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            env=env(),
        )
        wait_http(f"{self.url}/healthz")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def messages(self, q: str) -> list[str]:
        """Every stored message matching ``q``, through the search API (cursor pages)."""
        out: list[str] = []
        cursor = None
        while True:
            params: dict[str, str | int] = {"q": q, "limit": 10000, "sort": "ts:asc"}
            if cursor:
                params["cursor"] = cursor
            body = httpx.get(f"{self.url}/api/v1/search", params=params, timeout=60).json()
            out.extend(e["message"] for e in body["events"])
            cursor = body.get("next_cursor")
            if not cursor or not body["events"]:
                return out

    def digests(self, q: str) -> list[bytes]:
        """Like ``messages`` but 8-byte digests, for files too big to hold twice in memory."""
        out: list[bytes] = []
        cursor = None
        while True:
            params: dict[str, str | int] = {"q": q, "limit": 10000, "sort": "ts:asc"}
            if cursor:
                params["cursor"] = cursor
            body = httpx.get(f"{self.url}/api/v1/search", params=params, timeout=120).json()
            out.extend(digest(e["message"]) for e in body["events"])
            cursor = body.get("next_cursor")
            if not cursor or not body["events"]:
                return out

    def total(self, q: str) -> int:
        return int(httpx.get(f"{self.url}/api/v1/search", params={"q": q, "limit": 0}, timeout=60).json()["total"])

    def wait_total(self, q: str, n: int, timeout_s: float = 60.0) -> int:
        deadline = time.monotonic() + timeout_s
        got = -1
        while time.monotonic() < deadline:
            got = self.total(q)
            if got >= n:
                return got
            time.sleep(0.2)
        return got


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("shared") / "served")
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path / "served")
    s.start()
    try:
        yield s
    finally:
        s.stop()


class Tailer:
    """``logloupe tail`` as a subprocess, so it can be stopped, restarted and killed -9."""

    def __init__(self, args: list[str], checkpoint: Path, log: Path) -> None:
        self.args = args
        self.checkpoint = checkpoint
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [*LOGLOUPE, "tail", *self.args, "--checkpoint-file", str(self.checkpoint), "--scan-interval", "0.2"],
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            env=env(),
        )

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def kill9(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=8).digest()


def assert_exact(stored: list[str] | list[bytes], written: list[str] | list[bytes]) -> None:
    """No duplicates, no gaps: the stored messages are the written ones, each once."""
    s, w = Counter(stored), Counter(written)
    dups = {m: c for m, c in s.items() if c > w.get(m, 0)}
    gaps = {m: c for m, c in w.items() if c > s.get(m, 0)}
    assert not dups and not gaps, (
        f"duplicates: {list(dups.items())[:5]} ({len(dups)}), gaps: {list(gaps.items())[:5]} ({len(gaps)})"
    )


class Snapshots(FileCheckpoints):
    """The real file checkpoints, also keeping every saved state (to replay a crash at any point)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.history: list[dict[str, Any]] = []

    def save(self, source_id: str, state: dict[str, Any]) -> None:
        self.history.append(dict(state))
        super().save(source_id, state)
