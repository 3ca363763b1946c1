"""Classic unsupervised log anomaly detectors on event-count vectors, for benchmarks/anomaly.py.

- PCA as in Xu et al., SOSP 2009 (tf-idf weighting, zero mean, normal subspace holding 95 % of
  the variance, squared prediction error against the Q-statistic of Jackson & Mudholkar).
- IsolationForest (Liu et al., 2008) from scikit-learn, as configured in loglizer.
- Invariants Mining (Lou et al., USENIX ATC 2010): sparse integer relations between event counts
  that hold in most training sessions; a session breaking one is anomalous.

Each ``fit(x)`` takes a count matrix (sessions × events) and ``score(x)`` returns
``(scores, predictions)``: higher scores are more anomalous.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence

import numpy as np
from sklearn.ensemble import IsolationForest


def count_matrix(
    sessions: Sequence[Sequence[str]], vocab: dict[str, int] | None = None
) -> tuple[np.ndarray, dict[str, int]]:
    """Event-count vectors; events outside a given vocabulary are dropped, as in loglizer."""
    if vocab is None:
        vocab = {e: i for i, e in enumerate(sorted({e for s in sessions for e in s}))}
    x = np.zeros((len(sessions), len(vocab)))
    for row, events in enumerate(sessions):
        for event, count in Counter(events).items():
            col = vocab.get(event)
            if col is not None:
                x[row, col] = count
    return x, vocab


class PCADetector:
    def __init__(self, variance: float = 0.95, c_alpha: float = 3.2905) -> None:
        self.variance = variance
        self.c_alpha = c_alpha  # loglizer's default (alpha = 0.0005, one-sided)

    def _transform(self, x: np.ndarray) -> np.ndarray:
        return x * self.idf - self.mean

    def fit(self, x: np.ndarray) -> PCADetector:
        n = x.shape[0]
        df = (x > 0).sum(axis=0)
        self.idf = np.log(n / (df + 1e-8))
        weighted = x * self.idf
        self.mean = weighted.mean(axis=0)
        y = weighted - self.mean
        cov = y.T @ y / n
        eigen, vectors = np.linalg.eigh(cov)
        order = np.argsort(eigen)[::-1]
        eigen, vectors = np.clip(eigen[order], 0, None), vectors[:, order]
        total = eigen.sum()
        k = int(np.searchsorted(np.cumsum(eigen) / total, self.variance) + 1) if total > 0 else 0
        p = vectors[:, :k]
        self.projection = np.eye(x.shape[1]) - p @ p.T
        rest = eigen[k:]
        phi = [float((rest**i).sum()) for i in (1, 2, 3)]
        if phi[0] <= 0 or phi[1] <= 0:
            self.threshold = 0.0
            return self
        h0 = 1.0 - 2.0 * phi[0] * phi[2] / (3.0 * phi[1] ** 2)
        inner = (
            self.c_alpha * np.sqrt(2 * phi[1] * h0**2) / phi[0] + 1.0 + phi[1] * h0 * (h0 - 1.0) / phi[0] ** 2
        )
        self.threshold = float(phi[0] * max(inner, 0.0) ** (1.0 / h0))
        return self

    def score(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        spe = ((self._transform(x) @ self.projection) ** 2).sum(axis=1)
        return spe, (spe > self.threshold).astype(int)


class IsolationForestDetector:
    def __init__(self, contamination: float = 0.03, seed: int = 0) -> None:
        self.model = IsolationForest(n_estimators=100, contamination=contamination, random_state=seed)

    def fit(self, x: np.ndarray) -> IsolationForestDetector:
        self.model.fit(x)
        return self

    def score(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores = -self.model.score_samples(x)
        return scores, (self.model.predict(x) == -1).astype(int)


class InvariantsMiningDetector:
    """Lou et al.'s search: the size of the invariant space from the SVD, then a brute-force
    search over small event groups for integer null vectors with enough support."""

    def __init__(
        self, support: float = 0.98, epsilon: float = 0.5, longest: int = 3, scales: Sequence[int] = (1, 2, 3)
    ) -> None:
        self.support = support
        self.epsilon = epsilon
        self.longest = longest
        self.scales = scales
        self.invariants: list[np.ndarray] = []

    def _holds(self, x: np.ndarray, theta: np.ndarray) -> float:
        return float((np.abs(x @ theta) < self.epsilon).mean())

    def _space_size(self, x: np.ndarray) -> int:
        _, _, vt = np.linalg.svd(x, full_matrices=False)
        size = 0
        for vec in vt[::-1]:
            if self._holds(x, vec) < self.support:
                break
            size += 1
        return size

    def fit(self, x: np.ndarray) -> InvariantsMiningDetector:
        # Columns that are never used carry no relation; 1-event invariants ("never happens")
        # are what loglizer finds first, then pairs and triples not implied by them.
        target = max(self._space_size(x), 1)
        self.invariants = []
        found_groups: list[set[int]] = []
        cols = [c for c in range(x.shape[1]) if (x[:, c] != 0).any()]
        for size in range(1, self.longest + 1):
            for group in itertools.combinations(cols, size):
                if any(g <= set(group) for g in found_groups):
                    continue
                sub = x[:, group]
                theta = self._null_vector(sub)
                if theta is None:
                    continue
                full = np.zeros(x.shape[1])
                full[list(group)] = theta
                if self._holds(x, full) >= self.support:
                    self.invariants.append(full)
                    found_groups.append(set(group))
                    if len(self.invariants) >= target:
                        return self
        return self

    def _null_vector(self, sub: np.ndarray) -> np.ndarray | None:
        if sub.shape[1] == 1:
            return np.ones(1)
        _, _, vt = np.linalg.svd(sub, full_matrices=False)
        vec = vt[-1]
        nonzero = np.abs(vec) > 1e-6
        if not nonzero.all():
            return None  # a smaller group already carries this relation
        vec = vec / np.abs(vec[nonzero]).min()
        for scale in self.scales:
            scaled = vec * scale
            rounded = np.round(scaled)
            if np.allclose(scaled, rounded, atol=0.05):
                return rounded
        return None

    def score(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self.invariants:
            zeros = np.zeros(x.shape[0])
            return zeros, zeros.astype(int)
        theta = np.stack(self.invariants, axis=1)
        violated = (np.abs(x @ theta) >= self.epsilon).sum(axis=1).astype(float)
        return violated, (violated > 0).astype(int)
