"""Detection metrics with per-sample weights.

Weights let an evaluation stand a subsampled class for its real size: in the HDFS sample each
normal session stands for ~100 real ones, so one false alarm on it costs ~100 in precision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Metrics:
    precision: float
    recall: float
    f1: float
    auroc: float
    tp: float
    fp: float
    fn: float

    def as_dict(self) -> dict[str, float]:
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "auroc": self.auroc,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
        }


def prf(
    labels: Sequence[int], predicted: Sequence[int], weights: Sequence[float] | None = None
) -> tuple[float, float, float, float, float, float]:
    """Weighted precision, recall, F1 and the weighted TP, FP, FN behind them."""
    y = np.asarray(labels, dtype=bool)
    p = np.asarray(predicted, dtype=bool)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    tp = float(w[y & p].sum())
    fp = float(w[~y & p].sum())
    fn = float(w[y & ~p].sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1, tp, fp, fn


def auroc(labels: Sequence[int], scores: Sequence[float], weights: Sequence[float] | None = None) -> float:
    """Weighted area under the ROC curve; ties count one half (Mann-Whitney)."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=float)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    pos_w, neg_w = w[y].sum(), w[~y].sum()
    if pos_w == 0 or neg_w == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    s, y, w = s[order], y[order], w[order]
    # Walk groups of tied scores: each positive beats the negatives below it, ties count half.
    neg_below = 0.0
    total = 0.0
    i = 0
    n = len(s)
    while i < n:
        j = i
        while j < n and s[j] == s[i]:
            j += 1
        pos_here = float(w[i:j][y[i:j]].sum())
        neg_here = float(w[i:j][~y[i:j]].sum())
        total += pos_here * (neg_below + neg_here / 2)
        neg_below += neg_here
        i = j
    return float(total / (pos_w * neg_w))


def evaluate(
    labels: Sequence[int],
    scores: Sequence[float],
    predicted: Sequence[int],
    weights: Sequence[float] | None = None,
) -> Metrics:
    precision, recall, f1, tp, fp, fn = prf(labels, predicted, weights)
    return Metrics(precision, recall, f1, auroc(labels, scores, weights), tp, fp, fn)


def population_weights(labels: Sequence[int], anomaly_rate: float) -> list[float]:
    """Weights that give the normal class the share it has in the population.

    Anomalies weigh 1; each normal sample weighs ``w`` so that
    ``n_anomalous / (n_anomalous + w * n_normal) == anomaly_rate``.
    """
    n_anom = sum(1 for v in labels if v)
    n_norm = len(labels) - n_anom
    if n_norm == 0 or n_anom == 0:
        return [1.0] * len(labels)
    w = n_anom * (1 - anomaly_rate) / (anomaly_rate * n_norm)
    return [1.0 if v else w for v in labels]
