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


def block_with_reads(rng: random.Random) -> list[str]:
    """A block's life where most blocks are never read and the others any number of times, with
    or without a verification: optional events whose counts vary freely."""
    events = ["alloc"] + ["recv"] * 3 + ["stored"] * 3
    if rng.random() < 0.4:
        events += ["served"] * rng.randint(1, 8) + ["verified"] * rng.choice([0, 1, 2])
    return [*events, "delete", "delete", "delete"]


def test_the_skeleton_leaves_optional_events_to_their_rarity():
    rng = random.Random(11)
    train = [block_with_reads(rng) for _ in range(1200)] + [["alloc", "recv"]] * 800  # 40 % truncated
    test = [block_with_reads(rng) for _ in range(400)]
    full = SessionModel(robust_core=0.55).fit(train)
    skeleton = SessionModel(robust_core=0.55, structure_share=0.95).fit(train)
    # The core is the unread blocks: judged on every event, a read block breaks its relations.
    assert sum(full.score(s).anomaly for s in test) > 50
    assert set(skeleton.vocab) == {"alloc", "recv", "stored", "delete"}
    assert not any(skeleton.score(s).anomaly for s in test)
    # What breaks the skeleton is still caught: stopped early, an extra replica stored, a new event.
    assert skeleton.score(["alloc", "recv"]).anomaly
    extra = ["alloc", *["recv"] * 3, *["stored"] * 4, *["delete"] * 3]
    assert skeleton.score(extra).anomaly
    assert skeleton.score([*block_with_reads(rng), "exception"]).anomaly


def test_a_session_cut_between_complete_steps_is_unfinished_not_broken():
    rng = random.Random(12)
    train = [block_with_reads(rng) for _ in range(1500)]
    in_flight = ["alloc", *["recv"] * 3, *["stored"] * 3]  # stored; the log ends before the delete
    part_way = ["alloc", "recv", "recv"]  # one replica of three never received: no complete step
    plain = SessionModel(robust_core=0.55, structure_share=0.95).fit(train)
    spared = SessionModel(robust_core=0.55, structure_share=0.95, unfinished=True).fit(train)
    assert plain.score(in_flight).anomaly
    result = spared.score(in_flight)
    assert not result.anomaly
    assert 0.4 < result.score < 0.5, "ranked above complete sessions, below the threshold"
    assert result.unfinished > 1000
    assert spared.score(part_way).anomaly
    assert spared.score(part_way).unfinished == 0
    # An unseen event is still judged by its rarity, unfinished or not.
    assert spared.score([*in_flight, "exception"]).anomaly
    assert not any(spared.score(block_with_reads(rng)).anomaly for _ in range(200))


def test_unfinished_cuts_come_only_from_sessions_the_model_finds_normal():
    rng = random.Random(13)
    # 40 % of the training sessions stop after two receptions; their prefixes are no evidence.
    train = [block_with_reads(rng) for _ in range(1200)] + [["alloc", "recv", "recv", "oops"]] * 800
    model = SessionModel(robust_core=0.55, structure_share=0.95, unfinished=True).fit(train)
    assert model.n_normal == 1200
    assert model.score(["alloc", "recv", "recv"]).anomaly


def test_fixed_windows_learn_no_cuts():
    rng = random.Random(14)
    windows = [[rng.choice("abcd") for _ in range(20)] for _ in range(300)]
    model = SessionModel(unfinished=True, structure_share=0.95).fit(windows)
    assert model.windows
    assert not model.cuts


def test_structure_share_must_be_a_share():
    with pytest.raises(InvalidInput):
        SessionModel(structure_share=1.5)


def _stream_windows(rng: random.Random, n: int, sprinkle: float) -> list[list[str]]:
    """Fixed 50-line windows of a stream in three regimes, as BGL's: most windows are one
    repeated line ("gen" × 50), some are a burst of another ("ecc" × 50: a normal shape shared by
    a large minority); in ``sprinkle`` of them one "gen" line is replaced by an "alert"."""
    windows = []
    for _ in range(n):
        if rng.random() < 0.2:
            windows.append(["ecc"] * 50)
            continue
        window = ["gen"] * 50
        if rng.random() < sprinkle:
            window[rng.randrange(50)] = "alert"
        windows.append(window)
    return windows


DETECT = {"robust_core": 0.55, "structure_share": 0.95, "unfinished": True}


def test_windows_with_a_common_normal_shape_are_not_broken_relations():
    # Most training windows are identical: the robust core is an exact fit with no residual
    # variance, and the old window model flagged every other shape as breaking its relations,
    # even one a fifth of the training windows share (BGL odd/even, normal-only: 58 false alarms).
    train = _stream_windows(random.Random(21), 400, sprinkle=0.0)
    old = SessionModel(robust_core=0.55, unfinished=True).fit(train)
    assert old.windows
    assert old.score(["ecc"] * 50).structure >= 1
    model = SessionModel(**DETECT, line_rarity=True).fit(train)
    assert model.windows
    assert not model.vocab  # windows have no skeleton: their counts are not judged
    result = model.score(["ecc"] * 50)
    assert not result.anomaly
    assert result.structure == 0


def test_line_rarity_flags_a_sparse_event_that_many_windows_hold():
    # The alert is one line in each of 30 % of the training windows (a long burst the training
    # data holds, unlabelled): in too many windows to be rare by windows, 0.5 % of the lines.
    train = _stream_windows(random.Random(22), 400, sprinkle=0.3)
    by_windows = SessionModel(**DETECT).fit(train)
    by_lines = SessionModel(**DETECT, line_rarity=True).fit(train)
    alert = ["gen"] * 49 + ["alert"]
    assert not by_windows.score(alert).anomaly
    result = by_lines.score(alert)
    assert result.anomaly
    assert result.rarest == "alert"
    assert any("training lines" in reason for reason in result.reasons)
    # Common lines stay normal, and so does the burst of the other regime.
    assert not by_lines.score(["gen"] * 50).anomaly
    assert not by_lines.score(["ecc"] * 50).anomaly
    assert by_lines.score(["gen"] * 49 + ["never-seen"]).anomaly


def test_line_rarity_leaves_sessions_of_their_own_alone():
    rng = random.Random(23)
    train = [normal_session(rng) for _ in range(1000)]
    test = [normal_session(rng) for _ in range(50)] + [["alloc", "recv", "oops"]]
    plain = SessionModel(**DETECT).fit(train).score_many(test)
    lines = SessionModel(**DETECT, line_rarity=True).fit(train)
    assert not lines.windows
    assert lines.score_many(test) == plain


FAULTS = ("delete_error", "redundant_store", "empty_packet")


def block_with_a_fault(rng: random.Random, fault: str) -> list[str]:
    """A complete block that went wrong one way: one fault event, the normal extras as usual."""
    return [*block_with_reads(rng), fault]


def mostly_faulty_training(rng: random.Random) -> list[list[str]]:
    """Like an incident export: 70 % of the blocks failed, each one way, each way common."""
    train = [block_with_reads(rng) for _ in range(600)]
    train += [block_with_a_fault(rng, FAULTS[i % 3]) for i in range(1400)]
    rng.shuffle(train)
    return train


def test_exclusive_outcomes_are_flagged_when_common_in_training():
    rng = random.Random(21)
    train = mostly_faulty_training(rng)
    plain = SessionModel(robust_core=0.55, structure_share=0.95).fit(train)
    model = SessionModel(robust_core=0.55, structure_share=0.95, exclusive_events=True).fit(train)
    # Each fault is in about 23 % of the training sessions: far too common to be rare.
    assert not any(plain.score(block_with_a_fault(rng, fault)).anomaly for fault in FAULTS)
    assert set(model.outcomes) == set(FAULTS)
    for fault in FAULTS:
        result = model.score(block_with_a_fault(rng, fault))
        assert result.anomaly
        assert result.outcome == fault
        assert result.exclusive > 1
        assert any(f"event {fault} is one of exclusive outcomes" in reason for reason in result.reasons)
    # Reads and verifications combine freely with each other and with faults: never outcomes.
    assert not any(model.score(block_with_reads(rng)).anomaly for _ in range(300))


def test_alternatives_every_session_takes_one_of_are_not_outcomes():
    rng = random.Random(22)
    paths = ("from_memory", "from_disk", "from_remote")
    train = [[*block_with_reads(rng), rng.choice(paths)] for _ in range(2000)]
    model = SessionModel(robust_core=0.55, structure_share=0.95, exclusive_events=True).fit(train)
    assert not model.outcomes
    assert not any(model.score([*block_with_reads(rng), path]).anomaly for path in paths)


def test_a_path_most_sessions_take_is_not_an_outcome_of_its_rarer_alternative():
    rng = random.Random(23)
    # Most blocks are served; an empty packet (15 %) means the block is never served.
    train = []
    for _ in range(2000):
        block = ["alloc", *["recv"] * 3, *["stored"] * 3]
        if rng.random() < 0.15:
            block.append("empty_packet")
        elif rng.random() < 0.7:
            block += ["served"] * rng.randint(1, 3)
        train.append([*block, *["delete"] * 3])
    model = SessionModel(robust_core=0.55, structure_share=0.95, exclusive_events=True).fit(train)
    assert set(model.outcomes) == {"empty_packet"}
    assert model.outcomes["empty_packet"][1] == ("empty_packet", "served")


def test_an_event_of_a_session_called_normal_is_never_an_outcome():
    rng = random.Random(24)
    train = mostly_faulty_training(rng)
    vouched = [block_with_a_fault(rng, "delete_error")]
    model = SessionModel(robust_core=0.55, structure_share=0.95, exclusive_events=True).fit(train, normal=vouched)
    assert set(model.outcomes) == {"redundant_store", "empty_packet"}
    assert not model.score(block_with_a_fault(rng, "delete_error")).anomaly


def test_fixed_windows_learn_no_exclusive_outcomes():
    rng = random.Random(25)
    windows = [[rng.choice("ab"), *[rng.choice("cd") for _ in range(19)]] for _ in range(600)]
    model = SessionModel(structure_share=0.95, exclusive_events=True).fit(windows)
    assert model.windows
    assert not model.outcomes


def test_independent_optional_events_are_never_outcomes():
    """Many optional events, each at its own rate (2 % to 60 %), drawn independently: chance never
    makes two of them look exclusive, however the training file mixes them."""
    rng = random.Random(26)
    rates = {f"extra_{i}": rate for i, rate in enumerate((0.02, 0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.15, 0.08))}

    def session() -> list[str]:
        block = ["alloc", *["recv"] * 3, *["stored"] * 3]
        block += [event for event, rate in rates.items() if rng.random() < rate]
        return [*block, *["delete"] * 3]

    for _ in range(3):
        model = SessionModel(robust_core=0.55, structure_share=0.95, exclusive_events=True)
        model.fit([session() for _ in range(5000)])
        assert not model.outcomes
        assert sum(model.score(session()).anomaly for _ in range(500)) == 0
