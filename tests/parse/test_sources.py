"""Per-source parsing settings (parse/sources.py): the spec shapes, rule order, and what they do to records."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logloupe.errors import InvalidInput
from logloupe.model import Level
from logloupe.parse.records import Limits, record_fields
from logloupe.parse.sources import DEFAULT_OPTIONS, SourceRules, apply_to_record, rule_from_spec, rules_from

NOW = 1_780_000_000_000_000


def test_pattern_shapes_and_multiline_booleans() -> None:
    as_list = rule_from_spec({"name": "a", "patterns": [{"name": "p", "pattern": "%{WORD:w} x"}, "%{INT:n}"]})
    assert [p.name for p in as_list.options.patterns] == ["p", "a-2"]
    as_map = rule_from_spec({"name": "b", "patterns": {"first": "%{WORD:w}", "second": "(?P<n>\\d+)"}})
    assert [p.name for p in as_map.options.patterns] == ["first", "second"]
    assert as_map.spec["patterns"] == [
        {"name": "first", "pattern": "%{WORD:w}"},
        {"name": "second", "pattern": "(?P<n>\\d+)"},
    ]
    assert rule_from_spec({"name": "c", "multiline": False}).options.multiline == "off"
    assert rule_from_spec({"name": "d", "multiline": True}).options.multiline == "on"
    assert rule_from_spec({"name": "e", "timezone": "+05:30"}).options.timezone == "+05:30"
    with pytest.raises(InvalidInput, match="at most 32"):
        rule_from_spec({"name": "f", "patterns": ["%{WORD:w}"] * 33})
    with pytest.raises(InvalidInput, match="name"):
        rule_from_spec({"timezone": "UTC"})


def test_tenant_rules_first_then_the_files_first_match_wins() -> None:
    rules = rules_from(
        [
            {"name": "file-any", "match": {"service": "api*"}, "timezone": "Asia/Tokyo"},
            {"name": "file-acme", "match": {"tenant": "acme", "service": "web"}, "timezone": "Europe/Paris"},
        ],
        {"acme": [{"name": "own", "match": {"service": "api-eu", "source": "http"}, "timezone": "Europe/Berlin"}]},
    )
    assert rules.options_for("acme", "http", "api-eu").timezone == "Europe/Berlin"
    assert rules.options_for("acme", "loki", "api-eu").timezone == "Asia/Tokyo"  # own rule is http only
    assert rules.options_for("globex", "http", "api-eu").timezone == "Asia/Tokyo"  # not acme's rule
    assert rules.options_for("acme", "http", "web").timezone == "Europe/Paris"
    assert rules.options_for("globex", "http", "web") is DEFAULT_OPTIONS
    assert not SourceRules()
    assert rules.tenant_wants_records_joined("acme") is False


def test_records_zone_less_times_and_patterns() -> None:
    options = rule_from_spec(
        {
            "name": "r",
            "timezone": "America/New_York",
            "patterns": ["%{LOGLEVEL:level} user=%{WORD:user} %{GREEDYDATA:msg}"],
        }
    ).options
    limits = Limits()
    zoneless = {"time": "2026-01-15T10:00:00", "message": "plain"}
    f = record_fields(zoneless, limits)
    apply_to_record(zoneless, f, options, NOW)
    assert f.ts_us == 1_768_489_200_000_000  # 15:00 UTC
    zoned = {"time": "2026-01-15T10:00:00Z", "message": "ERROR user=ann payment failed"}
    f = record_fields(zoned, limits)
    apply_to_record(zoned, f, options, NOW)
    assert f.ts_us == 1_768_471_200_000_000  # a zone given is kept
    assert (f.level, f.message, f.attributes["user"], f.attributes["parsing.pattern"]) == (
        Level.ERROR,
        "payment failed",
        "ann",
        "r-1",
    )
    epoch = {"time": 1_768_471_200, "message": "x"}
    f = record_fields(epoch, limits)
    apply_to_record(epoch, f, options, NOW)
    assert f.ts_us == 1_768_471_200_000_000


@given(st.text(max_size=300), st.one_of(st.text(max_size=40), st.integers(), st.none()))
def test_applying_options_never_raises(message: str, time_value: object) -> None:
    options = rule_from_spec(
        {"name": "p", "timezone": "Europe/Paris", "patterns": ["%{DATA:ts} %{LOGLEVEL:level} %{GREEDYDATA:msg}"]}
    ).options
    record = {"message": message, "time": time_value}
    f = record_fields(record, Limits())
    apply_to_record(record, f, options, NOW)
