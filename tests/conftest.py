"""Shared fixtures: a real event store on a temp dir, and the real app served in-process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from logloupe.serve.app import create_app
from logloupe.settings import Settings
from logloupe.store.events import EventStore

# Every app and server the tests start (in-process or as a subprocess, which inherits this) answers
# ingest once the events are searchable, and decodes in a thread rather than spawning processes.
# Tests of the buffer's other modes pass their own settings explicitly.
os.environ.setdefault("LOGLOUPE_INGEST_WAIT_STORED", "true")
os.environ.setdefault("LOGLOUPE_PIPELINE_DECODE_PROCESSES", "0")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Acknowledge ingest once searchable, so tests can search right after the response.
    # Decode in a thread: no decoder processes to spawn for each short-lived app.
    return Settings(data_dir=tmp_path / "data", writer_flush_ms=5, ingest_wait_stored=True, pipeline_decode_processes=0)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    s = EventStore(tmp_path / "store")
    yield s
    s.close()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c
