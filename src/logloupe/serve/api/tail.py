"""Live tail: new events matching a query, streamed as server-sent events as they are stored.

A ``StoreWriter.after_store`` hook hands each stored batch to the ``TailHub``; the hub filters
it for every subscriber (tenant first, then the compiled query) in the writer's thread and
passes matches to the subscriber's event loop. A slow client loses events (counted and told),
never the writer's time or memory.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from logloupe.metrics import DROPPED
from logloupe.model import LogEvent
from logloupe.serve.deps import Principal, get_principal, get_services
from logloupe.serve.services import Services
from logloupe.store.evaluate import Predicate, compile_matcher
from logloupe.store.search import now_us

router = APIRouter(prefix="/api/v1", tags=["search"])

QUEUE_EVENTS = 5000  # per subscriber; beyond it events are dropped for that subscriber and counted
HEARTBEAT_S = 15.0


@dataclass(eq=False)
class Subscriber:
    tenant: str
    matches: Predicate
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[list[LogEvent]] = field(default_factory=lambda: asyncio.Queue(maxsize=1000))
    pending: int = 0
    dropped: int = 0


class TailHub:
    def __init__(self) -> None:
        self._subs: set[Subscriber] = set()
        self._lock = threading.Lock()
        self.closed = False

    def add(self, sub: Subscriber) -> None:
        with self._lock:
            self._subs.add(sub)

    def remove(self, sub: Subscriber) -> None:
        with self._lock:
            self._subs.discard(sub)

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def publish(self, events: Sequence[LogEvent]) -> None:
        """The after-store hook: runs in the writer thread, so it only filters and hands over."""
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            found = [e for e in events if e.tenant == sub.tenant and sub.matches(e)]
            if not found:
                continue
            room = QUEUE_EVENTS - sub.pending
            if room <= 0:
                sub.dropped += len(found)
                DROPPED.labels(source="tail", reason="slow_client").inc(len(found))
                continue
            if len(found) > room:
                sub.dropped += len(found) - room
                DROPPED.labels(source="tail", reason="slow_client").inc(len(found) - room)
                found = found[-room:]
            sub.pending += len(found)
            try:
                sub.loop.call_soon_threadsafe(sub.queue.put_nowait, found)
            except RuntimeError:  # the client's loop is gone
                self.remove(sub)


def setup(services: Services) -> None:
    hub = TailHub()
    services.extras["tail_hub"] = hub
    services.writer.after_store.append(hub.publish)
    _close_streams_on_exit(hub)


def _close_streams_on_exit(hub: TailHub) -> None:
    """End open streams when the server is asked to stop: the server waits for open responses
    before it shuts the app down, and a tail response never completes on its own."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def chained(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
            hub.closed = True
            previous(signum, frame)

        signal.signal(sig, chained)


def teardown(services: Services) -> None:
    hub: TailHub | None = services.extras.pop("tail_hub", None)
    if hub is not None:
        hub.closed = True
        if hub.publish in services.writer.after_store:
            services.writer.after_store.remove(hub.publish)


def _frame(event: str, data: Any, event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"


@router.get(
    "/tail",
    summary="Live tail: server-sent events of new events matching q",
    response_class=StreamingResponse,
)
async def tail(
    request: Request,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
    q: str = "",
) -> StreamingResponse:
    # Compiled before the stream starts, so a bad query is a 400 with its position.
    matches = compile_matcher(
        q,
        now_us=now_us(),
        regex_max=services.settings.regex_max_length,
        pattern_groups=services.meta.pattern_groups(principal.tenant),
    )
    hub: TailHub = services.extras["tail_hub"]
    sub = Subscriber(principal.tenant, matches, asyncio.get_running_loop())
    hub.add(sub)
    counter = itertools.count(1)

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield _frame("hello", {"q": q, "tenant": principal.tenant})
            last_beat = time.monotonic()
            reported_drops = 0
            while not hub.closed:
                try:
                    batch = await asyncio.wait_for(sub.queue.get(), timeout=1.0)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    if time.monotonic() - last_beat > HEARTBEAT_S:
                        last_beat = time.monotonic()
                        yield b": keep-alive\n\n"
                    continue
                sub.pending -= len(batch)
                yield _frame("events", [e.to_api() for e in batch], str(next(counter)))
                if sub.dropped != reported_drops:
                    reported_drops = sub.dropped
                    yield _frame("dropped", {"dropped": sub.dropped})
        finally:
            hub.remove(sub)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
