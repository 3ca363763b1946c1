"""New patterns reach the metadata store in one transaction per batch, names kept."""

from __future__ import annotations

from pathlib import Path

from logloupe.store.meta import MetaStore


def test_add_patterns_inserts_new_and_updates_known_templates(tmp_path: Path) -> None:
    meta = MetaStore(tmp_path / "meta.db")
    try:
        meta.add_patterns([("t1", 1, "a <*>", "api"), ("t1", 2**63 + 5, "b <*>", "api"), ("t2", 1, "other", "db")])
        meta.upsert_pattern("t1", 1, name="Logins")
        meta.add_patterns([("t1", 1, "a <*> again", "api"), ("t1", 3, "c", "api"), ("t1", 3, "c <*>", "api")])
        t1 = meta.pattern_names("t1")
        assert {k: v["template"] for k, v in t1.items()} == {1: "a <*> again", 2**63 + 5: "b <*>", 3: "c <*>"}
        assert t1[1]["name"] == "Logins"  # a rename survives the miner's update
        assert {k: v["template"] for k, v in meta.pattern_names("t2").items()} == {1: "other"}
        meta.add_patterns([])
        rows = [("t3", i, f"p{i}", "s") for i in range(1, 1201)]  # more than one IN list
        meta.add_patterns(rows)
        meta.add_patterns(rows)
        assert len(meta.pattern_names("t3")) == 1200
    finally:
        meta.close()
