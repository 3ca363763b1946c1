"""Where pull sources deliver their batches: a running server over HTTP, or this process's writer.

A source reads, calls ``Sink.send`` and advances its checkpoint only after ``send`` returns
(the events are stored). Each batch carries an id in the attribute ``source_batch``;
``Sink.has_batch`` answers whether a batch whose acknowledgement was lost (a crash between
the store's 2xx and the checkpoint write) is already stored, so a restart neither repeats nor
skips it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import httpx
import orjson

from logloupe.errors import LogLoupeError

if TYPE_CHECKING:
    from logloupe.serve.services import Services

log = logging.getLogger(__name__)

BATCH_ATTRIBUTE = "source_batch"


class SinkError(LogLoupeError):
    """The sink did not acknowledge; ``retryable`` says whether waiting can help."""

    status = 503
    code = "sink_unavailable"

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass
class Batch:
    """Records in the ``/api/v1/logs`` JSON shape, with the batch id stamped into each."""

    id: str
    source: str
    records: list[dict[str, Any]] = field(default_factory=list)

    def stamped(self) -> list[dict[str, Any]]:
        out = []
        for rec in self.records:
            attrs = dict(rec.get("attributes") or {})
            attrs[BATCH_ATTRIBUTE] = self.id
            out.append({**rec, "source": rec.get("source") or self.source, "attributes": attrs})
        return out


class Sink(Protocol):
    def send(self, batch: Batch) -> int:
        """Store the batch; return the count stored. Raises SinkError when not acknowledged."""

    def has_batch(self, batch_id: str) -> bool:
        """Whether events of this batch are already stored (raises SinkError when unreachable)."""

    def close(self) -> None: ...


class HttpSink:
    """POST NDJSON to ``{url}/api/v1/logs``; a 2xx means stored (the server acks after the store)."""

    def __init__(self, url: str, api_key: str | None = None, *, client: httpx.Client | None = None) -> None:
        headers = {"authorization": f"ApiKey {api_key}"} if api_key else {}
        self.url = url.rstrip("/")
        self._own = client is None
        self.client = client or httpx.Client(base_url=self.url, timeout=120, headers=headers)
        if client is not None and api_key:
            self.client.headers["authorization"] = f"ApiKey {api_key}"

    def send(self, batch: Batch) -> int:
        body = b"\n".join(orjson.dumps(r) for r in batch.stamped())
        try:
            resp = self.client.post("/api/v1/logs", content=body, headers={"content-type": "application/x-ndjson"})
        except httpx.HTTPError as exc:
            raise SinkError(f"server unreachable: {exc}") from None
        if 200 <= resp.status_code < 300:
            return int(resp.json().get("accepted", 0))
        retryable = resp.status_code in (408, 425, 429) or resp.status_code >= 500
        raise SinkError(f"server answered {resp.status_code}: {resp.text[:300]}", retryable=retryable)

    def report_status(self, name: str, status: dict[str, Any]) -> bool:
        """Tell the server this source's status, lag and position (its Sources page and /metrics).
        Best effort: a failure is logged, never raised — the logs matter, the report does not."""
        try:
            resp = self.client.put(f"/api/v1/sources/{name}/status", json=status, timeout=10)
        except httpx.HTTPError as exc:
            log.debug("status report failed: %s", exc)
            return False
        if resp.status_code != 200:
            log.debug("status report refused: HTTP %s %s", resp.status_code, resp.text[:200])
        return resp.status_code == 200

    def has_batch(self, batch_id: str) -> bool:
        try:
            resp = self.client.get("/api/v1/search", params={"q": f'attr.{BATCH_ATTRIBUTE}:"{batch_id}"', "limit": 0})
        except httpx.HTTPError as exc:
            raise SinkError(f"server unreachable: {exc}") from None
        if resp.status_code in (401, 403):
            # An ingest-only key may not search: send the batch again rather than stall forever.
            log.warning("cannot look up batch %s (HTTP %s): sending it again", batch_id, resp.status_code)
            return False
        if resp.status_code != 200:
            raise SinkError(f"server answered {resp.status_code}: {resp.text[:300]}")
        return int(resp.json()["total"]) > 0

    def close(self) -> None:
        if self._own:
            self.client.close()


class WriterSink:
    """In-process: parse, assemble and write through the running server's StoreWriter."""

    def __init__(self, services: Services, tenant: str | None = None) -> None:
        self.services = services
        self.tenant = tenant or services.settings.default_tenant

    def send(self, batch: Batch) -> int:
        from logloupe.parse.records import record_fields
        from logloupe.pipeline.assemble import assemble
        from logloupe.serve.api.logs import limits_of
        from logloupe.store.search import now_us

        limits = limits_of(self.services)
        records = batch.stamped()
        fields = [record_fields(r, limits) for r in records]
        # Per-source parsing settings (parse/sources.py); a tailed file's lines are read as text lines.
        from logloupe.parse.sources import DEFAULT_OPTIONS, apply_source

        rules = self.services.extras.get("source_rules")
        now = now_us()
        for record, f in zip(records, fields, strict=True):
            source = f.source or batch.source
            options = rules.options_for(self.tenant, source, f.service) if rules else DEFAULT_OPTIONS
            apply_source(record, f, options, now, source)
        events = assemble(fields, tenant=self.tenant, now_us=now_us(), source=batch.source, position=batch.id)
        try:
            self.services.writer.write(events)
        except LogLoupeError as exc:
            raise SinkError(exc.message) from None
        except Exception as exc:  # the store failed: keep the checkpoint, retry later
            raise SinkError(f"store write failed: {exc}") from None
        return len(events)

    def has_batch(self, batch_id: str) -> bool:
        from logloupe.store.search import Scope, now_us, search

        scope = Scope(tenant=self.tenant, q=f'attr.{BATCH_ATTRIBUTE}:"{batch_id}"', now_us=now_us())
        return search(self.services.store, scope, limit=0).total > 0

    def close(self) -> None:
        return None


def send_with_retry(
    sink: Sink,
    batch: Batch,
    *,
    stopping: Callable[[], bool] = lambda: False,
    on_error: Callable[[SinkError], None] = lambda exc: None,
    initial_s: float = 0.5,
    max_s: float = 30.0,
) -> int | None:
    """Send until acknowledged, waiting with exponential backoff: never skips a batch.

    Returns None only when ``stopping()`` turns true first (the checkpoint then stays put).
    A non-retryable answer (a 4xx other than 429) is retried too, at the longest delay: the
    events stay in the file and the error is visible in the source's status.
    """
    delay = initial_s
    while True:
        try:
            return sink.send(batch)
        except SinkError as exc:
            on_error(exc)
            log.warning("source %s: batch %s not acknowledged (%s); retrying", batch.source, batch.id, exc.message)
            wait = delay if exc.retryable else max_s
            if _sleep_unless(stopping, wait):
                return None
            delay = min(max_s, delay * 2)


def _sleep_unless(stopping: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if stopping():
            return True
        time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
    return stopping()
