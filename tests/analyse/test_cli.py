from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from logloupe.cli.main import main

from .conftest import ScriptedLLM

DATA = Path(__file__).parent / "data"


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("LOGLOUPE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def test_classify_per_line_keeps_order_and_count(runner: CliRunner, tmp_path: Path) -> None:
    src = tmp_path / "in.log"
    src.write_text("kernel: Kernel panic - not syncing\n\nuser bob logged in\n", encoding="utf-8")
    result = runner.invoke(main, ["classify", "--per-line", str(src)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert len(rows) == 3
    assert all(set(r) == {"label", "confidence"} for r in rows)
    assert rows[0]["label"] == "incident" and rows[2]["label"] == "normal"


def test_train_classifier_installs_a_tenant_model(runner: CliRunner, tmp_path: Path) -> None:
    rows = []
    for k in range(30):
        rows.append({"message": f"widget {k} exploded in the flux capacitor", "label": "incident"})
        rows.append({"message": f"widget {k} polished and shipped", "label": "normal"})
        rows.append({"message": f"widget {k} needs polishing soon", "label": "preventive_action"})
    data = tmp_path / "train.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    result = runner.invoke(main, ["train-classifier", str(data), "--tenant", "acme", "--data-dir", str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    assert "precision" in result.output and "incident" in result.output
    model = tmp_path / "d" / "models" / "acme" / "classifier_model.json"
    assert model.exists()
    src = tmp_path / "w.log"
    src.write_text("widget 99 polished and shipped\n", encoding="utf-8")
    out = runner.invoke(
        main, ["classify", "--per-line", "--tenant", "acme", "--data-dir", str(tmp_path / "d"), str(src)]
    )
    assert json.loads(out.output)["label"] == "normal"


def test_train_classifier_rejects_bad_rows(runner: CliRunner, tmp_path: Path) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text('{"message": "x", "label": "catastrophe"}\n', encoding="utf-8")
    result = runner.invoke(main, ["train-classifier", str(data)])
    assert result.exit_code == 2 and "label must be one of" in result.output


def test_analyze_json_from_gzip(runner: CliRunner, tmp_path: Path) -> None:
    gz = tmp_path / "app.log.gz"
    gz.write_bytes(gzip.compress((DATA / "app.log").read_bytes()))
    result = runner.invoke(main, ["analyze", str(gz), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["lines"] == 10
    assert report["patterns"] and report["insights"] and "tokens_in" in report["usage"]
    assert all(i["citations"] for i in report["insights"])


def test_analyze_one_line(runner: CliRunner) -> None:
    result = runner.invoke(main, ["analyze", "2024-01-01 ERROR kernel: Out of memory: Killed process 12 (java)"])
    assert result.exit_code == 0, result.output
    assert "Out of memory" in result.output and "Citations: pattern" in result.output


def test_analyze_html_escapes_log_text(runner: CliRunner, tmp_path: Path) -> None:
    src = tmp_path / "x.log"
    src.write_text(
        '2024-01-01 ERROR api: failed <script>alert("x")</script> Connection refused\n' * 3, encoding="utf-8"
    )
    out = tmp_path / "r.html"
    result = runner.invoke(main, ["analyze", str(src), "--format", "html", "-o", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert page.count("<svg") == 2 and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_analyze_output_file_is_timestamped(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["analyze", str(DATA / "app.log"), "--format", "markdown", "--output", "file"])
    assert result.exit_code == 0, result.output
    written = list(tmp_path.glob("logloupe-report-*.md"))
    assert len(written) == 1 and written[0].read_text(encoding="utf-8").startswith("# LogLoupe analysis")


def test_analyze_with_llm_provider(runner: CliRunner, llm_server: tuple[ScriptedLLM, str]) -> None:
    llm, url = llm_server
    llm.script(
        (
            200,
            '{"insights": [{"title": "Made up", "summary": "s", "fixes": [], "confidence": 0.9, '
            '"citations": [{"pattern_id": "0123456789abcdef", "lines": [77]}]}]}',
        )
    )
    result = runner.invoke(
        main,
        [
            "analyze",
            str(DATA / "app.log"),
            "--provider",
            "openai",
            "--model",
            "tiny",
            "--base-url",
            url + "/v1",
            "--budget-tokens",
            "3000",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["usage"]["requests"] == 1 and report["usage"]["tokens_in"] == 111
    made_up = next(i for i in report["insights"] if i["title"] == "Made up")
    assert made_up["grounded"] is False and made_up["rejected_citations"]
    assert llm.requests[0]["model"] == "tiny"


def test_feedback_then_analyze_cites_it(runner: CliRunner) -> None:
    result = runner.invoke(
        main,
        [
            "feedback",
            "00000000000000aa",
            "--verdict",
            "fixed",
            "--template",
            "Out of memory: Killed process <NUM> (java)",
            "--resolution",
            "raised the heap limit to 4 GiB",
        ],
    )
    assert result.exit_code == 0, result.output
    report = runner.invoke(main, ["analyze", str(DATA / "app.log")])
    assert "fixed by: raised the heap limit to 4 GiB" in report.output


def test_analyze_llm_classify_flag(runner: CliRunner, llm_server: tuple[ScriptedLLM, str]) -> None:
    llm, url = llm_server
    llm.script((200, '{"labels": []}'), (200, '{"insights": []}'))
    result = runner.invoke(
        main,
        [
            "analyze",
            str(DATA / "app.log"),
            "--provider",
            "openai",
            "--base-url",
            url + "/v1",
            "--llm-classify",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(llm.requests) == 2 and "label log patterns" in llm.requests[0]["messages"][0]["content"]


def test_classify_per_line_splits_on_newline_only(runner: CliRunner, tmp_path: Path) -> None:
    src = tmp_path / "odd.log"
    src.write_bytes(b"a\rb kernel panic\nbad utf8 \xff\r\nno newline at end")
    result = runner.invoke(main, ["classify", "--per-line", str(src)])
    assert result.exit_code == 0, result.output
    assert len(result.output.splitlines()) == 3
