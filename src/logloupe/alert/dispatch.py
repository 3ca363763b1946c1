"""Noise control and delivery: signals in, few notifications out.

* Dedup: one notification per (tenant, rule, group key) inside ``dedup_window_s``; repeats inside
  the window are counted and the next notification carries that count (``suppressed``).
* Resolution: a streaming alert resolves after ``resolve_after_s`` without a signal; a scheduled one
  as soon as an evaluation no longer finds its key. Either way a ``resolved`` notification goes out.
* Silences (tenant, optional rule, optional group key, expiry) turn notifications into ``silenced``
  history rows.
* Rate cap: at most ``max_per_hour`` notifications per (tenant, channel) in any hour; the rest are
  recorded as ``rate_limited`` deliveries.
* Redaction: what goes to a channel leaves the machine, so every field that can carry log text
  (samples, title, summary, pattern, insight, explanation, group key) goes through the tenant's
  masking policy first (``redaction(tenant)``; default: mask). History keeps the original.
* Delivery runs on one worker thread per channel with retries and exponential backoff; every outcome
  is recorded in ``alert_deliveries`` and the metrics.

History writes are bounded by the same rules: a burst of matching events adds one ``suppressed``
row per window and key, whose count is updated on each sweep — never a row per event.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from logloupe.alert.channels import Channel
from logloupe.alert.insight import InsightLookup
from logloupe.alert.notification import FIRING, RESOLVED, SILENCED, SUPPRESSED, DeliveryError, Notification
from logloupe.alert.rules import STREAMING_TYPES, Rule, Signal
from logloupe.alert.store import AlertStore
from logloupe.analyse.redact import DEFAULT_POLICY, RedactionPolicy
from logloupe.metrics import (
    ALERT_DELIVERIES,
    ALERT_DELIVERY_SECONDS,
    ALERT_FIRING,
    ALERT_LATENCY_SECONDS,
    ALERT_NOTIFICATIONS,
)

log = logging.getLogger(__name__)

# (channel name, the channel or None when it is not configured)
ChannelsFor = Callable[[Rule], list[tuple[str, Channel | None]]]
PatternLookup = Callable[[str, str], str]
# tenant -> the redaction applied to notifications before they reach a channel
RedactionFor = Callable[[str], RedactionPolicy]

_QUEUE_MAX = 10000
# Rule types whose notifications get an insight summary from ``insight_lookup``.
INSIGHT_TYPES = frozenset({"classification", "pattern", "anomaly"})


@dataclass
class _Alert:
    rule: Rule
    key: str
    status: str  # firing | silenced
    first_at: float
    last_seen: float
    last_notified: float = 0.0
    matches: int = 0
    suppressed: int = 0  # repeats since the last notification
    suppressed_row: int = 0  # history row counting this window's repeats
    suppressed_written: int = 0
    history_id: int = 0
    last_signal: Signal | None = None
    service: str = ""


@dataclass
class _Job:
    notification: Notification
    channel_name: str
    channel: Channel
    queued_at: float = field(default_factory=time.monotonic)


class Dispatcher:
    def __init__(
        self,
        alerts: AlertStore,
        channels_for: ChannelsFor,
        *,
        dedup_window_s: float = 600.0,
        resolve_after_s: float = 600.0,
        max_per_hour: int = 60,
        retry_attempts: int = 4,
        retry_base_s: float = 1.0,
        public_url: str = "",
        pattern_lookup: PatternLookup | None = None,
        insight_lookup: InsightLookup | None = None,
        redaction: RedactionFor | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.alerts = alerts
        self.redaction = redaction
        self.channels_for = channels_for
        self.dedup_window_s = dedup_window_s
        self.resolve_after_s = resolve_after_s
        self.max_per_hour = max_per_hour
        self.retry_attempts = retry_attempts
        self.retry_base_s = retry_base_s
        self.public_url = public_url.rstrip("/")
        self.pattern_lookup = pattern_lookup
        self.insight_lookup = insight_lookup
        self.clock = clock
        self.sleep = sleep
        self._lock = threading.RLock()
        self._alerts: dict[tuple[str, str, str], _Alert] = {}
        self._sent: dict[tuple[str, str], deque[float]] = {}
        self._silences: list[dict[str, Any]] = []
        self._silences_loaded = -1e18
        # One delivery queue and worker per channel: a hanging SMTP server never delays Slack.
        self._queues: dict[str, queue.Queue[_Job | None]] = {}
        self._workers: list[threading.Thread] = []
        # Streaming signals are handled off the store writer's thread: history writes (SQLite
        # commits) must not delay ingest acknowledgements.
        self._signals: queue.Queue[list[Signal] | None] = queue.Queue(maxsize=1000)
        self._signal_worker = threading.Thread(target=self._signal_loop, name="logloupe-alert-signals", daemon=True)
        self._signal_worker.start()
        self.notified = 0  # notifications handed to channels (after dedup, before rate cap)

    # -- signals in -------------------------------------------------------------------------

    def handle(self, signals: list[Signal]) -> None:
        for sig in signals:
            with self._lock:
                self._handle_one(sig)

    def submit(self, signals: list[Signal]) -> None:
        """Queue signals for the dispatcher thread; when it is far behind, handle them here (backpressure)."""
        if not signals:
            return
        try:
            self._signals.put_nowait(signals)
        except queue.Full:
            self.handle(signals)

    def _signal_loop(self) -> None:
        while True:
            signals = self._signals.get()
            try:
                if signals is None:
                    return
                self.handle(signals)
            except Exception:
                log.exception("alert signal handling failed")
            finally:
                self._signals.task_done()

    def _handle_one(self, sig: Signal) -> None:
        now = sig.at or self.clock()
        rule = sig.rule
        k = (rule.tenant, rule.id, sig.key)
        alert = self._alerts.get(k)
        if self._silenced(rule, sig.key, now):
            if alert is None or alert.status != SILENCED:
                alert = self._alerts[k] = _Alert(rule, sig.key, SILENCED, now, now, service=sig.service)
                alert.matches = sig.matches
                n = self._notification(sig, SILENCED, now, matches=sig.matches, suppressed=0)
                alert.history_id = self.alerts.add_history(n, SILENCED)
                ALERT_NOTIFICATIONS.labels(rule.tenant, rule.type, SILENCED).inc()
            else:
                alert.suppressed += sig.repeats
                alert.matches += sig.matches
            alert.last_seen = now
            alert.last_signal = sig
            return
        if alert is None or alert.status != FIRING:
            alert = self._alerts[k] = _Alert(rule, sig.key, FIRING, now, now, service=sig.service)
            self._notify(alert, sig, now, matches=sig.matches, suppressed=0)
            self._update_firing_gauge(rule.tenant)
            return
        alert.last_seen = now
        alert.last_signal = sig
        if now - alert.last_notified >= self.dedup_window_s:
            self._close_window(alert)
            self._notify(alert, sig, now, matches=sig.matches + alert.suppressed, suppressed=alert.suppressed)
            return
        alert.suppressed += sig.repeats
        alert.matches += sig.matches
        ALERT_NOTIFICATIONS.labels(rule.tenant, rule.type, SUPPRESSED).inc(sig.repeats)
        if not alert.suppressed_row:
            n = self._notification(sig, SUPPRESSED, now, matches=sig.matches, suppressed=alert.suppressed)
            alert.suppressed_row = self.alerts.add_history(n, SUPPRESSED)
            alert.suppressed_written = alert.suppressed

    def resolve_absent(self, rule: Rule, firing_keys: set[str]) -> None:
        """After a scheduled evaluation: every alert of the rule whose key no longer fires resolves."""
        with self._lock:
            for k, alert in list(self._alerts.items()):
                if k[1] == rule.id and alert.key not in firing_keys:
                    self._resolve(k, alert)

    def forget_rule(self, rule_id: str) -> None:
        """A deleted or edited rule: its alerts end without a notification."""
        with self._lock:
            for k in [k for k in self._alerts if k[1] == rule_id]:
                tenant = self._alerts.pop(k).rule.tenant
                self._update_firing_gauge(tenant)

    def sweep(self) -> None:
        """Resolve quiet streaming alerts and persist suppressed counts (the scheduler calls this)."""
        self._wait_signals(5.0)
        now = self.clock()
        with self._lock:
            for k, alert in list(self._alerts.items()):
                if alert.rule.type in STREAMING_TYPES and now - alert.last_seen >= self.resolve_after_s:
                    self._resolve(k, alert)
                elif alert.status == SILENCED and not self._silenced(alert.rule, alert.key, now):
                    self._alerts.pop(k)
                else:
                    self._persist_suppressed(alert)

    def refresh_silences(self) -> None:
        self._silences_loaded = -1e18

    # -- internals --------------------------------------------------------------------------

    def _silenced(self, rule: Rule, key: str, now: float) -> bool:
        if now - self._silences_loaded > 5.0:
            self._silences = self.alerts.silences(active_at=now)
            self._silences_loaded = now
        for s in self._silences:
            if s["tenant"] != rule.tenant or s["expires_at"] <= now:
                continue
            if s["rule_id"] and s["rule_id"] != rule.id:
                continue
            if s["group_key"] and s["group_key"] != key:
                continue
            return True
        return False

    def _persist_suppressed(self, alert: _Alert) -> None:
        if alert.status == SILENCED and alert.history_id:
            self.alerts.update_suppressed(alert.history_id, alert.suppressed, alert.matches)
        elif alert.suppressed_row and alert.suppressed != alert.suppressed_written:
            self.alerts.update_suppressed(alert.suppressed_row, alert.suppressed, alert.suppressed)
            alert.suppressed_written = alert.suppressed

    def _close_window(self, alert: _Alert) -> None:
        self._persist_suppressed(alert)
        alert.suppressed_row = 0
        alert.suppressed_written = 0

    def _resolve(self, k: tuple[str, str, str], alert: _Alert) -> None:
        self._alerts.pop(k, None)
        if alert.status == SILENCED:
            self._persist_suppressed(alert)
            return
        self._close_window(alert)
        sig = alert.last_signal or Signal(alert.rule, alert.key, matches=0, title=alert.rule.name)
        now = self.clock()
        self._notify(alert, sig, now, matches=alert.suppressed, suppressed=alert.suppressed, state=RESOLVED)
        self._update_firing_gauge(alert.rule.tenant)

    def _update_firing_gauge(self, tenant: str) -> None:
        ALERT_FIRING.labels(tenant).set(
            sum(1 for a in self._alerts.values() if a.rule.tenant == tenant and a.status == FIRING)
        )

    def _notification(self, sig: Signal, state: str, now: float, *, matches: int, suppressed: int) -> Notification:
        rule = sig.rule
        pattern = sig.pattern
        if not pattern and sig.pattern_id and self.pattern_lookup is not None:
            try:
                pattern = self.pattern_lookup(rule.tenant, sig.pattern_id)
            except Exception:  # a missing pattern never blocks an alert
                log.exception("pattern lookup failed")
        insight = sig.insight
        if not insight and self.insight_lookup is not None and rule.type in INSIGHT_TYPES:
            try:
                insight = self.insight_lookup(rule.tenant, sig.pattern_id, list(sig.samples))
            except Exception:  # nor does a failing insight
                log.exception("insight lookup failed")
        title = sig.title or rule.name
        if state == RESOLVED:
            title = f"Resolved: {title}"
        return Notification(
            tenant=rule.tenant,
            rule_id=rule.id,
            rule_name=rule.name,
            rule_type=rule.type,
            group_key=sig.key,
            state=state,
            title=title,
            severity=rule.severity,
            summary=sig.summary,
            matches=matches,
            suppressed=suppressed,
            value=sig.value,
            threshold=sig.threshold,
            service=sig.service,
            pattern_id=sig.pattern_id,
            pattern=pattern or (f"pattern {sig.pattern_id}" if sig.pattern_id else ""),
            samples=list(sig.samples),
            insight=insight,
            explanation=sig.explanation,
            first_ts=now,
            at=now,
            public_url=self.public_url,
        )

    def _notify(
        self, alert: _Alert, sig: Signal, now: float, *, matches: int, suppressed: int, state: str = FIRING
    ) -> None:
        rule = alert.rule
        n = self._notification(sig, state, now, matches=matches, suppressed=suppressed)
        n.first_ts = alert.first_at
        n.history_id = self.alerts.add_history(n, state)
        alert.history_id = n.history_id
        alert.last_notified = now
        alert.suppressed = 0
        alert.matches = 0
        ALERT_NOTIFICATIONS.labels(rule.tenant, rule.type, state).inc()
        if sig.observed_us and state == FIRING:
            ALERT_LATENCY_SECONDS.labels(rule.type).observe(max(0.0, time.time() - sig.observed_us / 1e6))
        self.notified += 1
        outgoing: Notification | None = None
        for name, channel in self.channels_for(rule):
            if channel is None:
                self._record(n, name, "", "not_configured", 0, "channel not configured", 0.0)
                continue
            if not self._take_rate(rule.tenant, name, now):
                self._record(n, name, "", "rate_limited", 0, f"over {self.max_per_hour} per hour", 0.0)
                continue
            if outgoing is None:
                outgoing = n.redacted(self._redaction(rule.tenant).apply)
            try:
                self._queue_for(name).put_nowait(_Job(outgoing, name, channel))
            except queue.Full:
                self._record(n, name, "", "dropped", 0, "delivery queue full", 0.0)

    def _redaction(self, tenant: str) -> RedactionPolicy:
        if self.redaction is None:
            return DEFAULT_POLICY
        try:
            return self.redaction(tenant)
        except Exception:  # no policy to read: mask, never send the text as it is
            log.exception("redaction policy lookup failed; masking")
            return DEFAULT_POLICY

    def _take_rate(self, tenant: str, channel: str, now: float) -> bool:
        sent = self._sent.setdefault((tenant, channel), deque())
        while sent and now - sent[0] >= 3600:
            sent.popleft()
        if len(sent) >= self.max_per_hour:
            return False
        sent.append(now)
        return True

    def _record(
        self, n: Notification, channel: str, target: str, result: str, attempts: int, error: str, seconds: float
    ) -> None:
        ALERT_DELIVERIES.labels(channel, result).inc()
        self.alerts.add_delivery(n.history_id, n.tenant, channel, target, result, attempts, error, seconds * 1000)

    # -- delivery ---------------------------------------------------------------------------

    def _queue_for(self, channel: str) -> queue.Queue[_Job | None]:
        q = self._queues.get(channel)
        if q is None:
            q = self._queues[channel] = queue.Queue(maxsize=_QUEUE_MAX)
            worker = threading.Thread(
                target=self._deliver_loop, args=(q,), name=f"logloupe-alert-{channel}", daemon=True
            )
            worker.start()
            self._workers.append(worker)
        return q

    def _deliver_loop(self, q: queue.Queue[_Job | None]) -> None:
        while True:
            job = q.get()
            try:
                if job is None:
                    return
                self._deliver(job)
            except Exception:
                log.exception("alert delivery crashed")
            finally:
                q.task_done()

    def _deliver(self, job: _Job) -> None:
        started = time.monotonic()
        error = ""
        for attempt in range(1, self.retry_attempts + 1):
            try:
                target = job.channel.send(job.notification)
            except DeliveryError as exc:
                error = str(exc)
                log.warning("alert delivery via %s failed (attempt %d): %s", job.channel_name, attempt, error)
                if not exc.retryable or attempt == self.retry_attempts:
                    break
                self.sleep(self.retry_base_s * 2 ** (attempt - 1))
            except Exception as exc:  # a channel bug must not stop the worker; recorded like any failure
                error = f"{type(exc).__name__}: {exc}"
                log.exception("alert channel %s raised", job.channel_name)
                break
            else:
                took = time.monotonic() - started
                ALERT_DELIVERY_SECONDS.labels(job.channel_name).observe(took)
                self._record(job.notification, job.channel_name, target, "sent", attempt, "", took)
                return
        took = time.monotonic() - started
        ALERT_DELIVERY_SECONDS.labels(job.channel_name).observe(took)
        self._record(job.notification, job.channel_name, "", "failed", attempt, error, took)

    def _wait_signals(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self._signals.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)

    def drain(self, timeout_s: float = 30.0) -> None:
        """Wait until every queued signal and delivery has been handled (tests, shutdown)."""
        deadline = time.monotonic() + timeout_s

        def busy() -> bool:
            with self._lock:  # queues are created under the lock (in _notify)
                queues = list(self._queues.values())
            return bool(self._signals.unfinished_tasks or any(q.unfinished_tasks for q in queues))

        while busy() and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self, timeout_s: float = 10.0) -> None:
        self.drain(timeout_s)
        self._signals.put(None)
        self._signal_worker.join(timeout_s)
        with self._lock:
            queues = list(self._queues.values())
        for q in queues:
            q.put(None)
        for worker in self._workers:
            worker.join(timeout_s)
