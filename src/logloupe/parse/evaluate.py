"""Template-mining accuracy as defined in the log-parsing literature (Zhu et al., ICSE-SEIP 2019;
Khan et al., ICSE 2022): Grouping Accuracy (GA) and Parsing Accuracy (PA), both per line.

* GA: a line counts when the set of lines the parser put in its group equals its true group.
* PA: a line counts when its predicted template equals the true template, whitespace normalised.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Accuracy:
    lines: int
    grouping: float
    parsing: float


def normalise_template(template: str) -> str:
    return " ".join(template.split())


def grouping_accuracy(predicted: Sequence[Hashable], truth: Sequence[Hashable]) -> float:
    if len(predicted) != len(truth):
        raise ValueError("predicted and truth must have the same length")
    if not truth:
        return 0.0
    by_pred: dict[Hashable, set[int]] = defaultdict(set)
    by_true: dict[Hashable, set[int]] = defaultdict(set)
    for i, (p, t) in enumerate(zip(predicted, truth, strict=True)):
        by_pred[p].add(i)
        by_true[t].add(i)
    correct = 0
    for members in by_true.values():
        first = next(iter(members))
        if by_pred[predicted[first]] == members:
            correct += len(members)
    return correct / len(truth)


def parsing_accuracy(predicted: Sequence[str], truth: Sequence[str]) -> float:
    if len(predicted) != len(truth):
        raise ValueError("predicted and truth must have the same length")
    if not truth:
        return 0.0
    ok = sum(normalise_template(p) == normalise_template(t) for p, t in zip(predicted, truth, strict=True))
    return ok / len(truth)


def evaluate(
    predicted_ids: Sequence[Hashable],
    predicted_templates: Sequence[str],
    true_ids: Sequence[Hashable],
    true_templates: Sequence[str],
) -> Accuracy:
    return Accuracy(
        lines=len(true_ids),
        grouping=grouping_accuracy(predicted_ids, true_ids),
        parsing=parsing_accuracy(predicted_templates, true_templates),
    )
