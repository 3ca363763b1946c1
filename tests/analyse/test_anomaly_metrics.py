import math

import pytest

from logloupe.analyse.anomaly.metrics import auroc, evaluate, population_weights, prf


def test_auroc_orders_and_ties():
    assert auroc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert auroc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert auroc([0, 1], [0.5, 0.5]) == 0.5
    assert math.isnan(auroc([1, 1], [0.1, 0.2]))


def test_weights_make_a_false_alarm_on_a_normal_sample_cost_its_population():
    labels = [1, 1, 1, 0, 0]
    predicted = [1, 1, 0, 1, 0]
    precision, recall, _, tp, fp, fn = prf(labels, predicted, [1, 1, 1, 100, 100])
    assert (tp, fp, fn) == (2, 100, 1)
    assert precision == pytest.approx(2 / 102)
    assert recall == pytest.approx(2 / 3)


def test_population_weights_restore_the_anomaly_rate():
    labels = [1] * 30 + [0] * 10
    w = population_weights(labels, 0.0293)
    anomalous = sum(x for x, y in zip(w, labels, strict=True) if y)
    assert anomalous / sum(w) == pytest.approx(0.0293)


def test_evaluate_bundles_everything():
    m = evaluate([0, 1, 1], [0.1, 0.9, 0.4], [0, 1, 0])
    assert (m.precision, m.recall, m.auroc) == (1.0, 0.5, 1.0)
    assert m.f1 == pytest.approx(2 / 3)
