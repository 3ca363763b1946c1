"""What every pull source shares: a status the API and metrics read, and running it in a thread.

A source is anything with ``id``, ``kind``, ``step() -> bool`` (one unit of work; true when it
delivered something), ``status`` and ``close()``. ``SourceRunner`` calls ``step`` until stopped,
sleeping ``idle_s`` when a step found nothing, and records failures without dying.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from logloupe.metrics import SOURCE_ERRORS

log = logging.getLogger(__name__)


@dataclass
class SourceStatus:
    id: str
    kind: str
    state: str = "starting"  # starting, running, retrying, stopped, failed
    last_read_at: float | None = None
    last_ack_at: float | None = None
    events_total: int = 0
    batches_total: int = 0
    errors_total: int = 0
    last_error: str = ""
    last_error_at: float | None = None
    lag: dict[str, Any] = field(default_factory=dict)
    position: dict[str, Any] = field(default_factory=dict)

    def error(self, kind: str, message: str) -> None:
        self.errors_total += 1
        self.last_error = message[:500]
        self.last_error_at = time.time()
        SOURCE_ERRORS.labels(self.id, kind).inc()

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.state,
            "last_read_at": self.last_read_at,
            "last_ack_at": self.last_ack_at,
            "events_total": self.events_total,
            "batches_total": self.batches_total,
            "errors_total": self.errors_total,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "lag": self.lag,
            "position": self.position,
        }


class Source(Protocol):
    id: str
    kind: str
    status: SourceStatus
    idle_s: float
    stopping: threading.Event

    def step(self) -> bool: ...

    def close(self) -> None: ...


class SourceRunner:
    """One daemon thread per source; ``stop`` ends it after the current step."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.stopping = source.stopping
        self._thread = threading.Thread(target=self._run, name=f"source-{source.id}", daemon=True)

    def start(self) -> SourceRunner:
        self._thread.start()
        return self

    def _run(self) -> None:
        src = self.source
        delay = 1.0
        while not self.stopping.is_set():
            try:
                busy = src.step()
                delay = 1.0
            except Exception as exc:  # a source must keep trying, and say why it could not
                log.exception("source %s failed a step", src.id)
                src.status.error("step", f"{type(exc).__name__}: {exc}")
                src.status.state = "retrying"
                self.stopping.wait(delay)
                delay = min(60.0, delay * 2)
                continue
            if not busy:
                self.stopping.wait(src.idle_s)
        src.status.state = "stopped"

    def stop(self, timeout_s: float = 30.0) -> None:
        self.stopping.set()
        self._thread.join(timeout_s)
        self.source.close()
