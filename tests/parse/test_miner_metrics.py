"""The server's pattern miner shows its size and evictions in /metrics (``PatternMiner.stats()``)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def _value(text: str, name: str) -> float:
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    assert m is not None, name
    return float(m.group(1))


def test_miner_stats_are_exported(client: TestClient) -> None:
    lines = [f"VM {i} Started on host-{i}" for i in range(20)] + [f"VM {i} Paused" for i in range(5)]
    r = client.post(
        "/api/v1/logs", params={"service": "vmm"}, content="\n".join(lines), headers={"content-type": "text/plain"}
    )
    assert r.status_code == 200
    text = client.get("/metrics").text
    assert _value(text, "logloupe_patterns_clusters") >= 2
    assert _value(text, "logloupe_patterns_trees") >= 1
    assert _value(text, "logloupe_patterns_lines") >= 25
    assert _value(text, "logloupe_patterns_clusters_created_total") >= 2
    for name in ("clusters_evicted", "trees_evicted", "signatures_flushed", "aliases_evicted", "merges"):
        assert _value(text, f"logloupe_patterns_{name}_total") >= 0
