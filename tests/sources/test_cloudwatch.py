"""CloudWatch Logs poller against moto in server mode (the local stand-in for AWS), delivering into a
real store through the in-process sink. Restarts between pages, between runs, and after a crash
between the acknowledgement and the checkpoint write: every event stored exactly once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from logloupe.ingest.checkpoints import FileCheckpoints
from logloupe.ingest.cloudwatch import CloudWatchConfig, CloudWatchPoller
from logloupe.ingest.sinks import WriterSink
from logloupe.serve.services import Services
from logloupe.settings import Settings
from logloupe.store.search import Scope, now_us, search
from tests.helpers import free_port
from tests.sources.conftest import Snapshots, assert_exact

GROUP = "/app/payments"


@pytest.fixture
def moto_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    # Credentials through the usual AWS chain: the environment.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    svc = Services.open(Settings(data_dir=tmp_path / "data", writer_flush_ms=5))
    try:
        yield svc
    finally:
        svc.close()


def stored(services: Services) -> list[str]:
    scope = Scope(tenant="default", q=f'service:"{GROUP}"', now_us=now_us())
    return [e.message for e in search(services.store, scope, limit=10000, sort="asc").events]


def put(client: Any, stream: str, messages: list[str], ts: int) -> None:
    client.put_log_events(
        logGroupName=GROUP,
        logStreamName=stream,
        logEvents=[{"timestamp": ts, "message": m} for m in messages],
    )


def test_cloudwatch_exactly_once_across_restarts(moto_url: str, services: Services, tmp_path: Path) -> None:
    client = boto3.client("logs", endpoint_url=moto_url)
    client.create_log_group(logGroupName=GROUP)
    for stream in ("web-1", "web-2", "batch-1"):
        client.create_log_stream(logGroupName=GROUP, logStreamName=stream)
    base = int(time.time() * 1000) - 60_000
    written: list[str] = []
    # Many events sharing one timestamp, so a page boundary falls inside a millisecond.
    for stream in ("web-1", "web-2"):
        msgs = [f"{stream} same-ms {i}" for i in range(7)]
        put(client, stream, msgs, base)
        written += msgs
        msgs = [f"{stream} later {i}" for i in range(5)]
        client.put_log_events(
            logGroupName=GROUP,
            logStreamName=stream,
            logEvents=[{"timestamp": base + 10 + i, "message": m} for i, m in enumerate(msgs)],
        )
        written += msgs
    put(client, "batch-1", ["batch-1 not matched by the prefix"], base)

    config = CloudWatchConfig(
        GROUP, stream_prefix="web", endpoint_url=moto_url, start_lookback_s=120, settle_s=0, page_limit=4
    )
    checkpoints = Snapshots(tmp_path / "cp.json")

    def poller() -> CloudWatchPoller:
        return CloudWatchPoller(config, WriterSink(services), FileCheckpoints(checkpoints.path))

    # A new poller for every page: restart between pages.
    p = CloudWatchPoller(config, WriterSink(services), checkpoints)
    p.step()
    for _ in range(10):
        p = poller()
        p.step()
    while p.step():
        pass
    assert_exact(stored(services), written)

    # Between runs: new events, and a crash after the store acknowledged a page but before the
    # checkpoint moved (the saved state still names the batch as pending).
    more = [f"web-1 second run {i}" for i in range(9)]
    time.sleep(0.01)
    put(client, "web-1", more, int(time.time() * 1000))
    written += more
    config.start_lookback_s = 0
    checkpoints = Snapshots(checkpoints.path)
    p = CloudWatchPoller(config, WriterSink(services), checkpoints)
    seen = len(checkpoints.history)
    while not p.status.events_total:
        assert p.step() or p.status.events_total
    crashed = next(s for s in reversed(checkpoints.history[seen:]) if s.get("pending"))
    checkpoints.save(p.id, crashed)
    p = poller()
    while p.step():
        pass
    assert_exact(stored(services), written)
    assert p.status.to_api()["position"]["floor_ms"] > base


def test_cloudwatch_api_errors_are_counted_and_retried(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    port = free_port()  # nothing listens: connection refused
    config = CloudWatchConfig(GROUP, endpoint_url=f"http://127.0.0.1:{port}", region="eu-west-1", max_attempts=1)
    p = CloudWatchPoller(config, WriterSink(services), FileCheckpoints(tmp_path / "cp.json"))
    p.cfg.settle_s = 0
    p.floor = int(time.time() * 1000) - 1000
    with pytest.raises(Exception, match=r"127\.0\.0\.1"):
        p.step()
    assert p.status.errors_total == 1 and "FilterLogEvents" in p.status.last_error
