"""The template miner: Drain's known failures, corrections, state, bounded memory."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from logloupe.model import format_pattern_id
from logloupe.parse.evaluate import evaluate
from logloupe.parse.patterns import MinerConfig, PatternMatch, PatternMiner

FIXTURES = Path(__file__).parent / "fixtures"


def learn(miner: PatternMiner, lines: list[str], **kw: str) -> list[PatternMatch]:
    for line in lines:
        miner.add(line, **kw)
    out = []
    for line in lines:
        m = miner.match(line, **kw)
        assert m is not None
        out.append(m)
    return out


def test_similar_events_stay_apart_vm_started_paused() -> None:
    states = ["Started", "Stopped", "Paused", "Resumed"]
    lines = [
        f"[instance: {uuid}] VM {state} (Lifecycle Event)"
        for uuid in ("b9000564-fe1a-409b-b8cc-1e88b294cd1d", "a1110564-fe1a-409b-b8cc-1e88b294cd1e")
        for state in states
    ]
    results = learn(PatternMiner(), lines)
    templates = {m.template for m in results}
    assert templates == {f"[instance: <*>] VM {s} (Lifecycle Event)" for s in states}
    assert len({m.pattern_id for m in results}) == 4


def test_many_different_words_in_one_place_become_a_variable() -> None:
    users = ["alice", "bob", "carol", "dave", "erin", "frank"]
    results = learn(PatternMiner(), [f"session closed for user {u}" for u in users])
    assert {m.template for m in results} == {"session closed for user <*>"}
    assert results[0].variables == ["alice"]


def test_the_same_words_varying_in_two_events_are_values() -> None:
    lines = [f"session {kind} for user {u}" for u in ("cyrus", "news", "test") for kind in ("opened", "closed")]
    results = learn(PatternMiner(), lines)
    assert {m.template for m in results} == {"session opened for user <*>", "session closed for user <*>"}


def test_subject_word_first_is_not_generalised() -> None:
    daemons = ["cupsd", "sshd", "klogd", "syslogd", "portmap", "hcid", "sdpd"]
    results = learn(PatternMiner(), [f"{d} startup succeeded" for d in daemons])
    assert len({m.pattern_id for m in results}) == len(daemons)


def test_key_value_logs_generalise() -> None:
    lines = [
        f"request done user={u} status={s} path=/api/v1/items/{i}"
        for i, (u, s) in enumerate([("root", "ok"), ("guest", "fail"), ("admin", "ok")])
    ]
    results = learn(PatternMiner(), lines)
    assert {m.template for m in results} == {"request done user=<*> status=<*> path=<*>"}


def test_multi_word_variable_does_not_split_the_event() -> None:
    lines = [
        "Linux version 2.6.5 (gcc version 3.3.3 20040412 (Red Hat Linux 3.3.3-7)) done",
        "Linux version 2.6.9 (gcc version 3.4.1 20041120 (Red Hat Linux 3.4.1-2) 7 8) done",
        "BLOCK* ask 10.250.18.114:50010 to delete blk_-5140072410813878235",
        "BLOCK* ask 10.250.18.114:50010 to delete blk_-1 blk_-2 blk_-3",
    ]
    results = learn(PatternMiner(), lines)
    assert results[0].pattern_id == results[1].pattern_id
    assert results[2].pattern_id == results[3].pattern_id
    assert results[2].template == "BLOCK* ask <*> to delete <*>"


@pytest.mark.parametrize(
    ("line", "template", "variables", "types"),
    [
        (
            "Received block blk_-42 of size 67108864 from /10.251.42.84",
            "Received block <*> of size <*> from <*>",
            ["blk_-42", "67108864", "/10.251.42.84"],
            ["id", "int", "ipv4"],
        ),
        ("Initializing CPU#0", "Initializing CPU#<*>", ["0"], ["int"]),
        ("Took 1.25 seconds to spawn", "Took <*> seconds to spawn", ["1.25"], ["float"]),
        (
            "workerEnv.init() ok /etc/httpd/conf/workers2.properties",
            "workerEnv.init() ok <*>",
            ["/etc/httpd/conf/workers2.properties"],
            ["path"],
        ),
        (
            "Expiring session 0x24ede63a01b003b, timeout of 10000ms exceeded",
            "Expiring session <*>, timeout of <*> exceeded",
            ["0x24ede63a01b003b", "10000ms"],
            ["hex", "duration"],
        ),
    ],
)
def test_variables_are_extracted_with_types(line: str, template: str, variables: list[str], types: list[str]) -> None:
    m = PatternMiner().add(line)
    assert m.is_new
    assert m.template == template
    assert m.variables == variables
    assert m.variable_types == types


def test_ids_are_stable_64_bit_and_survive_generalisation() -> None:
    a, b = PatternMiner(), PatternMiner()
    first = a.add("job 1 finished in 20 ms")
    assert first.pattern_id == b.add("job 1 finished in 20 ms").pattern_id
    assert 0 < first.pattern_id < 1 << 64
    assert len(format_pattern_id(first.pattern_id)) == 16
    assert a.add("job 2 finished in host-7 ms").pattern_id == first.pattern_id


def test_tenants_and_services_are_separate() -> None:
    miner = PatternMiner()
    a = miner.add("disk full on /dev/sda1", tenant="t1", service="db")
    b = miner.add("disk full on /dev/sda1", tenant="t2", service="db")
    c = miner.add("disk full on /dev/sda1", tenant="t1", service="web")
    assert len({a.pattern_id, b.pattern_id, c.pattern_id}) == 3
    assert miner.match("disk full on /dev/sdb2", tenant="t3") is None
    assert [p.template for p in miner.patterns("t1")] == ["disk full on <*>", "disk full on <*>"]
    assert len(miner.patterns("t1", "db")) == 1


def test_match_does_not_learn() -> None:
    miner = PatternMiner()
    miner.add("connected to 10.0.0.1")
    assert miner.match("nothing like this was seen") is None
    assert miner.stats()["clusters"] == 1
    m = miner.match("connected to 10.0.0.2")
    assert m is not None and m.variables == ["10.0.0.2"]


def test_state_round_trips_through_json() -> None:
    miner = PatternMiner()
    lines = [f"user u{i} logged in from 10.0.0.{i}" for i in range(5)] + ["VM Started", "VM Paused"]
    for line in lines:
        miner.add(line, ts_us=1_700_000_000_000_000)
    merged = miner.merge([miner.match("VM Started").pattern_id, miner.match("VM Paused").pattern_id])  # type: ignore[union-attr]
    miner.rename(merged, "vm lifecycle")
    state = json.loads(json.dumps(miner.export_state()))
    again = PatternMiner.from_state(state)
    assert [(p.pattern_id, p.template, p.count, p.name) for p in again.patterns()] == [
        (p.pattern_id, p.template, p.count, p.name) for p in miner.patterns()
    ]
    assert again.add("VM Stopped").pattern_id == merged
    with pytest.raises(ValueError):
        PatternMiner.from_state({"version": 999})


def test_merge_remembers_and_old_ids_resolve() -> None:
    miner = PatternMiner()
    a = miner.add("cache warmed").pattern_id
    b = miner.add("cache cooled").pattern_id
    survivor = miner.merge([a, b])
    assert survivor == a and miner.resolve(b) == a
    assert miner.add("cache cooled").pattern_id == a
    assert [p.template for p in miner.patterns()] == ["cache <*>"]


def test_merge_aliases_are_bounded_with_eviction_stats() -> None:
    miner = PatternMiner(MinerConfig(max_aliases=4))
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]
    ids = [miner.add(f"{w} subsystem {w} finished").pattern_id for w in words]
    assert len(set(ids)) == len(words)
    survivor = ids[0]
    for other in ids[1:]:
        assert miner.merge([survivor, other]) == survivor
    stats = miner.stats()
    assert stats["aliases"] <= 4
    assert stats["aliases_evicted"] == len(words) - 1 - stats["aliases"]
    assert miner.resolve(ids[-1]) == survivor  # the latest merges are remembered
    assert miner.resolve(ids[1]) == ids[1]  # the oldest one is forgotten
    state = PatternMiner.from_state(json.loads(json.dumps(miner.export_state())))
    assert state.stats()["aliases"] == stats["aliases"]


def test_split_keeps_the_value_for_later_lines() -> None:
    miner = PatternMiner()
    for n in range(3):
        miner.add(f"worker {n} ready")
    pid = miner.match("worker 1 ready").pattern_id  # type: ignore[union-attr]
    miner.split(pid, 1)
    one = miner.add("worker 1 ready")
    two = miner.add("worker 2 ready")
    assert one.template == "worker 1 ready" and two.template == "worker 2 ready"
    assert one.pattern_id != two.pattern_id
    with pytest.raises(ValueError):
        miner.split(pid, 7)


def test_memory_is_bounded_with_eviction_stats() -> None:
    miner = PatternMiner(MinerConfig(max_clusters=50, max_signatures=100))
    for i in range(500):
        name = "".join("abcdefghij"[int(d)] for d in str(i))
        miner.add(f"{name} kind{i % 7} happened")
    stats = miner.stats()
    assert stats["clusters"] <= 50
    assert stats["clusters_evicted"] > 0
    assert stats["signatures"] <= 100
    assert stats["lines"] == 500


def test_rename_and_unknown_pattern() -> None:
    miner = PatternMiner()
    pid = miner.add("hello world").pattern_id
    miner.rename(pid, "greeting")
    assert miner.patterns()[0].name == "greeting"
    with pytest.raises(KeyError):
        miner.rename(12345, "x")


def test_loghub_fixture_accuracy() -> None:
    with open(FIXTURES / "hdfs_sample.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    results = learn(PatternMiner(), [r["Content"] for r in rows])
    acc = evaluate(
        [m.pattern_id for m in results],
        [m.template for m in results],
        [r["EventId"] for r in rows],
        [r["EventTemplate"] for r in rows],
    )
    assert acc.grouping == 1.0
    assert acc.parsing == 1.0


def test_empty_and_huge_messages() -> None:
    miner = PatternMiner()
    assert miner.add("").template == ""
    m = miner.add(" ".join(f"w{i}" for i in range(1000)))
    assert m.template.endswith("<*>")
    assert len(m.template.split()) == MinerConfig().max_tokens


def test_add_many_is_add_in_order() -> None:
    """The ingest path's batch form: the same ids, variables and state as ``add`` line by line."""
    lines = (FIXTURES / "hdfs_sample.log").read_text().splitlines()
    extra = [f"user u{i % 9} logged in from 10.0.0.{i % 250} after {i} ms" for i in range(300)]
    items = [
        (m, f"t{i % 2}", ("hdfs", "auth")[i % 3 == 0], 1000 + i if i % 4 else 0) for i, m in enumerate(lines + extra)
    ]
    items = items + items[::-1]
    one, many = PatternMiner(), PatternMiner()
    expected = [one.add(m, tenant=t, service=s, ts_us=ts) for m, t, s, ts in items]
    got = [r for i in range(0, len(items), 97) for r in many.add_many(items[i : i + 97])]
    assert [(m.pattern_id, m.variables) for m in expected] == [(pid, v) for pid, v, _ in got]
    assert [m.is_new for m in expected] == [bool(match and match.is_new) for _, _, match in got]
    assert json.dumps(one.export_state(), sort_keys=True) == json.dumps(many.export_state(), sort_keys=True)
