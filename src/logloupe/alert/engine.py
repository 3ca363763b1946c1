"""The alerting stage: rules from the metadata store, streaming evaluation on each stored batch,
a scheduler thread for query / pattern / silence rules, and the dispatcher behind both.

Wiring (serve/api/alerts.py ``setup``): ``writer.after_store.append(engine.on_stored)``; anomaly
detectors call ``engine.on_anomalies([...])`` with ``AnomalySignal`` values; ``insight_lookup``
(``alert.insight.InsightSummaries``) fills the insight summary of classification, pattern and
anomaly notifications that do not carry one.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError

from logloupe.alert.channels import Channel
from logloupe.alert.channels.email import EmailChannel
from logloupe.alert.channels.slack import SlackChannel
from logloupe.alert.channels.teams import TeamsChannel
from logloupe.alert.channels.webhook import WebhookChannel
from logloupe.alert.dispatch import Dispatcher, PatternLookup
from logloupe.alert.insight import InsightLookup
from logloupe.alert.rules import (
    STREAMING_TYPES,
    AnomalyParams,
    AnomalySignal,
    ClassificationParams,
    Rule,
    RuleSpec,
    Signal,
    anomaly_threshold,
    default_rule_specs,
    evaluate,
    match_anomaly,
    match_anomaly_events,
    match_classification,
)
from logloupe.alert.store import AlertStore
from logloupe.analyse.redact import RedactionPolicy, tenant_redaction
from logloupe.errors import InvalidInput
from logloupe.metrics import (
    ALERT_EVALUATION_SECONDS,
    ANOMALY_LAST_SCORE,
    ANOMALY_SCORE,
    LOG_INCIDENT,
    LOG_NORMAL,
    LOG_WARNING,
)
from logloupe.model import EventColumns, LogEvent
from logloupe.settings import Settings
from logloupe.store.accounts import Accounts
from logloupe.store.events import EventStore
from logloupe.store.meta import MetaStore

log = logging.getLogger(__name__)

_CLASS_COUNTERS = {"incident": LOG_INCIDENT, "preventive_action": LOG_WARNING, "normal": LOG_NORMAL}
# Top-level keys of a TOML [[rule]] table; every other key is a type parameter.
_SPEC_KEYS = {"name", "type", "enabled", "severity", "channels", "targets", "tenant"}


def load_rules_file(path: Path, default_tenant: str) -> list[tuple[str, RuleSpec]]:
    """``[[rule]]`` tables → (tenant, spec). Errors name the file and the rule."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(f"alert rules file {path}: {exc}") from None
    out = []
    for i, table in enumerate(data.get("rule", [])):
        top = {k: v for k, v in table.items() if k in _SPEC_KEYS}
        params = {**table.get("params", {}), **{k: v for k, v in table.items() if k not in _SPEC_KEYS | {"params"}}}
        tenant = str(top.pop("tenant", default_tenant))
        try:
            spec = RuleSpec.model_validate({**top, "params": params})
            spec.validated_params()
        except ValidationError as exc:
            raise InvalidInput(f"alert rules file {path}, rule {i + 1}: {exc.errors()[0]['msg']}") from None
        except InvalidInput as exc:
            raise InvalidInput(f"alert rules file {path}, rule {i + 1}: {exc.message}") from None
        out.append((tenant, spec))
    return out


class AlertEngine:
    def __init__(
        self,
        settings: Settings,
        store: EventStore,
        meta: MetaStore,
        *,
        http: httpx.Client | None = None,
        smtp_ssl_context: ssl.SSLContext | None = None,
        pattern_lookup: PatternLookup | None = None,
        insight_lookup: InsightLookup | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.store = store
        self.meta = meta
        self.alerts = AlertStore(meta.engine)
        self._own_http = http is None
        self.http = http or httpx.Client(timeout=10.0)
        if smtp_ssl_context is None and settings.smtp_ca_file is not None:
            smtp_ssl_context = ssl.create_default_context(cafile=str(settings.smtp_ca_file))
        self.smtp_ssl_context = smtp_ssl_context
        self.clock = clock
        public_url = settings.public_url or f"http://{settings.host}:{settings.port}"
        self.dispatcher = Dispatcher(
            self.alerts,
            self.channels_for,
            dedup_window_s=settings.alert_dedup_window_s,
            resolve_after_s=settings.alert_resolve_after_s,
            max_per_hour=settings.alert_channel_max_per_hour,
            retry_attempts=settings.alert_retry_attempts,
            retry_base_s=settings.alert_retry_base_s,
            public_url=public_url,
            pattern_lookup=pattern_lookup,
            insight_lookup=insight_lookup,
            redaction=self.redaction,
            clock=clock,
            sleep=sleep,
        )
        self._rules: list[Rule] = []
        self._rules_lock = threading.Lock()
        self._known_tenants: set[str] = set()
        self._next_due: dict[str, float] = {}
        self._next_prune = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def redaction(self, tenant: str) -> RedactionPolicy:
        """The tenant's masking mode (``PUT /api/v1/tenant/llm-policy``; default mask) for notifications."""
        mode = Accounts(self.meta).policy(tenant).llm_masking_mode
        return tenant_redaction(self.settings.data_dir, tenant, mode, ip_addresses=self.settings.redact_ip_addresses)

    # -- rules ------------------------------------------------------------------------------

    def start(self, *, scheduler: bool = True) -> None:
        for known in self.meta.list_tenants():
            self.ensure_defaults(known.id)
        if self.settings.alert_rules_file is not None:
            for tenant, spec in load_rules_file(self.settings.alert_rules_file, self.settings.default_tenant):
                self.meta.ensure_tenant(tenant, retention_days=self.settings.retention_days)
                self.ensure_defaults(tenant)
                self.alerts.upsert_rule(tenant, spec, origin="file")
        self.reload()
        if scheduler:
            self._thread = threading.Thread(target=self._schedule_loop, name="logloupe-alert-scheduler", daemon=True)
            self._thread.start()

    def ensure_defaults(self, tenant: str) -> None:
        """Create the tenant's default rules the first time it is seen, and start evaluating them."""
        if tenant in self._known_tenants:
            return
        created = False
        for spec in default_rule_specs():
            if self.alerts.find_rule(tenant, spec.name) is None:
                self.alerts.create_rule(tenant, spec, origin="default", created_by="default")
                created = True
        self._known_tenants.add(tenant)
        if created:
            self.reload()

    def reload(self) -> None:
        """Re-read the enabled rules (after any change through the API)."""
        rules = self.alerts.list_rules(enabled_only=True)
        with self._rules_lock:
            old = {r.id: r for r in self._rules}
            self._rules = rules
        current = {r.id: r for r in rules}
        for rule_id, rule in old.items():
            if rule_id not in current or current[rule_id].params != rule.params:
                self.dispatcher.forget_rule(rule_id)

    def rules(self) -> list[Rule]:
        with self._rules_lock:
            return list(self._rules)

    # -- channels ---------------------------------------------------------------------------

    def channels_for(self, rule: Rule) -> list[tuple[str, Channel | None]]:
        s, t = self.settings, rule.targets
        # The settings' destinations belong to the operator: other tenants' alerts (their log
        # lines) only go there when the operator says so; otherwise a rule names its own targets.
        shared = rule.tenant == s.default_tenant or s.alert_channels_all_tenants
        email_to = t.email_to or (s.alert_email_to if shared else [])
        slack = t.slack_url or (s.slack_webhook_url if shared else "")
        teams = t.teams_url or (s.teams_webhook_url if shared else "")
        webhook = t.webhook_url or (s.alert_webhook_url if shared else "")
        secret = t.webhook_secret if t.webhook_url else s.alert_webhook_secret
        out: list[tuple[str, Channel | None]] = []
        for name in rule.channels:
            channel: Channel | None = None
            if name == "email" and s.smtp_host and email_to:
                channel = EmailChannel(
                    s.smtp_host,
                    s.smtp_port,
                    sender=s.smtp_from,
                    recipients=email_to,
                    security=s.smtp_security,
                    username=s.smtp_username,
                    password=s.smtp_password,
                    ssl_context=self.smtp_ssl_context,
                )
            elif name == "slack" and slack:
                channel = SlackChannel(slack, self.http)
            elif name == "teams" and teams:
                channel = TeamsChannel(teams, self.http)
            elif name == "webhook" and webhook:
                channel = WebhookChannel(webhook, secret, self.http)
            out.append((name, channel))
        return out

    # -- streaming --------------------------------------------------------------------------

    def on_stored(self, events: Sequence[LogEvent]) -> None:
        """``StoreWriter.after_store`` hook: counts classifications, evaluates streaming rules."""
        started = time.perf_counter()
        columns = events if isinstance(events, EventColumns) else None
        tenants = set(columns.tenant) if columns is not None else {e.tenant for e in events}
        for tenant in tenants - self._known_tenants:
            self.ensure_defaults(tenant)
        rules = self.rules()
        # Only events some rule can match go on: a class a classification rule watches, or an
        # anomaly score at or above the lowest event threshold of the anomaly rules (the matchers
        # filter again; what they see keeps its order).
        wanted: set[str] = set()
        floor: float | None = None
        for rule in rules:
            if rule.type == "classification":
                classes: ClassificationParams = rule.params
                wanted.update(classes.classes)
            elif rule.type == "anomaly":
                p: AnomalyParams = rule.params
                if p.include_events and (not p.kinds or "event" in p.kinds):
                    t = anomaly_threshold(rule, self.settings.anomaly_threshold)
                    floor = t if floor is None else min(floor, t)
        # One pass; metric children are bumped once per (tenant, service, class), not per event.
        # Column lists (the pipeline's batches from its decoder processes) are counted and grouped
        # at C speed where they can be, and events are built only for sample lines and anomalous events.
        classified: dict[tuple[str, str, str], int] = {}
        by_class: dict[tuple[str, str], Sequence[int]] = {}  # (tenant, class) -> positions, for classification rules
        scored: dict[str, list[int]] = {}  # tenant -> positions at or above the floor, for anomaly rules
        positions: dict[tuple[str, str], list[int]] = {}
        if columns is not None:
            labels = columns.classification
            groups = Counter(zip(labels, columns.tenant, columns.service, strict=True))
            classified = {k: n for k, n in groups.items() if k[0]}
            if wanted and len(tenants) == 1:  # the usual batch: one tenant; whole classes at C speed
                (only,) = tenants
                per_class = Counter(labels)
                for cls in wanted & per_class.keys():
                    whole = per_class[cls] == len(labels)
                    where = range(len(labels)) if whole else [i for i, c in enumerate(labels) if c == cls]
                    by_class[(only, cls)] = where
            elif wanted:
                for i, (tenant, cls) in enumerate(zip(columns.tenant, labels, strict=True)):
                    if cls in wanted:
                        positions.setdefault((tenant, cls), []).append(i)
            scores = columns.anomaly_score
            if floor is not None and scores and max(scores) >= floor:
                for i, (tenant, cls, score) in enumerate(zip(columns.tenant, labels, scores, strict=True)):
                    if score >= floor and (cls or score):
                        scored.setdefault(tenant, []).append(i)
        else:
            for i, e in enumerate(events):
                cls = e.classification
                if cls:
                    key = (cls, e.tenant, e.service)
                    classified[key] = classified.get(key, 0) + 1
                if cls in wanted:
                    positions.setdefault((e.tenant, cls), []).append(i)
                if floor is not None and e.anomaly_score >= floor and (cls or e.anomaly_score):
                    scored.setdefault(e.tenant, []).append(i)
        by_class.update(positions)
        for (cls, tenant, service), n_events in classified.items():
            counter = _CLASS_COUNTERS.get(cls)
            if counter is not None:
                counter.labels(tenant, service).inc(n_events)
        if not by_class and not scored:
            return

        def view(at: Sequence[int]) -> Sequence[LogEvent]:
            if columns is not None:
                return columns.subset(at)
            return events if len(at) == len(events) else [events[i] for i in at]

        signals: list[Signal] = []
        n = self.settings.alert_sample_lines
        for rule in rules:
            if rule.type == "classification":
                # Each rule sees the events of its own classes only, in batch order.
                watched: ClassificationParams = rule.params
                parts = [by_class[k] for c in dict.fromkeys(watched.classes) if (k := (rule.tenant, c)) in by_class]
                if parts:
                    at = parts[0] if len(parts) == 1 else sorted(chain.from_iterable(parts))
                    signals += match_classification(rule, view(at), n)
            elif rule.type == "anomaly" and rule.tenant in scored:
                signals += match_anomaly_events(rule, view(scored[rule.tenant]), self.settings.anomaly_threshold, n)
        seen = self.clock()
        for sig in signals:
            sig.at = seen
        self.dispatcher.submit(signals)
        ALERT_EVALUATION_SECONDS.labels("stream").observe(time.perf_counter() - started)

    def on_anomalies(self, anomalies: Sequence[AnomalySignal]) -> None:
        """Anomaly detectors report here (any thread)."""
        started = time.perf_counter()
        signals = []
        rules = [r for r in self.rules() if r.type == "anomaly"]
        for a in anomalies:
            ANOMALY_SCORE.labels(a.tenant, a.kind).observe(a.score)
            ANOMALY_LAST_SCORE.labels(a.tenant, a.kind).set(a.score)
            for rule in rules:
                sig = match_anomaly(rule, a, self.settings.anomaly_threshold)
                if sig is not None:
                    sig.at = self.clock()
                    signals.append(sig)
        self.dispatcher.submit(signals)
        ALERT_EVALUATION_SECONDS.labels("anomaly").observe(time.perf_counter() - started)

    # -- scheduled --------------------------------------------------------------------------

    def evaluate_rule(self, rule: Rule, now: float | None = None) -> dict[str, Any]:
        now = self.clock() if now is None else now
        try:
            result = evaluate(
                rule,
                self.store,
                now_us=int(now * 1_000_000),
                samples=self.settings.alert_sample_lines,
                regex_max=self.settings.regex_max_length,
            )
        except Exception as exc:
            log.exception("alert rule %s (%s) failed to evaluate", rule.name, rule.id)
            return {"rule_id": rule.id, "error": str(exc)}
        ALERT_EVALUATION_SECONDS.labels(rule.type).observe(result.took_s)
        self.alerts.record_evaluation(rule.id, now, result.took_s * 1000)
        self.dispatcher.handle(result.firing)
        self.dispatcher.resolve_absent(rule, {s.key for s in result.firing})
        return {"rule_id": rule.id, "firing": [s.key for s in result.firing], "took_ms": result.took_s * 1000}

    def evaluate_due(self, *, force: bool = False, tenant: str | None = None) -> list[dict[str, Any]]:
        now = self.clock()
        out = []
        for rule in self.rules():
            if rule.type in STREAMING_TYPES or (tenant is not None and rule.tenant != tenant):
                continue
            if not force and self._next_due.get(rule.id, 0.0) > now:
                continue
            self._next_due[rule.id] = now + rule.params.interval_s
            out.append(self.evaluate_rule(rule, now))
        self.dispatcher.sweep()
        if now >= self._next_prune:
            self._next_prune = now + 3600
            self.alerts.prune(now - self.settings.alert_history_days * 86400)
        return out

    def _schedule_loop(self) -> None:
        tick = self.settings.alert_eval_interval_s
        while not self._stop.wait(tick):
            try:
                self.evaluate_due()
            except Exception:
                log.exception("alert scheduler tick failed")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.dispatcher.close()
        if self._own_http:
            self.http.close()
