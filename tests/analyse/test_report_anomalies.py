"""`logloupe analyze` runs the online anomaly detector over the file and reports what it found."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from logloupe.analyse.anomaly.offline import FileAnomalies
from logloupe.cli.main import main

BASELINE_MINUTES = 45
PER_MINUTE = 12


def _write_log(path: Path, burst_text: str = "db pool exhausted: 50 of 50 connections busy") -> list[int]:
    """A steady baseline of api INFO lines, then one minute with a burst of a new ERROR pattern.
    Returns the line numbers of the burst."""
    lines: list[str] = []
    burst: list[int] = []
    for minute in range(BASELINE_MINUTES + 3):
        for k in range(PER_MINUTE):
            ts = f"2024-05-01 10:{minute:02d}:{k * 4:02d}"
            lines.append(f"{ts} INFO api: request {minute * 100 + k} served in {k + 3} ms")
        if minute == BASELINE_MINUTES:
            for k in range(40):
                ts = f"2024-05-01 10:{minute:02d}:{k:02d}"
                lines.append(f"{ts} ERROR api: {burst_text} (attempt {k})")
                burst.append(len(lines))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return burst


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("LOGLOUPE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def test_json_report_lists_the_burst_with_its_line_numbers(runner: CliRunner, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    burst = _write_log(log)
    result = runner.invoke(main, ["analyze", str(log), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    anomalies = report["anomalies"]
    assert report["anomaly_count"] >= len(anomalies) > 0
    assert all(a["score"] >= 0.7 for a in anomalies)
    assert all(set(a) >= {"kind", "service", "score", "ts", "explanation", "pattern_ids", "lines"} for a in anomalies)
    new = [a for a in anomalies if a["kind"] == "new_pattern"]
    assert len(new) == 1
    # The service is the upload's (the file's name); "api" in the text is ingest's logger attribute.
    assert new[0]["lines"] == [burst[0]] and new[0]["service"] == "app"
    assert new[0]["ts"] == f"2024-05-01T10:{BASELINE_MINUTES:02d}:00Z"
    error_pattern = new[0]["pattern_ids"][0]
    assert any(p["pattern_id"] == error_pattern and "pool exhausted" in p["template"] for p in report["patterns"])
    rates = [a for a in anomalies if a["kind"] in ("rate_spike", "error_ratio")]
    assert rates, anomalies
    for a in rates:
        assert set(a["lines"]) & set(burst)
        assert set(a["lines"]) <= set(range(burst[0] - PER_MINUTE, burst[-1] + PER_MINUTE + 1))
    assert any(error_pattern in a["pattern_ids"] for a in rates)
    # Nothing flagged in the steady baseline before the burst.
    assert all(min(a["lines"]) >= burst[0] - PER_MINUTE for a in anomalies if a["lines"])


def test_steady_file_has_no_anomalies_and_text_says_so(runner: CliRunner, tmp_path: Path) -> None:
    log = tmp_path / "steady.log"
    log.write_text(
        "".join(
            f"2024-05-01 10:{m:02d}:{s:02d} INFO api: tick {m * 60 + s}\n" for m in range(40) for s in range(0, 60, 6)
        ),
        encoding="utf-8",
    )
    result = runner.invoke(main, ["analyze", str(log), "--format", "json"])
    assert json.loads(result.output)["anomalies"] == []
    text = runner.invoke(main, ["analyze", str(log)])
    assert "Anomalies (0)" in text.output


def test_text_and_markdown_have_an_anomalies_section(runner: CliRunner, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    burst = _write_log(log)
    text = runner.invoke(main, ["analyze", str(log)])
    assert text.exit_code == 0, text.output
    assert "Anomalies (" in text.output and "new_pattern" in text.output and f"line {burst[0]}\n" in text.output
    md = runner.invoke(main, ["analyze", str(log), "--format", "markdown"])
    assert "## Anomalies (" in md.output and "| new_pattern | app |" in md.output


def test_html_has_the_anomalies_chart_and_escapes_log_text(runner: CliRunner, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    _write_log(log, burst_text="<script>alert(1)</script> payment failed")
    out = tmp_path / "report.html"
    result = runner.invoke(main, ["analyze", str(log), "--format", "html", "-o", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert 'class="anomalies-chart"' in page and "<circle" in page
    assert "<table class='anomalies'>" in page and "new_pattern" in page
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_untimed_lines_only_get_new_pattern_detection() -> None:
    found = FileAnomalies(warmup_events=50)
    for n in range(1, 301):
        found.add(n, f"worker step {n} done", 1, "info")
    found.add(301, "kernel panic", 2, "fatal")
    for n in range(302, 402):  # a burst without timestamps: no clock, so no rate anomaly
        found.add(n, "kernel panic", 2, "fatal")
    got = found.finish()
    assert [(a.anomaly.kind, a.lines, a.timed) for a in got] == [("new_pattern", (301,), False)]
    assert got[0].to_dict()["ts"] is None


def test_kept_anomalies_are_capped_to_the_highest_scores() -> None:
    found = FileAnomalies(warmup_events=10, max_kept=3, threshold=0.3)
    for n in range(1, 21):
        found.add(n, "steady", 1, "info")
    levels = ["warn", "info", "fatal", "debug", "error", "info"]
    for k, level in enumerate(levels):
        found.add(21 + k, f"new {k}", 100 + k, level)
    got = found.finish()
    assert found.found == 6
    assert [a.anomaly.score for a in got] == [0.75, 1.0, 0.9]  # file order, top three scores


def test_no_anomalies_flag_skips_detection(runner: CliRunner, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    _write_log(log)
    result = runner.invoke(main, ["analyze", str(log), "--format", "json", "--no-anomalies"])
    report = json.loads(result.output)
    assert report["anomalies"] == [] and report["anomaly_detection"] is False
    assert "Anomalies (not run)" in runner.invoke(main, ["analyze", str(log), "--no-anomalies"]).output
