from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from logloupe.cli.main import main

FIXTURES = Path(__file__).parent / "fixtures"


def test_per_line_keeps_input_order_and_uses_final_templates(tmp_path: Path) -> None:
    lines = [f"worker {u} connected" for u in ("alice", "bob", "carol", "dave", "erin")] + [
        "cache warmed in 12 ms",
        "",
        "worker frank connected",
    ]
    src = tmp_path / "messages.txt"
    src.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(main, ["patterns", "--messages", "--per-line", str(src)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in result.output.splitlines()]
    assert len(rows) == len(lines)
    assert all(set(r) == {"pattern_id", "pattern"} for r in rows)
    # the first line gets the template learned from all of them, not its immature first one
    assert rows[0]["pattern"] == "worker <*> connected"
    assert len({rows[i]["pattern_id"] for i in (0, 1, 2, 3, 4, 7)}) == 1
    assert rows[5]["pattern"] == "cache warmed in <*> ms"
    assert all(len(r["pattern_id"]) == 16 for r in rows)


def test_per_line_reads_stdin_without_header_detection() -> None:
    text = "2023-01-02 03:04:05 INFO x: started\n2023-01-02 03:04:06 INFO x: started\n"
    result = CliRunner().invoke(main, ["patterns", "--messages", "--per-line", "-"], input=text)
    rows = [json.loads(x) for x in result.output.splitlines()]
    assert rows[0]["pattern"] == "<*> INFO x: started"


def test_table_and_json(tmp_path: Path) -> None:
    log = FIXTURES / "hdfs_sample.log"
    result = CliRunner().invoke(main, ["patterns", "--json", str(log)])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert sum(r["count"] for r in rows) == 20
    top = rows[0]
    assert set(top) == {"pattern_id", "pattern", "count", "first_seen", "last_seen", "example"}
    assert top["first_seen"].startswith("2008-11-09T")
    table = CliRunner().invoke(main, ["patterns", "--limit", "2", str(log)])
    assert table.exit_code == 0
    assert "PATTERN ID" in table.output and "e.g. " in table.output
