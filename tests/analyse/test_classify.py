from __future__ import annotations

from pathlib import Path

import pytest

from logloupe.analyse.classify import (
    INCIDENT,
    NORMAL,
    PREVENTIVE,
    Classifier,
    LinearModel,
    detect_level,
    evidence,
    tenant_model_path,
)
from logloupe.analyse.training.corpus import generate
from logloupe.analyse.training.train import Example, evaluate, split, train_model

# ../shared/data from the project root (a worktree sits one level deeper).
_ROOT = Path(__file__).resolve().parents[2]
BGL = next(
    (
        p
        for p in (r / "shared/data/loghub-2k/BGL/BGL_2k.log" for r in (_ROOT.parent, _ROOT.parent.parent))
        if p.exists()
    ),
    _ROOT.parent / "shared/data/loghub-2k/BGL/BGL_2k.log",
)


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ("2024-01-01 12:00:00 ERROR db: down", "error"),
        ("<11>Jan  1 host app: boom", "error"),
        ("[warn] disk almost full", "warn"),
        ("1117838570 2005.06.03 R02 RAS KERNEL FATAL data TLB error interrupt", "fatal"),
        ("an error happened in lower case", None),
        ("081109 203615 148 INFO dfs.DataNode: Receiving block", "info"),
    ],
)
def test_detect_level(line: str, level: str | None) -> None:
    assert detect_level(line) == level


@pytest.mark.parametrize(
    ("line", "label"),
    [
        ("Jun 1 10:00:00 node1 kernel: Out of memory: Killed process 1234 (java)", INCIDENT),
        ("2024-01-01 ERROR java.net.ConnectException: Connection refused", INCIDENT),
        ("kernel: end_request: I/O error, dev sda, sector 12345", INCIDENT),
        ("FATAL machine state register: 0x00002000", NORMAL),  # a dump line adds context only
        ("FATAL program interrupt: illegal instruction......0", NORMAL),
        ("FATAL Error loading /home/u/a.out: No such file or directory", PREVENTIVE),
        ("INFO instruction cache parity error corrected", NORMAL),
        ("WARN filesystem /var is 93% full", PREVENTIVE),
        ("INFO request 42 completed in 12 ms", NORMAL),
    ],
)
def test_default_classifier_labels(line: str, label: str) -> None:
    result = Classifier.default().classify(line)
    assert result.label == label, (result, evidence(line))
    assert 0.0 <= result.confidence <= 1.0


def test_rules_alone_still_classify() -> None:
    clf = Classifier(model=None)
    assert clf.classify("kernel panic - not syncing").label == INCIDENT
    assert clf.classify("user logged in").label == NORMAL


def test_train_roundtrip_and_scores(tmp_path: Path) -> None:
    rows = [Example(r["message"], r["label"]) for r in generate(seed=3, per_template=4)]
    train, test = split(rows, 0.25)
    assert {e.label for e in test} == {INCIDENT, PREVENTIVE, NORMAL}
    model = train_model(train, buckets=1 << 14, epochs=30)
    scores = {s.label: s for s in evaluate(model, test)}
    assert scores[INCIDENT].f1 > 0.9
    path = tenant_model_path(tmp_path, "acme")
    model.save(path)
    again = LinearModel.load(path)
    line = "kernel: Buffer I/O error on device sda, logical block 7"
    assert again.proba(["w:io"]) == pytest.approx(model.proba(["w:io"]), abs=1e-3)
    assert Classifier(again).classify(line).label == INCIDENT


def test_tenant_names_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        tenant_model_path(tmp_path, "../etc")


@pytest.mark.skipif(not BGL.exists(), reason="shared Loghub data not present")
def test_bgl_incident_f1_without_bgl_training() -> None:
    clf = Classifier.default()
    tp = fp = fn = 0
    for raw in BGL.read_text(encoding="utf-8", errors="replace").splitlines():
        label, _, rest = raw.partition(" ")
        truth, pred = label != "-", clf.classify(rest).label == INCIDENT
        tp += truth and pred
        fp += (not truth) and pred
        fn += truth and not pred
    f1 = 2 * tp / (2 * tp + fp + fn)
    assert f1 >= 0.8


def test_the_pipeline_uses_a_tenants_installed_model(tmp_path: Path) -> None:
    from logloupe.pipeline.enrich import Enricher

    rows = [Example(r["message"], r["label"]) for r in generate(seed=5, per_template=2)]
    model = train_model(rows, buckets=1 << 12, epochs=5)
    model.save(tenant_model_path(tmp_path, "acme"))
    enricher = Enricher(data_dir=tmp_path)
    installed = enricher.classifier_for("acme").model
    assert installed is not None and installed is not enricher.classifier.model
    assert installed.proba(["w:io"]) == pytest.approx(model.proba(["w:io"]), abs=1e-3)
    assert enricher.classifier_for("other").model is enricher.classifier_for("other").model  # cached
    assert enricher.classifier_for("../etc") is enricher.classifier  # unusable names get the default


@pytest.mark.parametrize(
    "line",
    [
        "ERROR connection refused to db:5432",
        "ERROR Timeout waiting for response from port: 8080",
        "2024-05-01 10:00:00 ERROR api: failed to connect to 10.0.0.5:5432 after 3 attempts",
        "ERROR upstream timed out: 30000 ms",
        "ERROR request 4f2a9c1e failed: 0xdeadbeef",
    ],
)
def test_a_port_or_a_number_after_a_colon_is_not_a_dump(line: str) -> None:
    assert not evidence(line).dump
    result = Classifier.default().classify(line)
    assert result.label == INCIDENT and result.confidence > 0.8, (result, evidence(line))


@pytest.mark.parametrize(
    "line",
    [
        "RAS KERNEL FATAL machine check status register: 0xe0000000",
        "RAS KERNEL FATAL exception syndrome register: 0x00800000",  # "exception" names the register
        "RAS KERNEL FATAL core configuration register: 00002000 0000ffff",
        "RAS KERNEL INFO lr:00004ed0 cr:28244842 xer:20000002 ctr:00086000",
        "RAS KERNEL FATAL r00=0x00000000 r01=0x00fe3e60 r02=0x00000000",
        "RAS KERNEL FATAL program interrupt: imprecise exception......0",
        "RAS KERNEL FATAL special purpose registers:",
    ],
)
def test_register_dumps_stay_context(line: str) -> None:
    assert evidence(line).dump
    assert Classifier.default().classify(line).label == NORMAL


def test_rows_of_values_do_not_hide_failure_wording() -> None:
    # Mostly values, but the wording says the system failed: the value-row rule does not apply.
    line = "ERROR link down 4f2a9c1e 7b3d00aa 9c8e1f02 0xdead"
    assert not evidence(line).dump and Classifier.default().classify(line).label == INCIDENT
    assert evidence("4f2a9c1e 7b3d00aa 9c8e1f02 0xdead").dump


@pytest.mark.parametrize(
    ("name", "coarse"), [("ERROR", "error"), ("WARN", "warn"), ("INFO", "info"), ("TRACE", "debug")]
)
def test_stored_level_names_count_as_levels(name: str, coarse: str) -> None:
    # The server passes a stored event's level by its name (``Level.ERROR.name``).
    clf = Classifier.default()
    assert clf.classify("disk usage report", name) == clf.classify("disk usage report", coarse)
    assert f"level {coarse}" in clf.classify("disk usage report", name).reasons


def test_a_level_word_in_the_text_beats_a_given_info() -> None:
    # INFO is also ingest's default for a line that named no level (here a BGL header the parser
    # did not split off): the FATAL the text carries decides.
    clf = Classifier.default()
    line = "1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 R02-M1-N0-C:J12-U11 RAS KERNEL FATAL data TLB error interrupt"
    assert clf.classify(line, "INFO") == clf.classify(line)
    assert clf.classify(line, "INFO").label == INCIDENT
    # A level given other than INFO stays the event's level.
    assert "level debug" in clf.classify(line, "DEBUG").reasons
