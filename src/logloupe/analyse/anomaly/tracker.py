"""Sessions in the pipeline: events grouped by a key (block, request or trace id), closed when idle,
scored by a ``SessionModel`` learned from the service's own earlier sessions.

Pure like the online detector: the caller passes timestamps in and calls ``tick(now_us)``. Per
(tenant, service) the first ``train_sessions`` closed sessions train the model (no alerts until
then); afterwards every closed session is scored, and those that score at or above
``threshold`` (0.5 is the model's own threshold) become ``Anomaly(kind="session")``. Sessions
the model does not flag feed a bounded sample that refits the model every ``refit_every``
closed sessions, so it follows slow change without learning the anomalies it reported.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from logloupe.analyse.anomaly.sessions import SessionModel
from logloupe.model import Anomaly, format_pattern_id, parse_pattern_id


@dataclass(frozen=True, slots=True)
class TrackerSettings:
    idle_close_s: int = 300
    max_session_events: int = 10_000
    max_open_sessions: int = 100_000
    train_sessions: int = 2_000
    refit_every: int = 20_000
    sample_size: int = 20_000
    threshold: float = 0.5
    max_evidence: int = 20
    seed: int = 0


@dataclass(slots=True)
class _Open:
    tenant: str
    service: str
    key: str
    first_us: int
    last_us: int
    patterns: list[str] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _ServiceModel:
    model: SessionModel | None = None
    sample: list[tuple[str, ...]] = field(default_factory=list)
    seen: int = 0
    since_fit: int = 0


class SessionTracker:
    def __init__(self, settings: TrackerSettings | None = None) -> None:
        self.settings = settings or TrackerSettings()
        self._open: dict[tuple[str, str, str], _Open] = {}
        self._models: dict[tuple[str, str], _ServiceModel] = {}
        self._rng = random.Random(self.settings.seed)

    def add(self, tenant: str, service: str, key: str, ts_us: int, pattern_id: int, event_id: str) -> list[Anomaly]:
        """Adds one event to its session; returns anomalies of sessions this closed."""
        out: list[Anomaly] = []
        ident = (tenant, service, key)
        session = self._open.get(ident)
        if session is None:
            if len(self._open) >= self.settings.max_open_sessions:
                oldest = min(self._open, key=lambda k: self._open[k].last_us)
                out += self._close(self._open.pop(oldest))
            session = self._open[ident] = _Open(tenant, service, key, ts_us, ts_us)
        session.last_us = max(session.last_us, ts_us)
        session.patterns.append(format_pattern_id(pattern_id))
        if len(session.event_ids) < self.settings.max_evidence:
            session.event_ids.append(event_id)
        if len(session.patterns) >= self.settings.max_session_events:
            out += self._close(self._open.pop(ident))
        return out

    def tick(self, now_us: int) -> list[Anomaly]:
        """Closes sessions idle for ``idle_close_s`` and scores them."""
        limit = now_us - self.settings.idle_close_s * 1_000_000
        out: list[Anomaly] = []
        for ident in [k for k, s in self._open.items() if s.last_us <= limit]:
            out += self._close(self._open.pop(ident))
        return out

    def _close(self, session: _Open) -> list[Anomaly]:
        s = self.settings
        state = self._models.setdefault((session.tenant, session.service), _ServiceModel())
        events = tuple(session.patterns)
        state.seen += 1
        out: list[Anomaly] = []
        flagged = False
        if state.model is not None:
            result = state.model.score(events)
            if result.score >= s.threshold:
                flagged = True
                rare = [parse_pattern_id(result.rarest)] if result.rarity >= 1 and result.rarest else []
                out.append(
                    Anomaly(
                        session.tenant,
                        session.service,
                        "session",
                        result.score,
                        session.last_us,
                        f"session {session.key} ({len(events)} events): " + "; ".join(result.reasons),
                        tuple(rare),
                        tuple(session.event_ids),
                    )
                )
        if not flagged:
            self._remember(state, events)
        state.since_fit += 1
        if (state.model is None and len(state.sample) >= s.train_sessions) or (
            state.model is not None and state.since_fit >= s.refit_every
        ):
            state.model = SessionModel().fit(state.sample)
            state.since_fit = 0
        return out

    def _remember(self, state: _ServiceModel, events: tuple[str, ...]) -> None:
        """Reservoir sample of unflagged sessions, bounded by ``sample_size``."""
        if len(state.sample) < self.settings.sample_size:
            state.sample.append(events)
            return
        slot = self._rng.randrange(state.seen)
        if slot < self.settings.sample_size:
            state.sample[slot] = events
