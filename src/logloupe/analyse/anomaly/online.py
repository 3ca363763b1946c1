"""The online detector the pipeline feeds, per tenant and service; pure, the clock is passed in.

Per (tenant, service) it watches:

- **new patterns**: the first occurrence of a pattern in a service that is past its warm-up,
  scored by level (a new FATAL pattern scores 1.0, a new INFO one 0.5);
- **rates**: events per bucket of the service, of each level from WARN up, and of each pattern,
  against their own seasonal EWMA + MAD baselines (``rates.RateBaseline``). Spikes for all;
  drops and "went silent" for the service as a whole;
- **error ratio**: the share of ERROR and FATAL events among the service's events per bucket.

Buckets close when an event of a later bucket arrives, or on ``tick(now_us)`` (which the
pipeline calls periodically, so that silence is noticed when no events come at all). Only
anomalies scoring at or above ``threshold`` are returned. Each names the patterns that drove
it (for a service spike: the patterns that grew most against their own baselines) and up to
``max_evidence`` event ids.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from logloupe.analyse.anomaly.rates import RateBaseline, RatioBaseline, squash
from logloupe.model import Anomaly, Level

LEVEL_WEIGHTS: dict[int, float] = {
    Level.TRACE: 0.3,
    Level.DEBUG: 0.3,
    Level.INFO: 0.5,
    Level.WARN: 0.75,
    Level.ERROR: 0.9,
    Level.FATAL: 1.0,
}
# The classifier's verdict raises a new pattern's weight: an INFO line that reads like an incident
# ("connection pool exhausted, retrying") matters as much as an ERROR.
CLASS_WEIGHTS: dict[str, float] = {"incident": 0.9, "preventive_action": 0.75}


@dataclass(frozen=True, slots=True)
class OnlineSettings:
    threshold: float = 0.7
    bucket_s: int = 60
    # Before this many buckets of history a series' baseline is not trusted.
    min_history: int = 30
    # A service's new patterns alert only after it has this many events and this much history.
    warmup_events: int = 1000
    warmup_s: int = 3600
    # Smallest absolute change (events per bucket) worth an alert, whatever the z-score.
    min_delta: float = 10.0
    # Silence: the service was expected to send at least this many events per bucket.
    silence_min_rate: float = 1.0
    # A silence this long (in buckets) becomes the service's new normal.
    silence_learn_after: int = 60
    min_ratio_events: int = 20
    # |z| that scores 0.7 (the score curve is |z| / (|z| + k)); independent of ``threshold``.
    z_reference: float = 6.0
    max_evidence: int = 20
    # Longest gap filled bucket by bucket; longer gaps count as this many empty buckets.
    max_gap_buckets: int = 1440
    # Series not seen for this long are forgotten (bounded memory).
    idle_forget_s: int = 8 * 86400


@dataclass(slots=True)
class _Series:
    """One counted stream: a service, a level of a service, or a pattern of a service."""

    baseline: RateBaseline
    bucket: int
    count: int = 0
    last_seen_us: int = 0
    evidence: deque[str] = field(default_factory=deque)


@dataclass(slots=True)
class _Service:
    total: _Series
    levels: dict[int, _Series] = field(default_factory=dict)
    patterns: dict[int, _Series] = field(default_factory=dict)
    first_us: int = 0
    events: int = 0
    errors: int = 0
    error_evidence: deque[str] = field(default_factory=deque)
    error_patterns: Counter[int] = field(default_factory=Counter)
    ratio: RatioBaseline = field(default_factory=RatioBaseline)
    silent_buckets: int = 0
    silent_expected: float = 0.0
    silence_reported: bool = False


class OnlineDetector:
    def __init__(self, settings: OnlineSettings | None = None) -> None:
        self.settings = settings or OnlineSettings()
        self._bucket_us = self.settings.bucket_s * 1_000_000
        self._services: dict[tuple[str, str], _Service] = {}
        self._muted: set[tuple[str, str, str, int]] = set()

    # -- feeding ----------------------------------------------------------------------------
    def observe(
        self,
        tenant: str,
        service: str,
        ts_us: int,
        level: int,
        pattern_id: int,
        event_id: str,
        classification: str = "",
    ) -> list[Anomaly]:
        """Counts one event; returns the anomalies at or above the threshold it revealed."""
        out: list[Anomaly] = []
        bucket = ts_us // self._bucket_us
        key = (tenant, service)
        svc = self._services.get(key)
        if svc is None:
            svc = _Service(total=self._new_series(bucket), first_us=ts_us)
            self._services[key] = svc
        # Late events count in the open bucket: the past is not re-evaluated.
        bucket = max(bucket, svc.total.bucket)
        if bucket > svc.total.bucket:
            out += self._close_service(tenant, service, svc, bucket)

        if pattern_id not in svc.patterns:
            out += self._new_pattern(tenant, service, svc, ts_us, level, pattern_id, event_id, classification)
            svc.patterns[pattern_id] = self._new_series(bucket)
        self._count(svc.total, ts_us, event_id)
        self._count(svc.patterns[pattern_id], ts_us, event_id)
        if level >= Level.WARN:
            series = svc.levels.get(level)
            if series is None:
                series = svc.levels[level] = self._new_series(bucket)
            self._count(series, ts_us, event_id)
        if level >= Level.ERROR:
            svc.errors += 1
            svc.error_patterns[pattern_id] += 1
            self._keep(svc.error_evidence, event_id)
        svc.events += 1
        return self._emit(out)

    def observe_many(
        self, rows: Sequence[tuple[str, str, int, int, int, str]], event_id: Callable[[int], str]
    ) -> list[Anomaly]:
        """``observe`` over ``(tenant, service, ts_us, level, pattern_id, classification)`` rows in
        order, with the same effects and anomalies; ``event_id(i)`` names row ``i`` and is called only
        for the rows kept as evidence (the ingest path's batch form: most rows only count)."""
        out: list[Anomaly] = []
        services = self._services
        bucket_us = self._bucket_us
        max_evidence = self.settings.max_evidence
        warn, error = int(Level.WARN), int(Level.ERROR)
        svc: _Service | None = None
        last_tenant: str | None = None
        last_service: str | None = None
        for i, (tenant, service, ts_us, level, pattern_id, classification) in enumerate(rows):
            eid: str | None = None
            bucket = ts_us // bucket_us
            if svc is None or tenant != last_tenant or service != last_service:
                svc = services.get((tenant, service))
                if svc is None:
                    svc = _Service(total=self._new_series(bucket), first_us=ts_us)
                    services[(tenant, service)] = svc
                last_tenant, last_service = tenant, service
            total = svc.total
            # Late events count in the open bucket: the past is not re-evaluated.
            if bucket > total.bucket:
                out += self._close_service(tenant, service, svc, bucket)
            else:
                bucket = total.bucket
            series = svc.patterns.get(pattern_id)
            if series is None:
                eid = event_id(i)
                out += self._new_pattern(tenant, service, svc, ts_us, level, pattern_id, eid, classification)
                series = svc.patterns[pattern_id] = self._new_series(bucket)
            # _count, inlined, for the service and the pattern
            total.count += 1
            if ts_us > total.last_seen_us:
                total.last_seen_us = ts_us
            if len(total.evidence) < max_evidence:
                eid = eid or event_id(i)
                total.evidence.append(eid)
            series.count += 1
            if ts_us > series.last_seen_us:
                series.last_seen_us = ts_us
            if len(series.evidence) < max_evidence:
                eid = eid or event_id(i)
                series.evidence.append(eid)
            if level >= warn:
                by_level = svc.levels.get(level)
                if by_level is None:
                    by_level = svc.levels[level] = self._new_series(bucket)
                by_level.count += 1
                if ts_us > by_level.last_seen_us:
                    by_level.last_seen_us = ts_us
                if len(by_level.evidence) < max_evidence:
                    eid = eid or event_id(i)
                    by_level.evidence.append(eid)
                if level >= error:
                    svc.errors += 1
                    svc.error_patterns[pattern_id] += 1
                    if len(svc.error_evidence) < max_evidence:
                        svc.error_evidence.append(eid or event_id(i))
            svc.events += 1
        return self._emit(out)

    def tick(self, now_us: int) -> list[Anomaly]:
        """Closes every bucket that ended before ``now_us``: drops and silence surface here."""
        out: list[Anomaly] = []
        bucket = now_us // self._bucket_us
        forget_us = self.settings.idle_forget_s * 1_000_000
        for key in list(self._services):
            svc = self._services[key]
            if now_us - svc.total.last_seen_us > forget_us and svc.total.last_seen_us:
                del self._services[key]
                continue
            if bucket > svc.total.bucket:
                out += self._close_service(key[0], key[1], svc, bucket)
                # Patterns idle that long are forgotten too (one that returns counts as new again).
                stale = [p for p, ser in svc.patterns.items() if now_us - ser.last_seen_us > forget_us]
                for pattern_id in stale:
                    del svc.patterns[pattern_id]
        return self._emit(out)

    def feedback(self, anomaly: Anomaly, real: bool) -> None:
        """A false positive mutes that kind of anomaly for that service (and pattern) from now
        on; confirming one as real lifts such a mute."""
        key = _mute_key(anomaly)
        if real:
            self._muted.discard(key)
        else:
            self._muted.add(key)

    def _emit(self, found: list[Anomaly]) -> list[Anomaly]:
        return [
            a
            for a in found
            if a.score >= self.settings.threshold and (not self._muted or _mute_key(a) not in self._muted)
        ]

    # -- internals --------------------------------------------------------------------------
    def _new_series(self, bucket: int) -> _Series:
        return _Series(RateBaseline(), bucket)

    def _keep(self, evidence: deque[str], event_id: str) -> None:
        if len(evidence) < self.settings.max_evidence:
            evidence.append(event_id)

    def _count(self, series: _Series, ts_us: int, event_id: str) -> None:
        series.count += 1
        if ts_us > series.last_seen_us:
            series.last_seen_us = ts_us
        if len(series.evidence) < self.settings.max_evidence:
            series.evidence.append(event_id)

    def _hour(self, bucket: int) -> int:
        return (bucket * self.settings.bucket_s // 3600) % 24

    def _new_pattern(
        self,
        tenant: str,
        service: str,
        svc: _Service,
        ts_us: int,
        level: int,
        pattern_id: int,
        event_id: str,
        classification: str,
    ) -> list[Anomaly]:
        s = self.settings
        if svc.events < s.warmup_events or ts_us - svc.first_us < s.warmup_s * 1_000_000:
            return []
        weight = max(
            LEVEL_WEIGHTS[min(max(int(level), Level.TRACE), Level.FATAL)], CLASS_WEIGHTS.get(classification, 0.0)
        )
        name = _level_name(level)
        if classification:
            name += f", classified {classification}"
        return [
            Anomaly(
                tenant,
                service,
                "new_pattern",
                weight,
                ts_us,
                f"pattern {pattern_id:016x} seen for the first time in {service} "
                f"(level {name}, after {svc.events} events of {len(svc.patterns)} known patterns)",
                (pattern_id,),
                (event_id,),
            )
        ]

    def _close_service(self, tenant: str, service: str, svc: _Service, upto: int) -> list[Anomaly]:
        """Evaluates and learns from every bucket of this service before ``upto``."""
        out: list[Anomaly] = []
        s = self.settings
        first = svc.total.bucket
        gap = upto - first
        steps = min(gap, s.max_gap_buckets)
        for i in range(steps):
            bucket = first + i if i < steps - 1 or gap <= s.max_gap_buckets else upto - 1
            out += self._close_bucket(tenant, service, svc, bucket)
        svc.total.bucket = upto
        for series in (*svc.levels.values(), *svc.patterns.values()):
            series.bucket = upto
        return out

    def _close_bucket(self, tenant: str, service: str, svc: _Service, bucket: int) -> list[Anomaly]:
        out: list[Anomaly] = []
        hour = self._hour(bucket)
        end_us = (bucket + 1) * self._bucket_us
        total = svc.total
        # Pattern series first: their baselines explain the service's change.
        drivers: list[tuple[float, int]] = []
        for pattern_id, series in svc.patterns.items():
            if series.count == 0 and series.baseline.n == 0:
                continue
            mean, _ = series.baseline.expected(hour)
            if series.count:
                drivers.append((series.count - mean, pattern_id))
                out += self._check_spike(
                    tenant, service, series, hour, end_us, f"pattern {pattern_id:016x}", (pattern_id,)
                )
            if total.count:  # a silent service is one anomaly (silence), not one per pattern
                what = f"pattern {pattern_id:016x}: "
                out += self._check_rate_drop(tenant, service, series, hour, end_us, what, (pattern_id,))
            self._learn(series, hour)
        drivers.sort(reverse=True)
        top = tuple(p for d, p in drivers[:3] if d > 0)
        for level, series in svc.levels.items():
            out += self._check_spike(tenant, service, series, hour, end_us, f"{_level_name(level)} events", top)
            self._learn(series, hour)

        out += self._check_spike(tenant, service, total, hour, end_us, "events", top, drivers)
        out += self._check_drop(tenant, service, svc, hour, end_us)
        out += self._check_ratio(tenant, service, svc, end_us)
        if 0 < svc.silent_buckets <= self.settings.silence_learn_after:
            total.count = 0  # a silent stretch is not learned as normal until it has lasted
            total.evidence.clear()
        else:
            self._learn(total, hour)
        svc.errors = 0
        svc.error_patterns.clear()
        svc.error_evidence.clear()
        return out

    def _learn(self, series: _Series, hour: int) -> None:
        series.baseline.update(series.count, hour)
        series.count = 0
        series.evidence.clear()

    def _check_spike(
        self,
        tenant: str,
        service: str,
        series: _Series,
        hour: int,
        end_us: int,
        what: str,
        patterns: tuple[int, ...],
        drivers: list[tuple[float, int]] | None = None,
    ) -> list[Anomaly]:
        s = self.settings
        base = series.baseline
        if base.n < s.min_history or series.count == 0:
            return []
        mean, _ = base.expected(hour)
        if series.count - mean < s.min_delta:
            return []
        z = base.zscore(series.count, hour)
        if z <= 0:
            return []
        explanation = f"{series.count} {what} in {s.bucket_s}s against a usual {mean:.1f} (z={z:.1f})"
        if drivers:
            parts = [f"{p:016x} +{d:.0f}" for d, p in drivers[:3] if d > 0]
            if parts:
                explanation += "; grew most: " + ", ".join(parts)
        return [
            Anomaly(
                tenant,
                service,
                "rate_spike",
                squash(z, s.z_reference),
                end_us,
                explanation,
                patterns,
                tuple(series.evidence),
            )
        ]

    def _check_rate_drop(
        self, tenant: str, service: str, series: _Series, hour: int, end_us: int, what: str, patterns: tuple[int, ...]
    ) -> list[Anomaly]:
        """A series' bucket fell well below its baseline: the service's, or one pattern's while the
        service still logs (a heartbeat stopped, a job no longer logs). Levels are not judged for drops:
        only WARN and up are counted by level, and fewer errors is a recovery."""
        s = self.settings
        base = series.baseline
        if base.n < s.min_history:
            return []
        mean, _ = base.expected(hour)
        if mean - series.count < s.min_delta:
            return []
        z = base.zscore(series.count, hour)
        explanation = f"{what}{series.count} events in {s.bucket_s}s against a usual {mean:.1f} (z={z:.1f})"
        return [
            Anomaly(
                tenant, service, "rate_drop", squash(z, s.z_reference), end_us, explanation, patterns,
                tuple(series.evidence),
            )
        ]  # fmt: skip

    def _check_drop(self, tenant: str, service: str, svc: _Service, hour: int, end_us: int) -> list[Anomaly]:
        s = self.settings
        series = svc.total
        base = series.baseline
        if base.n < s.min_history:
            return []
        mean, sigma = base.expected(hour)
        if series.count:
            svc.silent_buckets = 0
            svc.silent_expected = 0.0
            svc.silence_reported = False
            return self._check_rate_drop(tenant, service, series, hour, end_us, "", ())
        if mean < s.silence_min_rate:
            return []
        svc.silent_buckets += 1
        svc.silent_expected += mean
        if svc.silence_reported:
            return []
        # Zero events over k buckets where ~E were expected: spread adds up over the buckets.
        k = svc.silent_buckets
        z = svc.silent_expected / (sigma * sigma * k + svc.silent_expected + 1.0) ** 0.5
        score = squash(z, s.z_reference)
        if score < s.threshold:
            return []
        svc.silence_reported = True
        return [
            Anomaly(
                tenant,
                service,
                "silence",
                score,
                end_us,
                f"{service} went silent: no events for {k * s.bucket_s}s where about "
                f"{svc.silent_expected:.0f} were expected",
                (),
                (),
            )
        ]

    def _check_ratio(self, tenant: str, service: str, svc: _Service, end_us: int) -> list[Anomaly]:
        s = self.settings
        total = svc.total.count
        if total < s.min_ratio_events:
            return []
        base = svc.ratio
        out: list[Anomaly] = []
        if base.n >= s.min_history:
            z = base.zscore(svc.errors, total)
            if z > 0 and svc.errors >= 3:
                top = tuple(p for p, _ in svc.error_patterns.most_common(3))
                out.append(
                    Anomaly(
                        tenant,
                        service,
                        "error_ratio",
                        squash(z, s.z_reference),
                        end_us,
                        f"{svc.errors} of {total} events were errors ({svc.errors / total:.1%}) "
                        f"against a usual {base.ewma.mean:.1%} (z={z:.1f}); top error patterns: "
                        + ", ".join(f"{p:016x}" for p in top),
                        top,
                        tuple(svc.error_evidence),
                    )
                )
        base.update(svc.errors, total)
        return out


def _mute_key(anomaly: Anomaly) -> tuple[str, str, str, int]:
    pattern_id = anomaly.pattern_ids[0] if anomaly.pattern_ids else 0
    return (anomaly.tenant, anomaly.service, anomaly.kind, pattern_id)


def _level_name(level: int) -> str:
    try:
        return Level(level).name
    except ValueError:
        return f"level {level}"
