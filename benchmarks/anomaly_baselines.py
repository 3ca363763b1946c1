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

OOV = "<unseen>"


def count_matrix(
    sessions: Sequence[Sequence[str]], vocab: dict[str, int] | None = None
) -> tuple[np.ndarray, dict[str, int]]:
    """Event-count vectors over the training vocabulary plus one column counting events never
    seen in training (loglizer's ``oov=True``), so that every method can see new events."""
    if vocab is None:
        events = sorted({e for s in sessions for e in s})
        vocab = {e: i for i, e in enumerate([*events, OOV])}
    oov = vocab[OOV]
    x = np.zeros((len(sessions), len(vocab)))
    for row, events in enumerate(sessions):
        for event, count in Counter(events).items():
            x[row, vocab.get(event, oov)] += count
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
        inner = self.c_alpha * np.sqrt(2 * phi[1] * h0**2) / phi[0] + 1.0 + phi[1] * h0 * (h0 - 1.0) / phi[0] ** 2
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
    """Lou et al.'s search as loglizer implements it: the size ``r`` of the invariant space from
    the SVD (right singular vectors that ``percentage`` of sessions satisfy within ``epsilon``);
    every all-zero column is an invariant; then groups of 2, 3… columns (skipping supersets of
    groups that already carry an invariant) whose smallest eigenvector, scaled to small
    integers, is satisfied exactly by ``percentage`` of the sessions; stop at ``r`` invariants.
    A session breaking any invariant is anomalous."""

    def __init__(
        self, support: float = 0.98, epsilon: float = 0.5, longest: int = 4, scales: Sequence[int] = (1, 2, 3)
    ) -> None:
        self.support = support
        self.epsilon = epsilon
        self.longest = longest
        self.scales = scales
        self.invariants: list[np.ndarray] = []

    def _space_size(self, x: np.ndarray) -> int:
        _, _, vt = np.linalg.svd(x, full_matrices=False)
        size = 0
        for vec in vt[::-1]:
            if float((np.abs(x @ vec) < self.epsilon).mean()) < self.support:
                break
            size += 1
        return size

    def fit(self, x: np.ndarray) -> InvariantsMiningDetector:
        target = self._space_size(x)
        self.invariants = []
        found_groups: list[set[int]] = []
        live = []
        for col in range(x.shape[1]):
            if not (x[:, col] != 0).any():
                theta = np.zeros(x.shape[1])
                theta[col] = 1.0
                self.invariants.append(theta)
            else:
                live.append(col)
        for size in range(2, self.longest + 1):
            if len(self.invariants) >= target:
                break
            for group in itertools.combinations(live, size):
                if any(g <= set(group) for g in found_groups):
                    continue
                theta = self._integer_null_vector(x[:, group])
                if theta is None:
                    continue
                full = np.zeros(x.shape[1])
                full[list(group)] = theta
                self.invariants.append(full)
                found_groups.append(set(group))
                if len(self.invariants) >= target:
                    break
        return self

    def _integer_null_vector(self, sub: np.ndarray) -> np.ndarray | None:
        _, vectors = np.linalg.eigh(sub.T @ sub)
        vec = vectors[:, 0]
        if (np.abs(vec) < 1e-6).any():
            return None  # a smaller group carries this relation
        smallest = int(np.argmin(np.abs(vec)))
        for scale in self.scales:
            theta = np.round(vec * (scale / vec[smallest]))
            theta[smallest] = scale
            if (theta == 0).any():
                continue
            if float((np.abs(sub @ theta) < 1e-8).mean()) >= self.support:
                return theta
        return None

    def score(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self.invariants:
            zeros = np.zeros(x.shape[0])
            return zeros, zeros.astype(int)
        theta = np.stack(self.invariants, axis=1)
        violation = np.abs(x @ theta).sum(axis=1)
        return violation, (violation > 1e-6).astype(int)
