import random

import pytest

from logloupe.analyse.anomaly.sessions import SessionModel
from logloupe.errors import InvalidInput


def normal_session(rng: random.Random) -> list[str]:
    """A block's life: allocate, three replicas received and stored, maybe served, deleted."""
    events = ["alloc"] + ["recv"] * 3 + ["stored"] * 3
    events += ["served"] * rng.choice([0, 0, 1, 2])
    events += ["delete"] * 3
    return events


@pytest.fixture(scope="module")
def model() -> SessionModel:
    rng = random.Random(1)
    return SessionModel().fit([normal_session(rng) for _ in range(2000)])


def test_normal_sessions_stay_below_the_threshold(model):
    rng = random.Random(2)
    scores = model.score_many([normal_session(rng) for _ in range(500)])
    assert not any(s.anomaly for s in scores)
    assert all(0 <= s.score < 0.5 for s in scores)


def test_an_unseen_event_is_anomalous_and_named(model):
    result = model.score(["alloc", "recv", "recv", "recv", "exception", "stored", "stored", "stored"])
    assert result.anomaly
    assert 0.5 <= result.score <= 1
    assert any("exception" in reason for reason in result.reasons)


def test_a_truncated_session_breaks_the_count_relations(model):
    result = model.score(["alloc", "recv", "recv"])
    assert result.anomaly
    assert result.structure >= 1
    assert any("relations" in reason for reason in result.reasons)


def test_scores_rank_worse_sessions_higher(model):
    slightly = model.score(["alloc"] + ["recv"] * 3 + ["stored"] * 2 + ["delete"] * 3)
    badly = model.score(["alloc", "recv"])
    assert badly.score > slightly.score


def test_cannot_fit_nothing_or_score_unfitted():
    with pytest.raises(InvalidInput):
        SessionModel().fit([])
    with pytest.raises(InvalidInput):
        SessionModel().score(["a"])


def test_fixed_windows_ignore_where_they_start_and_end():
    rng = random.Random(4)
    stream = [rng.choice("abc") for _ in range(20_000)]
    windows = [stream[i : i + 100] for i in range(0, len(stream), 100)]
    model = SessionModel().fit(windows)
    assert model.windows
    # Starts and ends on a rare-at-the-boundary event, but every event and count is ordinary.
    probe = ["c"] * 33 + ["a"] * 34 + ["b"] * 33
    result = model.score(probe)
    assert not result.anomaly, result


def test_judging_session_ends_names_the_early_end():
    rng = random.Random(5)
    model = SessionModel(boundary_weight=1.0).fit([normal_session(rng) for _ in range(2000)])
    result = model.score(["alloc"] + ["recv"] * 3 + ["stored"] * 3)
    assert result.anomaly
    assert any("stored → $" in reason for reason in result.reasons)


def test_structure_survives_a_few_anomalies_in_training():
    rng = random.Random(6)
    train = [normal_session(rng) for _ in range(1940)] + [["alloc", "recv"]] * 60  # 3 % truncated
    assert SessionModel().fit(train).score(["alloc", "recv"]).anomaly
    assert SessionModel(robust_core=0.55).fit(train).score(["alloc", "recv"]).anomaly
    # Without trimming or a robust core, the anomalies' own direction joins the "normal" subspace.
    assert not SessionModel(robust_core=0, structure_trim=0.0).fit(train).score(["alloc", "recv"]).anomaly


def test_the_robust_core_survives_many_anomalies_in_training():
    rng = random.Random(7)
    train = [normal_session(rng) for _ in range(1200)] + [["alloc", "recv"]] * 800  # 40 % truncated
    model = SessionModel(robust_core=0.55).fit(train)
    assert model.score(["alloc", "recv"]).anomaly
    assert 0.55 <= model.core_share <= 0.65, "the core and what it explains: the normal sessions"
    assert not any(model.score(normal_session(rng)).anomaly for _ in range(200))
    # Trimming 5 % three times cannot take out 40 %: the trimmed fit learns them as normal.
    assert not SessionModel().fit(train).score(["alloc", "recv"]).anomaly


def test_the_robust_core_takes_a_large_minority_shape_for_anomalies():
    # The price of a robust core: a normal shape a third of the sessions share, but structurally
    # unlike the rest (blocks not deleted yet), is flagged; the trimmed fit (the default) learns it.
    rng = random.Random(8)
    complete = [normal_session(rng) for _ in range(1400)]
    undeleted = [[e for e in normal_session(rng) if e != "delete"] for _ in range(700)]
    probe = [e for e in normal_session(rng) if e != "delete"]
    assert "delete" not in probe
    assert SessionModel(robust_core=0.55).fit(complete + undeleted).score(probe).anomaly
    assert not SessionModel().fit(complete + undeleted).score(probe).anomaly
