"""`logloupe analyze` reads lines the way ingest does: headers parsed, stack traces joined, messages
mined per service by the server's miner, so its pattern ids are the server's for the same file."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from logloupe.analyse.reading import RecordReader, upload_service
from logloupe.cli.main import main

from .conftest import ScriptedLLM

JAVA = """\
2024-05-01 10:00:01,123 ERROR [main] com.acme.Db: query failed
java.net.ConnectException: Connection refused (Connection refused)
\tat java.base/java.net.PlainSocketImpl.socketConnect(Native Method)
\tat com.acme.Db.connect(Db.java:42)
\tat com.acme.Main.main(Main.java:10)
\t... 3 more
2024-05-01 10:00:02,456 INFO [main] com.acme.Db: retry 1 of 5

2024-05-01 10:00:03,456 INFO [main] com.acme.Db: retry 2 of 5
2024-05-01 10:00:04,001 ERROR [main] com.acme.Db: query failed
java.net.ConnectException: Connection refused (Connection refused)
\tat java.base/java.net.PlainSocketImpl.socketConnect(Native Method)
\tat com.acme.Db.connect(Db.java:42)
\tat com.acme.Main.main(Main.java:12)
\t... 3 more
"""

PYTHON = """\
2024-05-01 11:00:00 ERROR worker: job 7 crashed
Traceback (most recent call last):
  File "/srv/app/jobs.py", line 12, in run
    total = compute(items)
  File "/srv/app/jobs.py", line 30, in compute
    return sum(i.value for i in items) / len(items)
ZeroDivisionError: division by zero
2024-05-01 11:00:01 INFO worker: job 8 done
"""


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("LOGLOUPE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def analyze_json(runner: CliRunner, path: Path, *args: str) -> dict[str, object]:
    result = runner.invoke(main, ["analyze", str(path), "--format", "json", "--no-progress", *args])
    assert result.exit_code == 0, result.output
    data: dict[str, object] = json.loads(result.output)
    return data


def test_java_trace_is_one_event_and_templates_drop_the_header(runner: CliRunner, tmp_path: Path) -> None:
    src = tmp_path / "java.log"
    src.write_text(JAVA, encoding="utf-8")
    report = analyze_json(runner, src)
    assert report["lines"] == 14 and report["events"] == 4  # 14 non-blank lines, two traces, two retries
    patterns = report["patterns"]
    assert isinstance(patterns, list) and len(patterns) == 2
    trace = next(p for p in patterns if "ConnectException" in p["template"])
    assert trace["count"] == 2 and trace["first_line"] == 1 and trace["last_line"] == 10
    assert trace["label"] == "incident" and trace["levels"] == {"error": 2}
    retry = next(p for p in patterns if p["template"].startswith("retry"))
    assert retry["count"] == 2 and retry["levels"] == {"info": 2}
    for p in patterns:  # the header (time, level, thread, logger) is parsed off, as ingest does
        assert "2024" not in p["template"] and "ERROR" not in p["template"] and "[main]" not in p["template"]
    assert trace["first_seen"] == "2024-05-01T10:00:01Z" and trace["last_seen"] == "2024-05-01T10:00:04Z"
    # The exemplar is the record as written: header and frames.
    first = trace["exemplars"][0]
    assert (
        first["line"] == 1
        and first["text"].startswith("2024-05-01 10:00:01,123 ERROR")
        and "\tat com.acme" in first["text"]
    )
    insight = next(i for i in report["insights"] if any(c["pattern_id"] == trace["pattern_id"] for c in i["citations"]))
    assert 1 in insight["citations"][0]["lines"]


def test_python_traceback_is_joined(runner: CliRunner, tmp_path: Path) -> None:
    src = tmp_path / "worker.log"
    src.write_text(PYTHON, encoding="utf-8")
    report = analyze_json(runner, src)
    assert report["events"] == 2 and report["pattern_count"] == 2
    crash = next(p for p in report["patterns"] if "ZeroDivisionError" in p["template"])
    assert crash["first_line"] == 1 and crash["label"] == "incident"


def test_pattern_ids_are_the_servers_for_the_same_upload(runner: CliRunner, tmp_path: Path, client: TestClient) -> None:
    src = tmp_path / "java.log"
    src.write_text(JAVA + PYTHON, encoding="utf-8")
    r = client.post("/api/v1/upload", files={"file": ("java.log", src.read_bytes())})
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    deadline = time.monotonic() + 30
    while client.get(f"/api/v1/jobs/{job_id}").json()["status"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    served = client.get("/api/v1/patterns", params={"from": "2024-05-01T00:00:00Z", "to": "2024-05-02T00:00:00Z"})
    assert served.status_code == 200, served.text
    server_counts = {p["id"]: (p["count"], p["template"]) for p in served.json()["patterns"]}
    assert {p["service"] for p in served.json()["patterns"]} == {upload_service("java.log")}
    report = analyze_json(runner, src)
    ours = {p["pattern_id"]: (p["count"], p["template"]) for p in report["patterns"]}
    assert ours == server_counts and len(ours) == 4


def test_named_service_changes_the_tree_not_the_grouping(runner: CliRunner, tmp_path: Path) -> None:
    src = tmp_path / "java.log"
    src.write_text(JAVA, encoding="utf-8")
    default = analyze_json(runner, src)
    named = analyze_json(runner, src, "--service", "billing")
    assert [p["count"] for p in default["patterns"]] == [p["count"] for p in named["patterns"]]
    # Pattern ids include the service, as the server's do.
    assert {p["pattern_id"] for p in default["patterns"]}.isdisjoint(p["pattern_id"] for p in named["patterns"])


def test_reader_keeps_line_numbers_and_json_records() -> None:
    lines = [
        (1, '{"message": "user 7 logged in", "level": "warn", "service": "auth", "time": "2024-05-01T10:00:00Z"}'),
        (2, "2024-05-01 10:00:01 ERROR api: boom"),
        (3, "java.lang.IllegalStateException: boom"),
        (4, "\tat a.b.C.d(C.java:1)"),
        (5, ""),
        (6, "plain line without a header"),
    ]
    reader = RecordReader(tenant="default", now_us=1_800_000_000_000_000, service="")
    records = list(reader.read(lines))
    assert [(r.line, r.last_line) for r in records] == [(1, 1), (2, 4), (6, 6)]
    assert records[0].service == "auth" and records[0].level.name == "WARN" and records[0].level_found
    assert records[0].ts_us == 1_714_557_600_000_000
    assert records[1].message.startswith("boom\njava.lang.IllegalStateException") and records[1].level.name == "ERROR"
    assert records[1].text.count("\n") == 2  # the lines as written
    assert records[2].ts_us is None and not records[2].level_found
    assert reader.lines == 5


def test_timeline_is_bucketed_by_event_time(runner: CliRunner, tmp_path: Path) -> None:
    src = tmp_path / "timed.log"
    rows = [f"2024-05-01 10:{m:02d}:{s:02d} INFO api: request {m * 60 + s} served" for m in range(10) for s in (0, 30)]
    rows[5] = "2024-05-01 10:02:30 ERROR api: upstream timed out"
    rows.insert(3, "a line without any timestamp")
    src.write_text("\n".join(rows) + "\n", encoding="utf-8")
    report = analyze_json(runner, src)
    assert report["timeline_by"] == "time" and report["timeline_bucket_s"] == 10
    assert report["timeline_untimed"] == 1 and report["timeline_bucket_lines"] is None
    timeline = report["timeline"]
    assert timeline[0]["from"] == "2024-05-01T10:00:00Z" and timeline[-1]["to"] == "2024-05-01T10:09:40Z"
    assert len(timeline) == 58  # 10:00:00 to 10:09:30 in 10 s buckets, empty ones included
    assert sum(b["count"] for b in timeline) == report["events"] - 1
    error = next(b for b in timeline if b["levels"].get("error"))
    assert error["from"] == "2024-05-01T10:02:30Z" and error["from_line"] == error["to_line"] == 7
    empty = timeline[1]
    assert empty["count"] == 0 and empty["from_line"] is None and empty["levels"] == {}
    page = runner.invoke(main, ["analyze", str(src), "--format", "html", "--no-progress"]).output
    assert "by event time, buckets of 10 s; 1 event(s) without a timestamp not shown" in page
    assert "2024-05-01T10:02:30Z – 2024-05-01T10:02:40Z, lines 7-7: error 1" in page


def test_timeline_widens_and_folds_over_days_and_backwards_time() -> None:
    from logloupe.analyse.insights import Analysis
    from logloupe.analyse.reading import FileRecord
    from logloupe.model import Level

    day_us = 86_400 * 1_000_000
    start = 1_714_521_600_000_000  # 2024-05-01T00:00:00Z
    times = [start + k * 3_600_000_000 for k in range(72)] + [start - day_us]  # 3 days, then one day back
    records = [FileRecord(n, n, f"line {n}", f"tick {n}", "svc", Level.INFO, True, ts) for n, ts in enumerate(times, 1)]
    result = Analysis(max_buckets=120).feed_records(records)
    assert result.timeline_by == "time" and result.bucket_s == 3600
    assert len(result.timeline) <= 120 and sum(b["count"] for b in result.timeline) == 73
    assert result.timeline[0]["from"] == "2024-04-30T00:00:00Z" and result.timeline[0]["from_line"] == 73
    assert result.timeline[-1]["to"] == "2024-05-04T00:00:00Z" and len(result.timeline) == 96


def test_timeline_falls_back_to_line_ranges_without_timestamps(runner: CliRunner, tmp_path: Path) -> None:
    src = tmp_path / "plain.log"
    src.write_text("".join(f"worker {k} picked a job\n" for k in range(2500)), encoding="utf-8")
    report = analyze_json(runner, src)
    assert report["timeline_by"] == "line" and report["timeline_bucket_s"] is None
    assert report["timeline_bucket_lines"] == 1000 and report["timeline_untimed"] == 2500
    assert [(b["from_line"], b["to_line"]) for b in report["timeline"]] == [(1, 1000), (1001, 2000), (2001, 3000)]
    assert [b["levels"] for b in report["timeline"]] == [{"none": 1000}, {"none": 1000}, {"none": 500}]


# -- the tenant's stored LLM policy (data dirs with accounts) ----------------------------------------

SECRETS = (
    "2024-05-01 10:00:01 ERROR api: connection refused to 10.1.2.3:5432 for ops@example.com\n"
    "2024-05-01 10:00:02 ERROR api: connection refused to 10.1.2.3:5432 for ops@example.com\n"
)


def _with_accounts(data: Path, org: str | None, allowed: list[str], mode: str) -> str:
    """A data dir like ``logloupe serve --auth`` leaves: a user, a tenant and its LLM policy."""
    from logloupe.store.accounts import Accounts
    from logloupe.store.meta import MetaStore

    meta = MetaStore(data / "meta.db")
    try:
        accounts = Accounts(meta)
        tenant = accounts.create_tenant(org, 30) if org else meta.ensure_tenant("default").id
        user = accounts.create_user("alice", "alice@example.com", "not-a-real-hash")
        accounts.add_member(tenant, user.id, "admin")
        accounts.set_policy(tenant, llm_allowed_providers=allowed, llm_masking_mode=mode)
    finally:
        meta.close()
    return tenant


def _analyze_llm(runner: CliRunner, src: Path, url: str, *args: str) -> tuple[dict[str, object], str]:
    result = runner.invoke(
        main,
        [
            *("analyze", str(src), "--format", "json", "--no-progress", "--provider", "openai"),
            *("--model", "tiny", "--base-url", url + "/v1", *args),
        ],
    )
    assert result.exit_code == 0, result.output
    report: dict[str, object] = json.loads(result.stdout)
    return report, result.stderr


def _prompts(llm: ScriptedLLM) -> str:
    return "\n".join(m["content"] for r in llm.requests for m in r["messages"] if m["role"] == "user")


def test_a_provider_the_tenant_does_not_allow_is_not_called(
    runner: CliRunner, tmp_path: Path, llm_server: tuple[ScriptedLLM, str]
) -> None:
    llm, url = llm_server
    _with_accounts(tmp_path / "data", None, ["anthropic"], "mask")
    src = tmp_path / "app.log"
    src.write_text(SECRETS, encoding="utf-8")
    report, stderr = _analyze_llm(runner, src, url)
    assert llm.requests == []
    policy = report["llm_policy"]
    assert isinstance(policy, dict) and policy["source"] == "tenant" and policy["provider"] == "offline"
    assert policy["allowed_providers"] == ["anthropic"] and "openai is not allowed" in policy["note"]
    assert "openai is not allowed" in stderr
    assert report["insights"] and report["usage"]["requests"] == 0  # type: ignore[index]


def test_the_tenants_masking_mode_reaches_the_prompt(
    runner: CliRunner, tmp_path: Path, llm_server: tuple[ScriptedLLM, str]
) -> None:
    llm, url = llm_server
    tenant = _with_accounts(tmp_path / "data", "Acme Corp", ["openai"], "strict")
    src = tmp_path / "app.log"
    src.write_text(SECRETS, encoding="utf-8")
    # The organisation's name resolves to its tenant id, as `users create-admin --tenant` does.
    report, _ = _analyze_llm(runner, src, url, "--tenant", "Acme Corp")
    assert report["llm_policy"] == {
        "source": "tenant",
        "provider": "openai",
        "masking_mode": "strict",
        "allowed_providers": ["openai"],
        "note": "",
    }
    sent = _prompts(llm)
    assert "refused" in sent and "10.1.2.3" not in sent and "<IPV4>" in sent and "ops@example.com" not in sent
    assert tenant != "Acme Corp"


def test_masking_off_sends_addresses_and_no_accounts_means_settings(
    runner: CliRunner, tmp_path: Path, llm_server: tuple[ScriptedLLM, str]
) -> None:
    llm, url = llm_server
    src = tmp_path / "app.log"
    src.write_text(SECRETS, encoding="utf-8")
    report, _ = _analyze_llm(runner, src, url)  # no accounts yet: settings decide (e-mails masked)
    assert report["llm_policy"]["source"] == "settings"  # type: ignore[index]
    assert "ops@example.com" not in _prompts(llm) and "10.1.2.3" in _prompts(llm)
    llm.requests.clear()
    _with_accounts(tmp_path / "data", None, ["openai"], "off")
    _analyze_llm(runner, src, url)  # (the scripted reply has no insights: nothing was cached)
    assert "ops@example.com" in _prompts(llm)


def test_lines_of_only_nul_bytes_or_colour_codes_are_not_events() -> None:
    reader = RecordReader(tenant="default", now_us=1_800_000_000_000_000, service="svc")
    lines = [(1, "2024-05-01 10:00:01 ERROR api: boom"), (2, "\x00\x00"), (3, "\x1b[0m"), (4, "next line")]
    records = list(reader.read(lines))
    assert [(r.line, r.last_line, r.text) for r in records] == [
        (1, 1, "2024-05-01 10:00:01 ERROR api: boom"),
        (4, 4, "next line"),
    ]
