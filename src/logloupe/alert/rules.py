"""Alert rule types, their validation, and how each one is evaluated.

Five types (docs/alerts.md has TOML examples):

    query           count (or ratio) of events matching a query in a window >= threshold   scheduled
    pattern         a new pattern appears, or a pattern's rate changes by a factor           scheduled
    anomaly         an anomaly (or an event's anomaly_score) >= threshold                    streaming
    classification  events classified incident / preventive_action / normal                  streaming
    silence         a service sends nothing for N minutes                                    scheduled

Streaming rules look at each stored batch (``StoreWriter.after_store``) and at anomaly signals;
scheduled rules run tenant-scoped queries through ``store/search.py`` on an interval. Every
evaluation yields ``Signal`` objects; the dispatcher turns them into notifications.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from logloupe.errors import InvalidInput
from logloupe.model import EventColumns, Level, LogEvent, format_pattern_id, iso_micros
from logloupe.store.events import EventStore
from logloupe.store.query import field_expression, parse_query, phrase
from logloupe.store.search import Scope, count, search

RULE_TYPES = ("query", "pattern", "anomaly", "classification", "silence")
STREAMING_TYPES = ("anomaly", "classification")
CHANNELS = ("email", "slack", "teams", "webhook")
SEVERITIES = ("info", "warning", "critical")
CLASSES = ("incident", "preventive_action", "normal")


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_query(q: str) -> str:
    parse_query(q)  # raises QuerySyntaxError (a 400) naming the position
    return q


class QueryParams(_Params):
    query: str = Field(description="Events to count, in the query language.")
    window_s: int = Field(default=300, ge=10, le=7 * 86400)
    threshold: float = Field(default=1, ge=0)
    mode: Literal["count", "ratio"] = "count"
    ratio_of: str = Field(default="", description="Denominator query for mode=ratio (all events when empty).")
    group_by: str = Field(default="", description="Evaluate per value of this field (e.g. service).")
    interval_s: int = Field(default=60, ge=5)

    _q = field_validator("query", "ratio_of")(_check_query)


class PatternParams(_Params):
    mode: Literal["new", "rate_change"] = "new"
    query: str = ""
    window_s: int = Field(default=300, ge=10, le=86400)
    baseline_windows: int = Field(default=12, ge=1, le=288, description="Windows before the current one (rate).")
    lookback_s: int = Field(default=7 * 86400, ge=60, description="A pattern is new if unseen for this long.")
    factor: float = Field(default=3.0, gt=1.0, description="Rate change: current/baseline >= factor (or <= 1/f).")
    min_count: int = Field(default=10, ge=1, description="Rate change: ignore windows with fewer events.")
    interval_s: int = Field(default=60, ge=5)

    _q = field_validator("query")(_check_query)


class AnomalyParams(_Params):
    threshold: float | None = Field(default=None, ge=0, le=1, description="Default: setting anomaly_threshold.")
    service: str = ""
    kinds: list[str] = Field(default_factory=list)
    include_events: bool = Field(default=True, description="Also fire on events whose anomaly_score crosses it.")


ClassName = Literal["incident", "preventive_action", "normal"]


def _incident_only() -> list[ClassName]:
    return ["incident"]


class ClassificationParams(_Params):
    classes: list[ClassName] = Field(default_factory=_incident_only, min_length=1)
    service: str = ""
    group_by: Literal["pattern", "service"] = "pattern"


class SilenceParams(_Params):
    service: str = Field(default="", description="Watched service; empty watches every service seen in lookback.")
    minutes: float = Field(default=15, gt=0, le=7 * 1440)
    lookback_s: int = Field(default=86400, ge=60)
    interval_s: int = Field(default=60, ge=5)


PARAMS: dict[str, type[_Params]] = {
    "query": QueryParams,
    "pattern": PatternParams,
    "anomaly": AnomalyParams,
    "classification": ClassificationParams,
    "silence": SilenceParams,
}


def mask_url(url: str) -> str:
    if not url:
        return ""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}/…"


_EMAIL = re.compile(r"^[^@\s,<>\"]{1,64}@[A-Za-z0-9.-]{1,255}$")


class Targets(_Params):
    """Per-rule destinations; empty values fall back to the settings."""

    email_to: list[str] = Field(default_factory=list, max_length=50)
    slack_url: str = Field(default="", max_length=2000)
    teams_url: str = Field(default="", max_length=2000)
    webhook_url: str = Field(default="", max_length=2000)
    webhook_secret: str = Field(default="", max_length=500)

    def public(self) -> dict[str, Any]:
        """What reads show: webhook URLs (Slack and Teams URLs are credentials) cut to their origin."""
        return {
            "email_to": self.email_to,
            "slack_url": mask_url(self.slack_url),
            "teams_url": mask_url(self.teams_url),
            "webhook_url": mask_url(self.webhook_url),
            "webhook_secret": bool(self.webhook_secret),
        }

    def merged(self, current: Targets) -> Targets:
        """An update that sends back what reads showed keeps the stored values."""
        update: dict[str, Any] = {}
        for name in ("slack_url", "teams_url", "webhook_url"):
            new, old = getattr(self, name), getattr(current, name)
            if new and new == mask_url(old):
                update[name] = old
        if not self.webhook_secret and current.webhook_secret:
            update["webhook_secret"] = current.webhook_secret
        return self.model_copy(update=update) if update else self

    @field_validator("email_to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if not _EMAIL.match(address):
                raise ValueError(f"not an email address: {address[:100]!r}")
        return value

    @field_validator("slack_url", "teams_url", "webhook_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("a webhook URL starts with https:// or http://")
        return value


class RuleSpec(BaseModel):
    """What a user writes (API body, TOML table); validated per type."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    type: Literal["query", "pattern", "anomaly", "classification", "silence"]
    enabled: bool = True
    severity: Literal["info", "warning", "critical"] = "warning"
    channels: list[Literal["email", "slack", "teams", "webhook"]] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)
    targets: Targets = Field(default_factory=Targets)

    def validated_params(self) -> _Params:
        try:
            return PARAMS[self.type].model_validate(self.params)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise InvalidInput(f"params.{where}: {first.get('msg', 'invalid')}", rule_type=self.type) from None


@dataclass
class Rule:
    id: str
    tenant: str
    name: str
    type: str
    params: Any  # one of the *Params models, matching ``type``
    channels: list[str]
    severity: str = "warning"
    enabled: bool = True
    targets: Targets = field(default_factory=Targets)
    origin: str = "api"  # api | file | default
    created_by: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0
    last_eval_at: float | None = None
    last_eval_ms: float | None = None

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant": self.tenant,
            "name": self.name,
            "type": self.type,
            "enabled": self.enabled,
            "severity": self.severity,
            "channels": self.channels,
            "params": self.params.model_dump(),
            # Secrets are write-only: the API says whether one is set, never what it is.
            "targets": self.targets.public(),
            "origin": self.origin,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "last_eval_at": self.last_eval_at,
            "last_eval_ms": self.last_eval_ms,
        }


def default_rule_specs() -> list[RuleSpec]:
    """The rules every tenant starts with (editable; deleting one disables it)."""
    return [
        RuleSpec(
            name="Incidents",
            type="classification",
            severity="critical",
            channels=["email", "teams"],
            params={"classes": ["incident"]},
        ),
        RuleSpec(
            name="Preventive actions",
            type="classification",
            severity="warning",
            channels=["teams"],
            params={"classes": ["preventive_action"]},
        ),
        RuleSpec(name="Anomalies", type="anomaly", severity="warning", channels=["teams"], params={}),
    ]


@dataclass
class AnomalySignal:
    """What an anomaly detector reports; the analysis stage's Anomaly maps onto this."""

    tenant: str
    service: str
    kind: str
    score: float
    ts_us: int
    explanation: str = ""
    pattern_ids: list[int] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)
    insight: str = ""


@dataclass
class Signal:
    """One rule matching for one group key; many signals fold into one notification."""

    rule: Rule
    key: str
    matches: int = 1
    title: str = ""
    summary: str = ""
    service: str = ""
    pattern_id: str = ""
    pattern: str = ""
    samples: list[str] = field(default_factory=list)
    value: float | None = None
    threshold: float | None = None
    insight: str = ""
    explanation: str = ""
    observed_us: int = 0  # when the newest matching event arrived (latency metric)
    repeats: int = 1  # how many repeats this signal stands for (streaming: one per matching event)
    at: float = 0.0  # when it was seen (epoch s); 0 = when the dispatcher handles it


def sample_line(e: LogEvent, max_chars: int = 500) -> str:
    return sample_text(e.ts_us, e.level, e.service, e.message, max_chars)


def sample_text(ts_us: int, level: int, service: str, message: str, max_chars: int = 500) -> str:
    """``sample_line`` from the fields it shows (an ``EventColumns`` row without building its event)."""
    text = f"{iso_micros(ts_us)} {Level(level).name} [{service or '-'}] {message}"
    return text if len(text) <= max_chars else text[:max_chars] + "…"


# -- streaming ------------------------------------------------------------------------------


def match_classification(rule: Rule, events: Sequence[LogEvent], samples: int) -> list[Signal]:
    if isinstance(events, EventColumns):
        return _match_classification_columns(rule, events, samples)
    p: ClassificationParams = rule.params
    classes = set(p.classes)
    by_pattern = p.group_by == "pattern"
    groups: dict[tuple[str, int, str], Signal] = {}
    for e in events:
        if e.classification not in classes or e.tenant != rule.tenant:
            continue
        if p.service and e.service != p.service:
            continue
        # Group on raw values; ids are formatted once per group, not once per event.
        gk = (e.classification, e.pattern_id, "") if by_pattern and e.pattern_id else (e.classification, 0, e.service)
        sig = groups.get(gk)
        if sig is None:
            sig = groups[gk] = _classified(rule, e.classification, gk[1], e.service)
        sig.matches += 1
        if e.observed_ts_us > sig.observed_us:
            sig.observed_us = e.observed_ts_us
        if len(sig.samples) < samples:
            sig.samples.append(sample_line(e))
    for sig in groups.values():
        sig.repeats = sig.matches
    return list(groups.values())


def _match_classification_columns(rule: Rule, events: EventColumns, samples: int) -> list[Signal]:
    """``match_classification`` on column lists (the ingest pipeline's batches): the same signals,
    with an event built only for each sample line."""
    p: ClassificationParams = rule.params
    classes = set(p.classes)
    by_pattern = p.group_by == "pattern"
    groups: dict[tuple[str, int, str], Signal] = {}
    columns = (events.classification, events.tenant, events.service, events.pattern_id, events.observed_ts_us)
    for i, (cls, tenant, service, pattern_id, observed) in enumerate(zip(*columns, strict=True)):
        if cls not in classes or tenant != rule.tenant:
            continue
        if p.service and service != p.service:
            continue
        gk = (cls, pattern_id, "") if by_pattern and pattern_id else (cls, 0, service)
        sig = groups.get(gk)
        if sig is None:
            sig = groups[gk] = _classified(rule, cls, gk[1], service)
        sig.matches += 1
        if observed > sig.observed_us:
            sig.observed_us = observed
        if len(sig.samples) < samples:
            sig.samples.append(sample_text(events.ts_us[i], events.level[i], service, events.message[i]))
    for sig in groups.values():
        sig.repeats = sig.matches
    return list(groups.values())


def _classified(rule: Rule, cls: str, pattern_id: int, service: str) -> Signal:
    """A classification rule's signal for one group (a pattern, or a service), before its matches."""
    pid = format_pattern_id(pattern_id)
    label = "Incident" if cls == "incident" else cls.replace("_", " ").capitalize()
    return Signal(
        rule,
        f"{cls}:{pid or service}",
        matches=0,
        title=f"{label} in {service or 'unknown service'}",
        service=service,
        pattern_id=pid,
        summary=f"Events classified {cls}.",
    )


def anomaly_threshold(rule: Rule, default: float) -> float:
    p: AnomalyParams = rule.params
    return default if p.threshold is None else p.threshold


def match_anomaly_events(rule: Rule, events: Sequence[LogEvent], default: float, samples: int) -> list[Signal]:
    p: AnomalyParams = rule.params
    if not p.include_events or (p.kinds and "event" not in p.kinds):
        return []
    threshold = anomaly_threshold(rule, default)
    if isinstance(events, EventColumns):  # only the events at or above the threshold are built
        events = events.take([i for i, score in enumerate(events.anomaly_score) if score >= threshold])
    groups: dict[str, Signal] = {}
    for e in events:
        if e.anomaly_score < threshold or e.tenant != rule.tenant or (p.service and e.service != p.service):
            continue
        pid = format_pattern_id(e.pattern_id)
        key = f"event:{e.service}:{pid}"
        sig = groups.get(key)
        if sig is None:
            sig = groups[key] = Signal(
                rule,
                key,
                matches=0,
                title=f"Anomalous events in {e.service or 'unknown service'}",
                service=e.service,
                pattern_id=pid,
                threshold=threshold,
                value=0.0,
            )
        sig.matches += 1
        sig.value = max(sig.value or 0.0, e.anomaly_score)
        sig.observed_us = max(sig.observed_us, e.observed_ts_us)
        if len(sig.samples) < samples:
            sig.samples.append(sample_line(e))
    for sig in groups.values():
        sig.summary = f"Anomaly score up to {sig.value:.2f} (threshold {threshold:.2f})."
        sig.repeats = sig.matches
    return list(groups.values())


def match_anomaly(rule: Rule, anomaly: AnomalySignal, default: float) -> Signal | None:
    p: AnomalyParams = rule.params
    threshold = anomaly_threshold(rule, default)
    if anomaly.tenant != rule.tenant or anomaly.score < threshold:
        return None
    if (p.service and anomaly.service != p.service) or (p.kinds and anomaly.kind not in p.kinds):
        return None
    pids = ",".join(format_pattern_id(x) for x in sorted(anomaly.pattern_ids))
    return Signal(
        rule,
        f"{anomaly.kind}:{anomaly.service}:{pids}",
        matches=1,
        title=f"Anomaly ({anomaly.kind}) in {anomaly.service or 'unknown service'}",
        summary=f"Anomaly score {anomaly.score:.2f} (threshold {threshold:.2f}).",
        service=anomaly.service,
        pattern_id=format_pattern_id(anomaly.pattern_ids[0]) if len(anomaly.pattern_ids) == 1 else "",
        samples=list(anomaly.samples),
        value=anomaly.score,
        threshold=threshold,
        insight=anomaly.insight,
        explanation=anomaly.explanation,
        observed_us=anomaly.ts_us,
    )


# -- scheduled ------------------------------------------------------------------------------


@dataclass
class Evaluation:
    """The outcome of one scheduled evaluation: keys that fire now; all others resolve."""

    rule: Rule
    firing: list[Signal]
    took_s: float


def _samples(store: EventStore, scope: Scope, n: int) -> list[str]:
    return [sample_line(e) for e in search(store, scope, limit=n).events]


def evaluate(rule: Rule, store: EventStore, *, now_us: int, samples: int = 5, regex_max: int = 256) -> Evaluation:
    started = time.perf_counter()
    if rule.type == "query":
        firing = _eval_query(rule, store, now_us, samples, regex_max)
    elif rule.type == "pattern":
        firing = _eval_pattern(rule, store, now_us, samples, regex_max)
    elif rule.type == "silence":
        firing = _eval_silence(rule, store, now_us)
    else:
        firing = []
    return Evaluation(rule, firing, time.perf_counter() - started)


def _eval_query(rule: Rule, store: EventStore, now_us: int, samples: int, regex_max: int) -> list[Signal]:
    p: QueryParams = rule.params
    frm = now_us - p.window_s * 1_000_000
    scope = Scope(rule.tenant, p.query, from_us=frm, to_us=now_us, now_us=now_us, regex_max=regex_max)
    if p.group_by:
        where, params = scope.where()
        key_sql = field_expression(p.group_by, params)
        rows = store.rows(
            f"SELECT {key_sql} AS k, count() AS c FROM events WHERE {where} GROUP BY k ORDER BY c DESC LIMIT 1000",
            params,
        )
        counts = {str(r["k"]): int(r["c"]) for r in rows}
    else:
        counts = {"": count(store, scope)}
    out = []
    for key, n in counts.items():
        value = float(n)
        if p.mode == "ratio":
            base_q = p.ratio_of
            if p.group_by:
                base_q = (
                    f"({base_q or '*'}) AND {p.group_by}:{phrase(key)}" if base_q else f"{p.group_by}:{phrase(key)}"
                )
            total = count(store, Scope(rule.tenant, base_q, from_us=frm, to_us=now_us, now_us=now_us))
            value = n / total if total else 0.0
        if n == 0 or value < p.threshold:
            continue
        q = p.query
        if p.group_by:
            key_q = f"{p.group_by}:{phrase(key)}"
            q = f"({p.query}) AND {key_q}" if p.query else key_q
        shown = f"{value:.3f}" if p.mode == "ratio" else str(n)
        out.append(
            Signal(
                rule,
                key or "all",
                matches=n,
                title=f"{rule.name}: {shown} ≥ {p.threshold:g}" + (f" ({p.group_by}={key})" if p.group_by else ""),
                summary=f"{n} events matched `{p.query}` in the last {p.window_s}s.",
                service=key if p.group_by == "service" else "",
                samples=_samples(store, Scope(rule.tenant, q, from_us=frm, to_us=now_us, now_us=now_us), samples),
                value=value,
                threshold=p.threshold,
            )
        )
    return out


def _eval_pattern(rule: Rule, store: EventStore, now_us: int, samples: int, regex_max: int) -> list[Signal]:
    p: PatternParams = rule.params
    win = p.window_s * 1_000_000
    start = now_us - (p.lookback_s * 1_000_000 if p.mode == "new" else win * (p.baseline_windows + 1))
    scope = Scope(rule.tenant, p.query, from_us=start, to_us=now_us, now_us=now_us, regex_max=regex_max)
    where, params = scope.where()
    params["cut_us"] = now_us - win
    cut = "fromUnixTimestamp64Micro({cut_us:Int64}, 'UTC')"
    rows = store.rows(
        f"SELECT pattern_id AS pid, count() AS total, countIf(ts >= {cut}) AS recent, any(service) AS svc"
        f" FROM events WHERE {where} AND pattern_id != 0 GROUP BY pid HAVING recent > 0 ORDER BY recent DESC"
        " LIMIT 1000",
        params,
    )
    out = []
    for r in rows:
        pid, total, recent = int(r["pid"]), int(r["total"]), int(r["recent"])
        hexid = format_pattern_id(pid)
        if p.mode == "new":
            if total != recent:
                continue
            title, summary, value, threshold = (
                f"New pattern in {r['svc'] or 'unknown service'}",
                f"Pattern {hexid} first seen in the last {p.window_s}s ({recent} events).",
                float(recent),
                None,
            )
        else:
            baseline = (total - recent) / p.baseline_windows
            if max(recent, baseline) < p.min_count:
                continue
            ratio = recent / baseline if baseline else float("inf")
            if 1 / p.factor < ratio < p.factor:
                continue
            direction = "up" if ratio >= p.factor else "down"
            title = f"Pattern rate {direction} in {r['svc'] or 'unknown service'}"
            summary = f"Pattern {hexid}: {recent} events in the last {p.window_s}s vs {baseline:.1f} per window before."
            value, threshold = (ratio if ratio != float("inf") else float(recent)), p.factor
        sample_scope = Scope(rule.tenant, f"pattern_id:{hexid}", from_us=now_us - win, to_us=now_us, now_us=now_us)
        sample_events = search(store, sample_scope, limit=samples).events
        out.append(
            Signal(
                rule,
                hexid,
                matches=recent,
                title=title,
                summary=summary,
                service=str(r["svc"]),
                pattern_id=hexid,
                samples=[sample_line(e) for e in sample_events],
                value=value,
                threshold=threshold,
            )
        )
    return out


def _eval_silence(rule: Rule, store: EventStore, now_us: int) -> list[Signal]:
    p: SilenceParams = rule.params
    quiet_us = int(p.minutes * 60 * 1_000_000)
    q = f"service:{phrase(p.service)}" if p.service else ""
    scope = Scope(rule.tenant, q, from_us=now_us - max(p.lookback_s * 1_000_000, quiet_us * 2), to_us=now_us)
    where, params = scope.where()
    rows = store.rows(
        f"SELECT service AS svc, toUnixTimestamp64Micro(max(ts)) AS last FROM events WHERE {where} GROUP BY svc",
        params,
    )
    last = {str(r["svc"]): int(r["last"]) for r in rows}
    watched: Iterable[str] = [p.service] if p.service else list(last)
    out = []
    for svc in watched:
        seen = last.get(svc)
        if seen is not None and now_us - seen < quiet_us:
            continue
        since = f"since {iso_micros(seen)}" if seen is not None else f"for more than {p.lookback_s}s"
        out.append(
            Signal(
                rule,
                svc or "(no service)",
                matches=0,
                title=f"{svc or 'unknown service'} has sent nothing for {p.minutes:g} minutes",
                summary=f"No events from {svc or 'unknown service'} {since}.",
                service=svc,
                value=float((now_us - seen) / 60_000_000) if seen is not None else None,
                threshold=p.minutes,
            )
        )
    return out
