from __future__ import annotations

import pytest

from logloupe.parse.evaluate import evaluate, grouping_accuracy, parsing_accuracy


@pytest.mark.parametrize(
    ("pred", "truth", "expected"),
    [
        ([1, 1, 2], ["a", "a", "b"], 1.0),
        ([1, 1, 1], ["a", "a", "b"], 0.0),  # over-merged: no group equals its truth
        ([1, 2, 3], ["a", "a", "b"], 1 / 3),  # a split: only b is right
        ([7, 7, 8, 9], ["x", "x", "x", "y"], 0.25),
        ([], [], 0.0),
    ],
)
def test_grouping_accuracy(pred: list[int], truth: list[str], expected: float) -> None:
    assert grouping_accuracy(pred, truth) == pytest.approx(expected)


def test_parsing_accuracy_normalises_whitespace() -> None:
    assert parsing_accuracy(["a  <*>  b", "c"], ["a <*> b", "d"]) == 0.5


def test_lengths_must_match() -> None:
    with pytest.raises(ValueError):
        grouping_accuracy([1], [])
    with pytest.raises(ValueError):
        parsing_accuracy(["a"], [])


def test_evaluate_reports_both() -> None:
    acc = evaluate([1, 1], ["x <*>", "x <*>"], ["E1", "E1"], ["x <*>", "x <*>"])
    assert (acc.lines, acc.grouping, acc.parsing) == (2, 1.0, 1.0)
