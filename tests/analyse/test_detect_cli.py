import csv
import random

from click.testing import CliRunner

from logloupe.cli.main import main


def write_sessions(path, rows):
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["SessionId", "Label", "EventSequence"])
        writer.writerows(rows)


def normal(rng):
    served = ["E3"] * rng.choice([0, 1])
    return " ".join(["E22"] + ["E5"] * 3 + ["E9", "E11", "E26"] * 3 + served + ["E21"] * 3)


def test_detect_end_to_end(tmp_path):
    rng = random.Random(3)
    train = [(f"t{i}", 0, normal(rng)) for i in range(300)]
    test = [(f"n{i}", 0, normal(rng)) for i in range(20)]
    # The Label column must be ignored: lie in it.
    test += [("bad-new-event", 0, "E22 E5 E5 E5 E7 E9 E11 E26"), ("bad-truncated", 0, "E22 E5")]
    write_sessions(tmp_path / "train.csv", train)
    write_sessions(tmp_path / "test.csv", test)
    out = tmp_path / "out.csv"
    args = ["detect", "--train", str(tmp_path / "train.csv"), "--test", str(tmp_path / "test.csv")]
    result = CliRunner().invoke(main, [*args, "--output", str(out)])
    assert result.exit_code == 0, result.output
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["SessionId", "Score", "Anomaly"]
    assert [r["SessionId"] for r in rows] == [t[0] for t in test]
    assert all(0 <= float(r["Score"]) <= 1 for r in rows)
    flagged = {r["SessionId"] for r in rows if r["Anomaly"] == "1"}
    assert flagged == {"bad-new-event", "bad-truncated"}


def test_detect_explains(tmp_path):
    write_sessions(tmp_path / "train.csv", [(f"t{i}", 0, "A B C") for i in range(50)])
    write_sessions(tmp_path / "test.csv", [("x", 1, "A B Z")])
    out = tmp_path / "out.csv"
    args = ["detect", "--train", str(tmp_path / "train.csv"), "--test", str(tmp_path / "test.csv")]
    result = CliRunner().invoke(main, [*args, "--output", str(out), "--explain"])
    assert result.exit_code == 0, result.output
    row = next(csv.DictReader(out.open(newline="")))
    assert row["Anomaly"] == "1"
    assert "Z" in row["Reasons"]


def test_detect_rejects_a_file_without_the_columns(tmp_path):
    (tmp_path / "train.csv").write_text("a,b\n1,2\n")
    (tmp_path / "test.csv").write_text("SessionId,EventSequence\nx,A\n")
    args = ["detect", "--train", str(tmp_path / "train.csv"), "--test", str(tmp_path / "test.csv")]
    result = CliRunner().invoke(main, [*args, "--output", str(tmp_path / "o.csv")])
    assert result.exit_code == 2
    assert "SessionId" in result.output


def test_detect_reads_very_long_sessions(tmp_path):
    long_session = " ".join(["E1"] * 60_000)  # ~180 KB in one field
    write_sessions(tmp_path / "train.csv", [("a", 0, long_session), ("b", 0, "E1 E2")])
    write_sessions(tmp_path / "test.csv", [("c", 0, long_session)])
    out = tmp_path / "out.csv"
    args = ["detect", "--train", str(tmp_path / "train.csv"), "--test", str(tmp_path / "test.csv")]
    result = CliRunner().invoke(main, [*args, "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert next(csv.DictReader(out.open(newline="")))["SessionId"] == "c"


def test_detect_reads_a_file_with_a_byte_order_mark(tmp_path):
    write_sessions(tmp_path / "train.csv", [(f"t{i}", 0, "A B C") for i in range(50)])
    (tmp_path / "test.csv").write_bytes(b"\xef\xbb\xbfSessionId,EventSequence\nx,A B Z\n")  # as Excel saves it
    args = ["detect", "--train", str(tmp_path / "train.csv"), "--test", str(tmp_path / "test.csv")]
    result = CliRunner().invoke(main, [*args, "--output", str(tmp_path / "o.csv")])
    assert result.exit_code == 0, result.output
    assert next(csv.DictReader((tmp_path / "o.csv").open(newline="")))["Anomaly"] == "1"


def test_detect_spares_sessions_cut_between_complete_steps(tmp_path):
    rng = random.Random(4)
    train = [(f"t{i}", 0, normal(rng)) for i in range(300)]
    in_flight = " ".join(["E22"] + ["E5"] * 3 + ["E9", "E11", "E26"] * 3)  # stored, not yet deleted
    write_sessions(tmp_path / "train.csv", train)
    write_sessions(tmp_path / "test.csv", [("in-flight", 0, in_flight), ("stopped", 0, "E22 E5 E5")])
    flagged = {}
    for flag in ("--unfinished", "--no-unfinished"):
        out = tmp_path / f"out{flag}.csv"
        args = ["detect", "--train", str(tmp_path / "train.csv"), "--test", str(tmp_path / "test.csv")]
        result = CliRunner().invoke(main, [*args, "--output", str(out), flag])
        assert result.exit_code == 0, result.output
        with out.open(newline="") as fh:
            flagged[flag] = {r["SessionId"] for r in csv.DictReader(fh) if r["Anomaly"] == "1"}
    assert flagged["--unfinished"] == {"stopped"}
    assert flagged["--no-unfinished"] == {"in-flight", "stopped"}


def test_detect_judges_fixed_windows_by_line_rarity(tmp_path):
    # Fixed windows of a stream where one alert line sits in a fifth of the training windows: too
    # many windows for window rarity, too few lines to be normal.
    rng = random.Random(5)
    train = []
    for i in range(300):
        window = [rng.choice(["E1", "E1", "E2"]) for _ in range(50)]
        if i % 5 == 0:
            window[10] = "E9"
        train.append((f"w{i}", 0, " ".join(window)))
    test = [("quiet", 0, " ".join(["E1"] * 50)), ("alert", 0, " ".join(["E1"] * 49 + ["E9"]))]
    write_sessions(tmp_path / "train.csv", train)
    write_sessions(tmp_path / "test.csv", test)
    base = ["detect", "--train", str(tmp_path / "train.csv"), "--test", str(tmp_path / "test.csv")]

    def flagged(*extra: str) -> set[str]:
        out = tmp_path / "out.csv"
        result = CliRunner().invoke(main, [*base, "--output", str(out), *extra])
        assert result.exit_code == 0, result.output
        with out.open(newline="") as fh:
            return {r["SessionId"] for r in csv.DictReader(fh) if r["Anomaly"] == "1"}

    assert flagged() == {"alert"}
    assert flagged("--no-line-rarity") == set()


def test_detect_flags_exclusive_outcomes_by_default(tmp_path):
    rng = random.Random(5)
    faults = ("E20", "E27", "E28")  # a delete error, a redundant store, a store for no file
    # An incident export: two thirds of the blocks failed, each one way, each way common.
    train = [(f"n{i}", 0, normal(rng)) for i in range(200)]
    train += [(f"a{i}", 1, f"{normal(rng)} {faults[i % 3]}") for i in range(400)]
    test = [("ok", 0, normal(rng)), *((f"bad-{f}", 1, f"{normal(rng)} {f}") for f in faults)]
    write_sessions(tmp_path / "train.csv", train)
    write_sessions(tmp_path / "test.csv", test)
    flagged = {}
    for flag in ("--exclusive-events", "--no-exclusive-events"):
        out = tmp_path / f"out{flag}.csv"
        args = ["detect", "--train", str(tmp_path / "train.csv"), "--test", str(tmp_path / "test.csv")]
        result = CliRunner().invoke(main, [*args, "--output", str(out), "--explain", flag])
        assert result.exit_code == 0, result.output
        with out.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        flagged[flag] = {r["SessionId"] for r in rows if r["Anomaly"] == "1"}
        if flag == "--exclusive-events":
            assert "E20 is one of exclusive outcomes" in rows[1]["Reasons"]
    assert flagged["--exclusive-events"] == {"bad-E20", "bad-E27", "bad-E28"}
    assert flagged["--no-exclusive-events"] == set()
