"""Server side, optional (``llm_classify_new_patterns``): an LLM labels the new patterns ingest finds.

The enricher reports each new pattern (``Enricher.listeners``); ``PatternLabeller.on_new_pattern``
only queues it (bounded; a full queue drops and counts, ingest never waits). A background thread
takes the queue in batches per tenant and, within that tenant's LLM policy
(``analyse/llm_policy.py``: the provider must be allowed, text is masked by its masking mode; with
auth off, the settings), sends the redacted templates through ``llm_classify.llm_labels``, the same
rails as ``analyze --llm-classify``. A label replaces the offline one only when the LLM is more
confident; it is kept in the ``pattern_labels`` table and handed to ``on_label`` (the enricher's
``set_pattern_label``), so the pattern's later events are classified with it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import sqlalchemy as sa

from logloupe.analyse.classify import Classifier
from logloupe.analyse.insights import PatternStats
from logloupe.analyse.llm import PROVIDERS, Provider, provider_from_settings
from logloupe.analyse.llm_classify import llm_labels
from logloupe.analyse.llm_policy import policy_for
from logloupe.metrics import LLM_PATTERN_LABELS
from logloupe.model import LogEvent, format_pattern_id
from logloupe.parse.patterns import PatternMatch
from logloupe.settings import Settings
from logloupe.store.meta import MetaStore, pattern_labels, signed_pattern_id, unsigned_pattern_id

if TYPE_CHECKING:
    from logloupe.store.accounts import Accounts

log = logging.getLogger(__name__)

ProviderFactory = Callable[[str], Provider]
MAX_QUEUE = 10_000
BATCH = 40  # patterns per LLM request (the budget may cut a batch shorter)
# At most this many LLM requests per hour, all tenants together: a burst of new shapes (a first
# upload, a new release) must not turn into hundreds of paid requests. Patterns past it are counted.
MAX_REQUESTS_PER_HOUR = 60


@dataclass(frozen=True, slots=True)
class NewPattern:
    tenant: str
    pattern_id: int
    template: str
    level: str  # the first event's level name
    label: str  # the offline classifier's label and confidence
    confidence: float


class PatternLabeller:
    """Queue of new patterns → LLM labels per tenant, in a background thread."""

    def __init__(
        self,
        settings: Settings,
        meta: MetaStore,
        *,
        accounts: Callable[[], Accounts | None] = lambda: None,
        classifier_for: Callable[[str], Classifier] | None = None,
        provider_factory: ProviderFactory | None = None,
        client: httpx.Client | None = None,
        max_queue: int = MAX_QUEUE,
        wait_s: float = 1.0,
        max_requests_per_hour: int = MAX_REQUESTS_PER_HOUR,
        on_label: Callable[[str, int, str], None] = lambda tenant, pattern_id, label: None,
    ) -> None:
        self.settings = settings
        self.meta = meta
        self.accounts = accounts  # gives Accounts when auth is on: the tenants' stored LLM policies apply
        self.classifier_for = classifier_for or (lambda tenant: Classifier.default())
        self._client = client
        self._own_client: httpx.Client | None = None
        self.provider_factory = provider_factory or self._provider
        self.queue: queue.Queue[NewPattern] = queue.Queue(maxsize=max_queue)
        self.wait_s = wait_s
        self.dropped = 0  # new patterns not queued because the queue was full
        self.labelled = 0  # patterns whose label the LLM changed
        self.skipped = 0  # patterns not sent: the tenant's policy allows no LLM provider
        self.over_rate = 0  # patterns not sent: the hourly request cap was reached
        self.max_requests_per_hour = max_requests_per_hour
        self._requests: list[float] = []  # times of the requests of the last hour
        self.on_label = on_label
        for (tenant, pattern_id), label in self._load().items():
            on_label(tenant, pattern_id, label)
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._thread: threading.Thread | None = None

    # -- fed by the enricher (ingest threads): never blocks ----------------------------------

    def on_new_pattern(self, event: LogEvent, match: PatternMatch) -> None:
        result = self.classifier_for(event.tenant).classify(event.message, event.level.name)
        level = event.level.name.lower()
        item = NewPattern(event.tenant, match.pattern_id, match.template, level, result.label, result.confidence)
        try:
            self._idle.clear()
            self.queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1
            LLM_PATTERN_LABELS.labels("queue_full").inc()

    # -- the worker --------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="llm-pattern-labeller", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        if self._own_client is not None:
            self._own_client.close()

    def wait_idle(self, timeout_s: float) -> bool:
        """True once everything queued so far was handled (tests, shutdown)."""
        return self._idle.wait(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                first = self.queue.get(timeout=self.wait_s)
            except queue.Empty:
                self._idle.set()
                continue
            batch = [first]
            while len(batch) < BATCH * 4:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self.run_batch(batch)
            except Exception:  # the worker must outlive a bad reply, a database hiccup
                log.exception("labelling new patterns failed")
            if self.queue.empty():
                self._idle.set()

    def run_batch(self, items: Sequence[NewPattern]) -> int:
        """Label ``items`` (any tenants); returns how many labels changed."""
        by_tenant: dict[str, list[NewPattern]] = {}
        for item in items:
            by_tenant.setdefault(item.tenant, []).append(item)
        changed = 0
        for tenant, todo in by_tenant.items():
            policy = policy_for(self.accounts(), self.settings, tenant, self.settings.llm_provider)
            if policy.provider == "offline" or policy.provider not in PROVIDERS:
                self.skipped += len(todo)
                LLM_PATTERN_LABELS.labels("not_allowed").inc(len(todo))
                continue
            provider = self.provider_factory(policy.provider)
            for k in range(0, len(todo), BATCH):
                chunk = todo[k : k + BATCH]
                if not self._may_request():
                    self.over_rate += len(chunk)
                    LLM_PATTERN_LABELS.labels("over_rate").inc(len(chunk))
                    continue
                stats = [
                    PatternStats(p.pattern_id, p.template, p.label, p.confidence, count=1, levels=Counter({p.level: 1}))
                    for p in chunk
                ]
                found = llm_labels(stats, provider, self.settings.llm_budget_tokens // 2, policy.redaction)
                for p in chunk:
                    got = found.get(format_pattern_id(p.pattern_id))
                    if got is None:  # the reply left it out: the offline label stays
                        LLM_PATTERN_LABELS.labels("kept").inc()
                        continue
                    label, confidence = got
                    if confidence > p.confidence and label != p.label:
                        self._store(p, label, confidence, provider)
                        changed += 1
                        LLM_PATTERN_LABELS.labels("relabelled").inc()
                    else:
                        LLM_PATTERN_LABELS.labels("kept").inc()
        self.labelled += changed
        return changed

    def _may_request(self) -> bool:
        now = time.monotonic()
        self._requests = [t for t in self._requests if now - t < 3600]
        if len(self._requests) >= self.max_requests_per_hour:
            return False
        self._requests.append(now)
        return True

    # -- storage -------------------------------------------------------------------------------

    def _store(self, p: NewPattern, label: str, confidence: float, provider: Provider) -> None:
        row = {
            "label": label,
            "confidence": confidence,
            "offline_label": p.label,
            "offline_confidence": p.confidence,
            "source": f"{provider.name}:{provider.model}",
            "labelled_at": time.time(),
        }
        key = (pattern_labels.c.tenant == p.tenant) & (pattern_labels.c.pattern_id == signed_pattern_id(p.pattern_id))
        with self.meta.engine.begin() as conn:
            if conn.execute(sa.select(pattern_labels.c.tenant).where(key)).first() is None:
                conn.execute(
                    pattern_labels.insert().values(tenant=p.tenant, pattern_id=signed_pattern_id(p.pattern_id), **row)
                )
            else:
                conn.execute(pattern_labels.update().where(key).values(**row))
        self.on_label(p.tenant, p.pattern_id, label)

    def _load(self) -> dict[tuple[str, int], str]:
        with self.meta.engine.connect() as conn:
            rows = conn.execute(sa.select(pattern_labels.c.tenant, pattern_labels.c.pattern_id, pattern_labels.c.label))
            return {(r.tenant, unsigned_pattern_id(r.pattern_id)): str(r.label) for r in rows}

    def _provider(self, name: str) -> Provider:
        s = self.settings
        if self._client is None:
            self._own_client = self._client = httpx.Client(timeout=s.llm_timeout_s)
        return provider_from_settings(name, self._client, s)


def labels_of(meta: MetaStore, tenant: str) -> list[dict[str, Any]]:
    """A tenant's LLM labels, newest first (for ``GET /api/v1/pattern-labels``)."""
    with meta.engine.connect() as conn:
        rows = conn.execute(
            sa.select(pattern_labels)
            .where(pattern_labels.c.tenant == tenant)
            .order_by(pattern_labels.c.labelled_at.desc())
            .limit(1000)
        ).all()
    return [
        {
            "pattern_id": format_pattern_id(unsigned_pattern_id(r.pattern_id)),
            "label": r.label,
            "confidence": round(float(r.confidence), 4),
            "offline_label": r.offline_label,
            "offline_confidence": round(float(r.offline_confidence), 4),
            "source": r.source,
            "labelled_at": r.labelled_at,
        }
        for r in rows
    ]
