"""Sessions in the pipeline: events grouped by a key (block, request or trace id), closed when idle,
scored by a ``SessionModel`` learned from the service's own earlier sessions.

Pure like the online detector: the caller passes timestamps in and calls ``tick(now_us)``. Per
(tenant, service) the first ``train_sessions`` closed sessions train the model (no alerts until
then); afterwards every closed session is scored, and those that score at or above
``threshold`` (0.5 is the model's own threshold) become ``Anomaly(kind="session")``. Sessions
the model does not flag feed a bounded sample that refits the model every ``refit_every``
closed sessions, so it follows slow change without learning the anomalies it reported.

Fixed or sliding **windows** per service (``window_events``, ``window_step``) are sessions too:
every ``window_step`` events of a service, its last ``window_events`` events are scored by a
model of that service's earlier windows (``Anomaly(kind="window")``), for logs without a session
key.

**Feedback retrains.** The tracker remembers the sessions it flagged (bounded, ``max_flagged``).
A false positive makes that session part of what the service's model learns as normal: never
trimmed as an outlier, its residual within the structure limit, and in enough copies that its
events are no longer rare (``rare_probability`` × sample size × 2); the model refits at once, so
sessions like it stop being flagged, not only that one. Calling it real takes it out again and
refits. At most ``max_accepted`` distinct sessions are kept per service (the oldest go first).
"""

from __future__ import annotations

import math
import random
import sys
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from logloupe.analyse.anomaly.sessions import (
    DETECT_EXCLUSIVE_EVENTS,
    DETECT_LINE_RARITY,
    DETECT_STRUCTURE_SHARE,
    DETECT_UNFINISHED,
    SessionModel,
)
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
    # Windows per service: 0 turns them off; a step of 0 means window_events (fixed windows).
    window_events: int = 0
    window_step: int = 0
    max_flagged: int = 10_000
    # A key that comes back within this many seconds after its session closed idle continues that
    # session (an HDFS block written, closed, deleted hours later): scored again, whole, when it
    # closes. Bounded by max_open_sessions remembered keys; 0 turns it off.
    continue_s: int = 86_400
    max_accepted: int = 1_000
    # The score a session at its model's own limit (excess 1) is reported with: 0.5 is the model's
    # scale (excess / (1 + excess)); the server sets its default anomaly_threshold (0.7), so that
    # its threshold means "at the model's limit" for sessions too (see ``reported_score``).
    limit_score: float = 0.5
    # The service's SessionModel (see sessions.py and docs/anomaly.md): the trimmed fit (robust_core
    # 0), the skeleton share, the unfinished rule, line rarity for fixed windows.
    robust_core: float = 0.0
    structure_share: float = DETECT_STRUCTURE_SHARE
    unfinished: bool = DETECT_UNFINISHED
    line_rarity: bool = DETECT_LINE_RARITY
    exclusive_events: bool = DETECT_EXCLUSIVE_EVENTS


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
    # Sessions a user called normal: learned at every refit, never trimmed (SessionModel.fit).
    accepted: list[tuple[str, ...]] = field(default_factory=list)


@dataclass(slots=True)
class _Window:
    events: deque[tuple[str, str, int]]  # (pattern, event id, ts)
    since_last: int = 0


def reported_score(excess: float, limit_score: float = 0.5) -> float:
    """A session model's excess as a score in [0, 1] with the model's limit (excess 1) at
    ``limit_score``: ``excess / (1 + excess)`` when it is 0.5, stretched piecewise linearly
    otherwise (monotone; 0 stays 0, an infinite excess 1)."""
    model = excess / (1.0 + excess) if excess < math.inf else 1.0
    if model <= 0.5:
        return model / 0.5 * limit_score
    return limit_score + (model - 0.5) / 0.5 * (1.0 - limit_score)


class SessionTracker:
    def __init__(self, settings: TrackerSettings | None = None) -> None:
        self.settings = settings or TrackerSettings()
        self._open: dict[tuple[str, str, str], _Open] = {}
        self._models: dict[tuple[str, str, str], _ServiceModel] = {}
        self._windows: dict[tuple[str, str], _Window] = {}
        # Sessions closed idle, oldest first, that a later event of the same key continues.
        self._closed: OrderedDict[tuple[str, str, str], _Open] = OrderedDict()
        # (tenant, service, first event id) -> (model kind, the flagged session's patterns)
        self._flagged: OrderedDict[tuple[str, str, str], tuple[str, tuple[str, ...]]] = OrderedDict()
        self._rng = random.Random(self.settings.seed)

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("_closed", OrderedDict())  # absent from older checkpoints

    def add(self, tenant: str, service: str, key: str, ts_us: int, pattern_id: int, event_id: str) -> list[Anomaly]:
        """Adds one event to its session; returns anomalies of sessions this closed."""
        out: list[Anomaly] = []
        ident = (tenant, service, key)
        session = self._open.get(ident)
        if session is None:
            if len(self._open) >= self.settings.max_open_sessions:
                oldest = min(self._open, key=lambda k: self._open[k].last_us)
                out += self._close(self._open.pop(oldest))
            earlier = self._closed.pop(ident, None)
            if earlier is not None:
                # The rest of a session closed while it waited (a block's deletion, hours after it
                # was written): it was judged as it stood then; now it is judged whole.
                session = self._open[ident] = earlier
            else:
                session = self._open[ident] = _Open(tenant, service, key, ts_us, ts_us)
        session.last_us = max(session.last_us, ts_us)
        # Interned: open and remembered sessions hold one string per event, mostly the same few.
        session.patterns.append(sys.intern(format_pattern_id(pattern_id)))
        if len(session.event_ids) < self.settings.max_evidence:
            session.event_ids.append(event_id)
        if len(session.patterns) >= self.settings.max_session_events:
            out += self._close(self._open.pop(ident))
        return out

    def add_to_window(self, tenant: str, service: str, ts_us: int, pattern_id: int, event_id: str) -> list[Anomaly]:
        """Adds one event to its service's window; returns the anomaly of a window this completed."""
        s = self.settings
        if s.window_events <= 0:
            return []
        window = self._windows.get((tenant, service))
        if window is None:
            window = self._windows[(tenant, service)] = _Window(deque(maxlen=s.window_events))
        window.events.append((sys.intern(format_pattern_id(pattern_id)), event_id, ts_us))
        window.since_last += 1
        if len(window.events) < s.window_events or window.since_last < (s.window_step or s.window_events):
            return []
        window.since_last = 0
        patterns = tuple(p for p, _, _ in window.events)
        ids = [e for _, e, _ in window.events]
        evidence = tuple(ids[: s.max_evidence])
        key = f"window {ids[0]}..{ids[-1]} ({len(ids)} events)"
        return self._judge(tenant, service, "window", key, patterns, evidence, ts_us)

    def tick(self, now_us: int) -> list[Anomaly]:
        """Closes sessions idle for ``idle_close_s`` and scores them."""
        s = self.settings
        limit = now_us - s.idle_close_s * 1_000_000
        out: list[Anomaly] = []
        closed = self._closed
        for ident in [k for k, v in self._open.items() if v.last_us <= limit]:
            session = self._open.pop(ident)
            out += self._close(session)
            if s.continue_s > 0:
                closed[ident] = session
                closed.move_to_end(ident)
        forget = now_us - s.continue_s * 1_000_000
        while closed and (len(closed) > s.max_open_sessions or next(iter(closed.values())).last_us <= forget):
            closed.popitem(last=False)
        return out

    def _close(self, session: _Open) -> list[Anomaly]:
        events = tuple(session.patterns)
        label = f"session {session.key} ({len(events)} events)"
        return self._judge(
            session.tenant, session.service, "session", label, events, tuple(session.event_ids), session.last_us
        )

    def _judge(
        self,
        tenant: str,
        service: str,
        kind: str,
        label: str,
        events: tuple[str, ...],
        event_ids: tuple[str, ...],
        ts_us: int,
    ) -> list[Anomaly]:
        """Scores a closed session or window with its service's model, then learns from it."""
        s = self.settings
        state = self._models.setdefault((tenant, service, kind), _ServiceModel())
        state.seen += 1
        out: list[Anomaly] = []
        flagged = False
        if state.model is not None:
            result = state.model.score(events)
            score = reported_score(result.excess, s.limit_score)
            if score >= s.threshold:
                flagged = True
                rare = [parse_pattern_id(result.rarest)] if result.rarity >= 1 and result.rarest else []
                if result.exclusive >= 1 and result.outcome:
                    outcome = parse_pattern_id(result.outcome)
                    if outcome not in rare:
                        rare.append(outcome)
                out.append(
                    Anomaly(
                        tenant,
                        service,
                        kind,
                        score,
                        ts_us,
                        f"{label}: " + "; ".join(result.reasons),
                        tuple(rare),
                        event_ids,
                    )
                )
                if event_ids:
                    self._flagged[(tenant, service, event_ids[0])] = (kind, events)
                    while len(self._flagged) > s.max_flagged:
                        self._flagged.popitem(last=False)
        if not flagged:
            self._remember(state, events)
        state.since_fit += 1
        if (state.model is None and len(state.sample) >= s.train_sessions) or (
            state.model is not None and state.since_fit >= s.refit_every
        ):
            self._refit(state)
        return out

    def _refit(self, state: _ServiceModel) -> None:
        s = self.settings
        model = SessionModel(
            robust_core=s.robust_core,
            structure_share=s.structure_share,
            unfinished=s.unfinished,
            line_rarity=s.line_rarity,
            exclusive_events=s.exclusive_events,
        )
        state.model = model.fit(state.sample, normal=state.accepted)
        state.since_fit = 0

    def feedback(self, anomaly: Anomaly, real: bool) -> bool:
        """Retrains the service's model on a flagged session called a false positive, or takes
        it out again when called real. False when the tracker does not know the session (too
        old, or never flagged here): the caller falls back to muting."""
        if anomaly.kind not in ("session", "window") or not anomaly.event_ids:
            return False
        entry = self._flagged.get((anomaly.tenant, anomaly.service, anomaly.event_ids[0]))
        if entry is None:
            return False
        kind, events = entry
        state = self._models.get((anomaly.tenant, anomaly.service, kind))
        if state is None or state.model is None:
            return False
        if real:
            state.accepted = [a for a in state.accepted if a != events]
        elif events not in state.accepted:
            # Enough copies that its events are no longer rare to the model (twice the limit).
            copies = max(1, math.ceil(2 * state.model.rare_probability * max(len(state.sample), 1)))
            state.accepted += [events] * copies
            distinct = list(dict.fromkeys(state.accepted))
            if len(distinct) > self.settings.max_accepted:
                drop = set(distinct[: len(distinct) - self.settings.max_accepted])
                state.accepted = [a for a in state.accepted if a not in drop]
        self._refit(state)
        return True

    def _remember(self, state: _ServiceModel, events: tuple[str, ...]) -> None:
        """Reservoir sample of unflagged sessions, bounded by ``sample_size``."""
        if len(state.sample) < self.settings.sample_size:
            state.sample.append(events)
            return
        slot = self._rng.randrange(state.seen)
        if slot < self.settings.sample_size:
            state.sample[slot] = events
