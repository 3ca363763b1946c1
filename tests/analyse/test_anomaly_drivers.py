"""Which variable values drove an anomaly: more common in it than in the baseline."""

from __future__ import annotations

from logloupe.analyse.anomaly.drivers import value_drivers


def test_values_more_common_than_in_the_baseline_drive_the_anomaly() -> None:
    baseline = [(7, ["db-1", "GET"])] * 50 + [(7, ["db-2", "GET"])] * 50
    anomalous = [(7, ["db-2", "GET"])] * 18 + [(7, ["db-1", "GET"])] * 2 + [(9, ["x"])]
    drivers = value_drivers(anomalous, baseline)
    assert [(d["variable"], d["value"]) for d in drivers] == [("var.0", "db-2")]  # GET: as common as before
    assert drivers[0] == {
        "pattern_id": "0000000000000007",
        "variable": "var.0",
        "value": "db-2",
        "count": 18,
        "share": 0.9,
        "baseline_share": 0.5,
    }
    # A pattern without a baseline: its common values are all new; a value seen once drives nothing.
    fresh = value_drivers([(3, ["a"]), (3, ["a"]), (3, ["b"])], [])
    assert [(d["value"], d["share"], d["baseline_share"]) for d in fresh] == [("a", 0.667, 0.0)]
    assert value_drivers([], baseline) == []
