"""A model of normal sessions learned without labels, and its reader for session CSV files.

A session is a sequence of event (pattern) ids: the events of one block, request or trace, or a
fixed window of one service's events. Training data is unlabelled and assumed mostly normal. A new
session is surprising in three ways, each measured against its own threshold so that 1.0 means
"just at the threshold":

- **event rarity**: an event seen in few training sessions (or never) — ``-log`` of its
  smoothed document frequency against ``-log(max(rare_probability, 1/(N+1)))``;
- **transition rarity** (off by default): a step ``a → b`` rarely taken from ``a`` in training;
  ``boundary_weight`` judges only how sessions start and end (never for fixed windows),
  ``transition_weight`` every interior step — concurrent writers make those noisy;
- **count structure**: the residual of the session's log-count vector outside the principal
  subspace of the training vectors (Xu et al., SOSP 2009), against the Q-statistic threshold
  (Jackson & Mudholkar) or, if larger, the training residuals' own high quantile. The subspace is
  fitted after trimming the ``structure_trim`` share of training sessions farthest from the bulk
  (three rounds), so that a small cluster of anomalies in the training data does not claim a
  principal direction of its own. With ``structure_share``, the structure is refitted on the
  session's *skeleton* (the events nearly every explained session holds), leaving optional
  events to their rarity;
- with ``unfinished``, a session whose counts equal a *complete cut* of normal training sessions
  (stopped between two complete steps, e.g. still in flight when the log was cut) is not flagged
  by the count structure alone;
- with ``exclusive_events``, **exclusive outcomes**: an optional event that belongs to a set of
  events no explained training session combines (each of them common, together never), while
  more of those sessions hold none of the set than hold the event — one of several ways a
  session can go wrong, where most go none of them (see ``_learn_exclusive``).

The session's excess is the largest of the ratios; ``score = excess / (1 + excess)`` puts the
threshold at 0.5 and keeps the score in [0, 1].
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from logloupe.errors import InvalidInput

START = "^"
END = "$"

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class SessionScore:
    """How surprising one session is; ``reasons`` say which events or steps drove it."""

    score: float
    anomaly: bool
    excess: float
    rarity: float
    transition: float
    structure: float
    reasons: tuple[str, ...]
    # The session's rarest event (the evidence when ``rarity`` drove the score).
    rarest: str = ""
    # How many normal training sessions pass through this session's counts part-way, when the
    # count structure was waived for it as unfinished (``SessionModel(unfinished=True)``).
    unfinished: int = 0
    # How many times more explained training sessions hold none of its exclusive set than hold
    # the session's exclusive outcome (``SessionModel(exclusive_events=True)``), and that event.
    exclusive: float = 0.0
    outcome: str = ""


@dataclass(frozen=True, slots=True)
class SessionRow:
    session_id: str
    events: tuple[str, ...]


def read_sessions_csv(path: Path) -> list[SessionRow]:
    """Rows of a ``SessionId,EventSequence`` CSV; other columns (``Label``…) are ignored."""
    # A long session is one long field; the csv module's default cap is 128 KiB.
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:  # -sig: a byte-order mark, as Excel writes
            reader = csv.DictReader(fh)
            fields = reader.fieldnames or []
            if "SessionId" not in fields or "EventSequence" not in fields:
                raise InvalidInput(f"{path}: needs columns SessionId and EventSequence, has {fields}")
            return [SessionRow(row["SessionId"], tuple((row["EventSequence"] or "").split())) for row in reader]
    except OSError as exc:
        raise InvalidInput(f"{path}: {exc.strerror or exc}") from exc
    except (csv.Error, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: not a readable CSV file ({exc})") from exc


def _q_statistic(residual_eigenvalues: FloatArray, c_alpha: float) -> float:
    """Jackson & Mudholkar's upper limit of the squared prediction error."""
    phi1 = float(residual_eigenvalues.sum())
    phi2 = float((residual_eigenvalues**2).sum())
    phi3 = float((residual_eigenvalues**3).sum())
    if phi1 <= 0 or phi2 <= 0:
        return 0.0
    h0 = 1.0 - 2.0 * phi1 * phi3 / (3.0 * phi2**2)
    if abs(h0) < 1e-9:
        h0 = 1e-9
    inner = c_alpha * math.sqrt(2.0 * phi2 * h0**2) / phi1 + 1.0 + phi2 * h0 * (h0 - 1.0) / phi1**2
    return float(phi1 * max(inner, 0.0) ** (1.0 / h0))


# ``logloupe detect``'s default robust core: a training file picked by a user (an export, an
# incident's logs) may hold many anomalies; the streaming tracker samples sessions it did not flag.
DETECT_ROBUST_CORE = 0.55
# ``logloupe detect``'s default for the unfinished rule (``SessionModel(unfinished=...)``): a
# training or test file cut from a log holds the sessions still in flight when it was cut.
DETECT_UNFINISHED = True
# ``logloupe detect``'s default skeleton share (``SessionModel(structure_share=...)``): the count
# structure judges the events nearly every explained training session holds.
DETECT_STRUCTURE_SHARE = 0.95
# ``logloupe detect``'s default for fixed windows (``SessionModel(line_rarity=...)``): an event's
# rarity is its share of the training lines, not of the windows.
DETECT_LINE_RARITY = True
# ``logloupe detect``'s default for exclusive outcomes (``SessionModel(exclusive_events=...)``):
# optional events that no explained training session combines and most do without.
DETECT_EXCLUSIVE_EVENTS = True

# A bound on the maximal sets of exclusive events enumerated (Bron-Kerbosch on a small graph).
_MAX_EXCLUSIVE_SETS = 10_000

# Rounds of the robust fit's concentration and reweighting steps (each stops once stable).
_MAX_ROUNDS = 20

# The structure ratio given to an unfinished session (see SessionModel._learn_cuts).
_UNFINISHED_STRUCTURE = 0.9

# Standard normal quantiles for the Q-statistic's usual confidence levels.
_C_ALPHA = {0.05: 1.6449, 0.01: 2.3263, 0.001: 3.0902, 0.0001: 3.7190}


class SessionModel:
    """Learns what normal sessions look like from unlabelled ones; scores new sessions."""

    def __init__(
        self,
        rare_probability: float = 0.01,
        pca_variance: float = 0.95,
        pca_alpha: float = 0.001,
        residual_quantile: float = 0.999,
        residual_margin: float = 1.5,
        transition_weight: float = 0.0,
        boundary_weight: float = 0.0,
        structure_trim: float = 0.05,
        robust_core: float = 0.0,
        unfinished: bool = False,
        structure_share: float = 0.0,
        line_rarity: bool = False,
        exclusive_events: bool = False,
        exclusive_expected: float = 10.0,
        exclusive_share: float = 0.1,
    ) -> None:
        if not 0 < rare_probability < 1:
            raise InvalidInput("rare_probability must lie in (0, 1)")
        if pca_alpha not in _C_ALPHA:
            raise InvalidInput(f"pca_alpha must be one of {sorted(_C_ALPHA)}")
        self.rare_probability = rare_probability
        self.pca_variance = pca_variance
        self.pca_alpha = pca_alpha
        self.residual_quantile = residual_quantile
        self.residual_margin = residual_margin
        self.transition_weight = transition_weight
        self.boundary_weight = boundary_weight
        self.structure_trim = structure_trim
        if not 0 <= robust_core <= 1:
            raise InvalidInput("robust_core must lie in [0, 1]")
        # 0 or 1: the trimmed fit (structure_trim) instead of the robust core.
        self.robust_core = robust_core
        # Spare sessions that are a "complete cut" of normal training sessions (see _learn_cuts).
        self.unfinished = unfinished
        if not 0 <= structure_share <= 1:
            raise InvalidInput("structure_share must lie in [0, 1]")
        # > 0: the count structure is refitted on the events present in at least this share of
        # the sessions the first fit explains (see _fit_structure); 0: on every event.
        self.structure_share = structure_share
        # For fixed windows: judge an event's rarity by its share of the training lines (events)
        # rather than of the training windows (see _score_one).
        self.line_rarity = line_rarity
        self.line_count: Counter[str] = Counter()
        self.n_lines = 0
        # Learn exclusive outcomes (see _learn_exclusive): event → (ratio, its exclusive set).
        self.exclusive_events = exclusive_events
        # Two optional events are exclusive when independence predicts at least
        # ``exclusive_expected`` complete explained sessions holding both (seeing none is then
        # evidence, not chance: Poisson P(0 | 10) = 4.5e-5) and at most ``exclusive_share`` of
        # that number hold both.
        self.exclusive_expected = exclusive_expected
        self.exclusive_share = exclusive_share
        self.outcomes: dict[str, tuple[float, tuple[str, ...]]] = {}
        self.cuts: Counter[frozenset[tuple[str, int]]] = Counter()
        self.n_normal = 0
        self.core_share = 1.0
        self.n_sessions = 0
        self.doc_freq: Counter[str] = Counter()
        self.state_count: Counter[str] = Counter()
        self.transitions: Counter[tuple[str, str]] = Counter()
        self.vocab: dict[str, int] = {}
        self.windows = False
        self.mean: FloatArray = np.zeros(0)
        self.residual_basis: FloatArray = np.zeros((0, 0))
        self.residual_threshold = math.inf

    # -- training ---------------------------------------------------------------------------
    def __setstate__(self, state: dict[str, Any]) -> None:
        # Models pickled (in the server's anomaly state) before these fields existed: no unfinished
        # cuts, rarity by sessions, as those versions judged.
        self.__dict__.update(
            {
                "cuts": Counter(),
                "line_rarity": False,
                "line_count": Counter(),
                "n_lines": 0,
                "exclusive_events": False,
                "exclusive_expected": 10.0,
                "exclusive_share": 0.1,
                "outcomes": {},
            }
        )
        self.__dict__.update(state)

    def fit(self, sessions: Iterable[Sequence[str]], normal: Iterable[Sequence[str]] = ()) -> SessionModel:
        """Learns from ``sessions``; ``normal`` ones (a user's verdict) are learned too, never
        trimmed as outliers, and their residuals raise the structure limit if need be."""
        pinned = [tuple(s) for s in normal]
        data = [tuple(s) for s in sessions] + pinned
        if not data:
            raise InvalidInput("cannot learn from zero sessions")
        self.n_sessions = len(data)
        self.doc_freq = Counter()
        self.state_count = Counter()
        self.transitions = Counter()
        self.line_count = Counter()
        for events in data:
            self.doc_freq.update(set(events))
            self.line_count.update(events)
            for a, b in _steps(events):
                self.state_count[a] += 1
                self.transitions[(a, b)] += 1
        self.vocab = {e: i for i, e in enumerate(sorted(self.doc_freq))}
        # Fixed windows (nearly all of one length) cut the stream anywhere: how they start and end
        # means nothing there, while a session (a block, a request) that ends early is a symptom.
        lengths = Counter(len(events) for events in data)
        self.windows = lengths.most_common(1)[0][1] >= 0.95 * len(data) and len(lengths) <= 2
        self.n_lines = sum(self.line_count.values())
        if self.windows and self.structure_share > 0:
            # The count structure judges the skeleton, the events nearly every normal session
            # holds; a fixed window cuts the stream anywhere, so every event is optional in it and
            # it has no skeleton: its events are judged by their rarity alone.
            self.vocab = {}
        self._fit_structure(data, len(pinned))
        self.outcomes = {}
        self.cuts = Counter()
        self.n_normal = 0
        learn_exclusive = self.exclusive_events and not self.windows and bool(self.vocab)
        learn_cuts = self.unfinished and not self.windows and self.residual_basis.shape[1] > 0
        if learn_exclusive or learn_cuts:
            # One scoring pass serves both: an exclusive outcome's ratio is above 1, so a session
            # is flagged once outcomes exist exactly when it was flagged before or holds one.
            explained = [not result.anomaly for result in self.score_many(data)]
            if learn_exclusive:
                self._learn_exclusive(data, pinned, explained)
            if learn_cuts:
                verdicts = [
                    ok and not self.outcomes.keys() & set(events) for events, ok in zip(data, explained, strict=True)
                ]
                self._learn_cuts(data, verdicts)
        return self

    def _learn_exclusive(
        self, data: list[tuple[str, ...]], pinned: list[tuple[str, ...]], explained: list[bool]
    ) -> None:
        """Optional events that are one of several ways a session goes wrong.

        Among the training sessions the model explains that hold the whole skeleton (complete
        sessions: a truncated one lacks every late event, which is not exclusion), two optional
        events are *exclusive* when independence predicts that many sessions hold both and
        (almost) none do. Normal variations (reads, verifications) combine freely; a session that
        fails tends to fail one way (a delete error, a redundant store, an empty packet), so
        failure modes exclude each other even when each is common — in a training file full of
        anomalies, too common to be rare. For every maximal set of mutually exclusive events, an
        event of it is an *exclusive outcome* when more explained sessions hold none of the set
        than hold the event: most sessions take none of these turns. Alternatives that sessions
        must choose between (one of three paths, every session takes one) are not: few sessions
        hold none of them. An event of a session a user called normal (``fit``'s ``normal``)
        never is. The ratio (sessions with none of the set / sessions with the event, > 1) is
        the score's excess for a session holding it. ``explained``: the fitted model's verdict on
        each of ``data`` (not flagged).
        """
        skeleton = set(self.vocab)
        held = (set(events) for events, ok in zip(data, explained, strict=True) if ok)
        complete = [events for events in held if skeleton <= events]
        n = len(complete)
        vouched = {event for events in pinned for event in events}
        freq = Counter(event for events in complete for event in events if event not in skeleton)
        floor = max(2.0, self.rare_probability * n)  # rarer events are flagged by their rarity
        optional = sorted(e for e, count in freq.items() if count >= floor and e not in vouched)
        if len(optional) < 2:
            return
        column = {e: i for i, e in enumerate(optional)}
        present = np.zeros((n, len(optional)), dtype=np.int64)
        for row, events in enumerate(complete):
            for event in events:
                col = column.get(event)
                if col is not None:
                    present[row, col] = 1
        together = present.T @ present
        counts = np.diag(together).astype(np.float64)
        expected = np.outer(counts, counts) / n
        exclusive = (expected >= self.exclusive_expected) & (together <= self.exclusive_share * expected)
        np.fill_diagonal(exclusive, False)
        for members in _maximal_cliques(exclusive):
            if len(members) < 2:
                continue
            none = n - int(present[:, members].any(axis=1).sum())
            names = tuple(optional[i] for i in members)
            for i in members:
                ratio = none / counts[i]
                if ratio > 1 and ratio > self.outcomes.get(optional[i], (0.0, ()))[0]:
                    self.outcomes[optional[i]] = (float(ratio), names)

    def _learn_cuts(self, data: list[tuple[str, ...]], normal: list[bool]) -> None:
        """Where a normal session could be while still in flight: its *complete cuts*.

        A cut of a session is a proper prefix after which none of the events already seen occurs
        again: every event so far has its final count, the rest have not started (allocated,
        three replicas received and stored — then, hours later, deleted). A session still open
        when the log ends, or closed by an idle timeout, stops at such a cut. For each training
        session the model itself finds normal (rarity and structure below their limits), its
        distinct cuts are counted; a session scored later whose event counts equal a cut that at
        least ``rare_probability`` of those sessions pass through is unfinished rather than
        broken, so the count structure alone cannot flag it (its events are still judged for
        rarity). A session that stopped part-way through a step (one replica of three received)
        is no cut: the events it holds lack their final counts. ``normal``: the model's verdict on
        each of ``data``.
        """
        cuts: Counter[frozenset[tuple[str, int]]] = Counter()
        n_normal = 0
        for events, ok in zip(data, normal, strict=True):
            if not ok:
                continue
            n_normal += 1
            final = Counter(events)
            seen: Counter[str] = Counter()
            pending = 0  # events seen so far that have not reached their final count
            mine: set[frozenset[tuple[str, int]]] = set()
            for event in events[:-1]:
                if seen[event] == 0:
                    pending += 1
                seen[event] += 1
                if seen[event] == final[event]:
                    pending -= 1
                if pending == 0:
                    mine.add(frozenset(seen.items()))
            cuts.update(mine)
        floor = max(2.0, self.rare_probability * n_normal)
        self.cuts = Counter({cut: n for cut, n in cuts.items() if n >= floor})
        self.n_normal = n_normal

    def _fit_structure(self, data: list[tuple[str, ...]], n_pinned: int = 0) -> None:
        keep = self._fit_structure_on(data, n_pinned)
        if keep is None or self.structure_share <= 0 or self.windows:
            return
        # Which events does every normal session hold? Those the sessions the fit explains
        # nearly all hold (a block is allocated, its replicas received, stored, deleted) make the
        # session's skeleton; the rest (reads, verifications: any number, or none) vary freely
        # and are judged by their rarity alone. The count structure is refitted on the skeleton,
        # so that a combination of optional events the core happened not to hold is not taken
        # for broken relations.
        # The skeleton and the fit depend on each other (a first fit misled by a large cluster of
        # truncated sessions explains them, and they lack most events): refit until it is stable.
        events = sorted(self.doc_freq)
        present = np.zeros((len(data), len(events)), dtype=bool)
        column = {e: i for i, e in enumerate(events)}
        for row, session in enumerate(data):
            for event in set(session):
                present[row, column[event]] = True
        skeleton = list(self.vocab)
        for _ in range(_MAX_ROUNDS):
            share = present[keep].mean(axis=0) if keep.any() else np.zeros(len(events))
            new = [e for e in events if share[column[e]] >= self.structure_share]
            if new == skeleton or not new:
                break
            skeleton = new
            self.vocab = {e: i for i, e in enumerate(skeleton)}
            keep = self._fit_structure_on(data, n_pinned)
            if keep is None:
                return

    def _fit_structure_on(self, data: list[tuple[str, ...]], n_pinned: int) -> npt.NDArray[np.bool_] | None:
        """Fits the count structure on ``self.vocab``'s events; the sessions it explains."""
        x = self._vectors(data)
        n_dims = x.shape[1]
        self.mean = x.mean(axis=0) if len(data) else np.zeros(n_dims)
        self.residual_basis = np.zeros((n_dims, 0))
        self.residual_threshold = math.inf
        self.core_share = 1.0
        if n_dims == 0 or len(data) < 2:
            return None
        pinned = np.zeros(len(data), dtype=bool)
        if n_pinned:
            pinned[len(data) - n_pinned :] = True
        fitted = self._fit_robust(x, pinned) if 0 < self.robust_core < 1 else self._fit_trimmed(x, pinned)
        if fitted is None:
            return None
        keep, eigen, vt, k = fitted
        self.core_share = float(keep.mean())
        self.residual_basis = vt[k:].T.copy()
        self.residual_threshold = self._residual_limit(x, keep, eigen, k)
        if n_pinned:
            spe = (((x[pinned] - self.mean) @ self.residual_basis) ** 2).sum(axis=1)
            self.residual_threshold = max(self.residual_threshold, float(spe.max()) * self.residual_margin)
        return keep

    def _residual_limit(self, x: FloatArray, keep: npt.NDArray[np.bool_], eigen: FloatArray, k: int) -> float:
        spe = (((x[keep] - self.mean) @ self.residual_basis) ** 2).sum(axis=1)
        q_limit = _q_statistic(eigen[k:], _C_ALPHA[self.pca_alpha])
        empirical = float(np.quantile(spe, self.residual_quantile)) * self.residual_margin
        # The Q limit assumes Gaussian data; count vectors are not, so the training residuals'
        # own tail (with a margin) is a floor that keeps quirky-but-seen sessions quiet.
        return max(q_limit, empirical, 1e-9)

    def _spread(self, x: FloatArray, eigen: FloatArray, vt: FloatArray) -> FloatArray:
        """Each session's distance from the fitted bulk in the whole space (principal and residual
        directions, each scaled by its variance, with a floor for directions without any)."""
        proj = (x - self.mean) @ vt.T
        floor = 1e-3 * float(eigen.mean()) + 1e-12
        return np.asarray((proj**2 / (eigen + floor)).sum(axis=1), dtype=np.float64)

    def _fit_trimmed(
        self, x: FloatArray, pinned: npt.NDArray[np.bool_]
    ) -> tuple[npt.NDArray[np.bool_], FloatArray, FloatArray, int] | None:
        """Three rounds, each dropping the ``structure_trim`` share farthest from the bulk."""
        keep = np.ones(len(x), dtype=bool)
        rounds = 3 if self.structure_trim > 0 else 1
        for round_ in range(rounds):
            fitted = self._fit_pca(x[keep])
            if fitted is None:
                return None
            eigen, vt, k = fitted
            if round_ == rounds - 1:
                break
            dist = self._spread(x, eigen, vt)
            keep = (dist <= np.quantile(dist, 1.0 - self.structure_trim)) | pinned
        return keep, eigen, vt, k

    def _fit_robust(
        self, x: FloatArray, pinned: npt.NDArray[np.bool_]
    ) -> tuple[npt.NDArray[np.bool_], FloatArray, FloatArray, int] | None:
        """A core of the ``robust_core`` share of sessions most alike, then every session the
        core's model explains.

        1. Concentration (as in Rousseeuw's minimum covariance determinant): start from the
           sessions nearest the coordinate-wise median, fit, keep the ``robust_core`` share
           nearest that fit, refit, until the core stops changing. Anomalies making up to about
           ``1 - robust_core`` of the training data cannot pull the fit towards themselves.
        2. Reweighting: keep every training session whose residual is within the core model's
           limit, refit, repeat until stable: normal variety the core did not hold comes back
           in, while sessions that break the core's relations stay out.
        """
        h = self.robust_core
        dist = ((x - np.median(x, axis=0)) ** 2).sum(axis=1)
        keep = (dist <= np.quantile(dist, h)) | pinned
        for _ in range(_MAX_ROUNDS):
            fitted = self._fit_pca(x[keep])
            if fitted is None:
                return None
            eigen, vt, k = fitted
            dist = self._spread(x, eigen, vt)
            new = (dist <= np.quantile(dist, h)) | pinned
            if np.array_equal(new, keep):
                break
            keep = new
        for _ in range(_MAX_ROUNDS):
            fitted = self._fit_pca(x[keep])
            if fitted is None:
                return None
            eigen, vt, k = fitted
            self.residual_basis = vt[k:].T
            limit = self._residual_limit(x, keep, eigen, k)
            spe = (((x - self.mean) @ self.residual_basis) ** 2).sum(axis=1)
            new = (spe <= limit) | pinned
            if np.array_equal(new, keep):
                break
            keep = new
        return keep, eigen, vt, k

    def _fit_pca(self, x: FloatArray) -> tuple[FloatArray, FloatArray, int] | None:
        """Sets ``mean``; returns eigenvalues (descending), eigenvectors as rows, and k."""
        self.mean = x.mean(axis=0)
        centred = x - self.mean
        # Eigen-decomposition of the (events × events) covariance: cheap for any number of sessions.
        eigen, vectors = np.linalg.eigh(centred.T @ centred / max(len(x) - 1, 1))
        order = np.argsort(eigen)[::-1]
        eigen = np.clip(eigen[order], 0.0, None)
        vt = vectors[:, order].T
        total = float(eigen.sum())
        if total <= 0:
            return None
        k = int(np.searchsorted(np.cumsum(eigen) / total, self.pca_variance) + 1)
        return eigen, vt, min(k, x.shape[1])

    def _vectors(self, data: Sequence[Sequence[str]]) -> FloatArray:
        x = np.zeros((len(data), len(self.vocab)))
        for row, events in enumerate(data):
            for event, count in Counter(events).items():
                col = self.vocab.get(event)
                if col is not None:
                    x[row, col] = math.log1p(count)
        return x

    # -- scoring ----------------------------------------------------------------------------
    def _rarity_limit(self, population: int) -> float:
        return -math.log(max(self.rare_probability, 1.0 / (population + 1)))

    def score_many(self, sessions: Sequence[Sequence[str]]) -> list[SessionScore]:
        if self.n_sessions == 0:
            raise InvalidInput("the model has not been fitted")
        data = [tuple(s) for s in sessions]
        structure = self._structure(data)
        return [self._score_one(events, float(r)) for events, r in zip(data, structure, strict=True)]

    def score(self, session: Sequence[str]) -> SessionScore:
        return self.score_many([session])[0]

    def _structure(self, data: list[tuple[str, ...]]) -> FloatArray:
        if self.residual_basis.shape[1] == 0 or not data:
            return np.zeros(len(data))
        centred = self._vectors(data) - self.mean
        spe = ((centred @ self.residual_basis) ** 2).sum(axis=1)
        return np.asarray(spe / self.residual_threshold, dtype=np.float64)

    def _score_one(self, events: tuple[str, ...], structure: float) -> SessionScore:
        n = self.n_sessions
        unfinished = 0
        cuts = self.cuts
        if structure >= 1 and cuts:
            unfinished = cuts.get(frozenset(Counter(events).items()), 0)
            if unfinished:
                # In flight, not broken: ranked above sessions that look complete, below the limit.
                structure = _UNFINISHED_STRUCTURE
        # A fixed window is an arbitrary cut of the stream: how many windows hold an event depends
        # on the window's size and on how the event spreads (one line in each of many windows is
        # in all of them), while its share of the lines does not. Sessions are units of their own.
        by_lines = self.windows and self.line_rarity and self.n_lines > 0
        freq = self.line_count if by_lines else self.doc_freq
        total = self.n_lines if by_lines else n
        limit = self._rarity_limit(total)
        rarity = 0.0
        rare_event = ""
        for event in set(events):
            surprise = -math.log((freq.get(event, 0) + 0.5) / (total + 1))
            ratio = surprise / limit
            if ratio > rarity or (ratio == rarity and event < rare_event):
                rarity, rare_event = ratio, event
        transition = 0.0
        rare_step = ("", "")
        for step in set(_steps(events)):
            from_count = self.state_count.get(step[0], 0)
            if from_count == 0:
                continue  # an unseen event: event rarity already speaks for it
            surprise = -math.log((self.transitions.get(step, 0) + 0.5) / (from_count + 1))
            boundary = START in step or END in step
            weight = self.transition_weight
            if boundary:
                weight = 0.0 if self.windows else self.boundary_weight
            ratio = weight * surprise / self._rarity_limit(from_count)
            if ratio > transition:
                transition, rare_step = ratio, step
        exclusive = 0.0
        outcome = ""
        for event in set(events) if self.outcomes else ():
            learned = self.outcomes.get(event)
            if learned is not None and (learned[0] > exclusive or (learned[0] == exclusive and event < outcome)):
                exclusive, outcome = learned[0], event
        excess = max(rarity, transition, structure, exclusive)
        reasons: list[str] = []
        if rarity >= 1:
            seen = freq.get(rare_event, 0)
            unit = "lines" if by_lines else "sessions"
            reasons.append(f"event {rare_event} seen in {seen} of {total} training {unit}")
        if transition >= 1:
            seen = self.transitions.get(rare_step, 0)
            reasons.append(f"step {rare_step[0]} → {rare_step[1]} taken {seen} times in training")
        if structure >= 1:
            reasons.append(f"event counts break learned relations ({structure:.1f}× the residual limit)")
        if exclusive >= 1:
            others = ", ".join(e for e in self.outcomes[outcome][1] if e != outcome)
            reasons.append(
                f"event {outcome} is one of exclusive outcomes (no training session combines it with {others}); "
                f"{exclusive:.1f}× as many complete training sessions have none of them"
            )
        return SessionScore(
            score=excess / (1.0 + excess),
            anomaly=excess >= 1.0,
            excess=excess,
            rarity=rarity,
            transition=transition,
            structure=structure,
            reasons=tuple(reasons),
            rarest=rare_event,
            unfinished=unfinished,
            exclusive=exclusive,
            outcome=outcome,
        )


def _maximal_cliques(adjacent: npt.NDArray[np.bool_]) -> list[list[int]]:
    """The maximal sets of pairwise adjacent nodes (Bron-Kerbosch with pivoting), at most
    ``_MAX_EXCLUSIVE_SETS`` of them; nodes without a neighbour are left out."""
    neighbours = [set(np.flatnonzero(row).tolist()) for row in adjacent]
    found: list[list[int]] = []

    def grow(clique: set[int], candidates: set[int], excluded: set[int]) -> None:
        if len(found) >= _MAX_EXCLUSIVE_SETS:
            return
        if not candidates and not excluded:
            found.append(sorted(clique))
            return
        pivot = max(candidates | excluded, key=lambda v: len(neighbours[v] & candidates))
        for v in sorted(candidates - neighbours[pivot]):
            grow(clique | {v}, candidates & neighbours[v], excluded & neighbours[v])
            candidates = candidates - {v}
            excluded = excluded | {v}

    grow(set(), {i for i, near in enumerate(neighbours) if near}, set())
    return found


def _steps(events: Sequence[str]) -> list[tuple[str, str]]:
    seq = [START, *events, END]
    return list(pairwise(seq))
