"""Train the linear classifier (numpy softmax regression) and measure it on a held-out split."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from logloupe.analyse.classify import (
    DEFAULT_BUCKETS,
    LABELS,
    Classifier,
    LinearModel,
    _bucket,
    detect_level,
    features,
    message_of,
)
from logloupe.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Example:
    message: str
    label: str


def read_examples(path: Path) -> list[Example]:
    """Rows of ``{"message", "label"}``; a bad row is an error naming its line."""
    out: list[Example] = []
    with path.open(encoding="utf-8") as fh:
        for number, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
                message, label = str(row["message"]), str(row["label"])
            except (ValueError, KeyError, TypeError) as exc:
                raise InvalidInput(f"{path}:{number}: expected {{'message', 'label'}}: {exc}") from exc
            if label not in LABELS:
                raise InvalidInput(f"{path}:{number}: label must be one of {', '.join(LABELS)}")
            out.append(Example(message, label))
    if not out:
        raise InvalidInput(f"{path}: no examples")
    return out


def split(examples: Sequence[Example], holdout: float = 0.2, seed: int = 13) -> tuple[list[Example], list[Example]]:
    """Stratified random split so every label appears on both sides."""
    rng = random.Random(seed)
    train: list[Example] = []
    test: list[Example] = []
    for label in LABELS:
        rows = [e for e in examples if e.label == label]
        rng.shuffle(rows)
        cut = round(len(rows) * holdout) if len(rows) > 1 else 0
        test += rows[:cut]
        train += rows[cut:]
    return train, test


def _example_features(message: str) -> list[str]:
    return features(message_of(message), detect_level(message))


def train_model(
    examples: Sequence[Example],
    buckets: int = DEFAULT_BUCKETS,
    epochs: int = 60,
    lr: float = 0.5,
    l2: float = 1e-4,
    meta: dict[str, Any] | None = None,
) -> LinearModel:
    """Full-batch gradient descent with class-balanced weights; deterministic."""
    label_index = {label: k for k, label in enumerate(LABELS)}
    rows: list[np.ndarray[Any, Any]] = []
    for ex in examples:
        idx = sorted({_bucket(f, buckets) for f in _example_features(ex.message)})
        rows.append(np.array(idx, dtype=np.int64))
    y = np.array([label_index[e.label] for e in examples], dtype=np.int64)
    n, k = len(examples), len(LABELS)
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    flat = np.concatenate(rows)
    owner = np.repeat(np.arange(n), lengths)
    counts = np.bincount(y, minlength=k).astype(np.float64)
    sample_w = (n / (k * np.maximum(counts, 1)))[y]
    w = np.zeros((buckets, k))
    b = np.zeros(k)
    onehot = np.eye(k)[y]
    for _ in range(epochs):
        logits = np.zeros((n, k))
        np.add.at(logits, owner, w[flat])
        logits += b
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        grad_rows = (p - onehot) * sample_w[:, None] / n
        gw = np.zeros_like(w)
        np.add.at(gw, flat, grad_rows[owner])
        w -= lr * (gw * 50 + l2 * w)  # features are sparse: a larger step on their rows
        b -= lr * grad_rows.sum(axis=0)
    used = np.unique(flat)
    weights = {int(i): [float(x) for x in w[i]] for i in used if np.abs(w[i]).max() > 1e-3}
    return LinearModel(LABELS, [float(x) for x in b], weights, buckets, meta or {})


@dataclass(frozen=True, slots=True)
class ClassScore:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


def scores(truth: Sequence[str], predicted: Sequence[str], labels: Iterable[str] = LABELS) -> list[ClassScore]:
    out: list[ClassScore] = []
    for label in labels:
        tp = sum(1 for t, p in zip(truth, predicted, strict=True) if t == label and p == label)
        fp = sum(1 for t, p in zip(truth, predicted, strict=True) if t != label and p == label)
        fn = sum(1 for t, p in zip(truth, predicted, strict=True) if t == label and p != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out.append(ClassScore(label, precision, recall, f1, tp + fn))
    return out


def evaluate(model: LinearModel, examples: Sequence[Example]) -> list[ClassScore]:
    """Scores of the full classifier (rules + this model) on ``examples``."""
    clf = Classifier(model)
    predicted = [clf.classify(e.message).label for e in examples]
    return scores([e.label for e in examples], predicted)


def format_scores(rows: Sequence[ClassScore]) -> str:
    lines = [f"{'label':<18} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}"]
    for r in rows:
        lines.append(f"{r.label:<18} {r.precision:>9.3f} {r.recall:>7.3f} {r.f1:>6.3f} {r.support:>8d}")
    return "\n".join(lines)
