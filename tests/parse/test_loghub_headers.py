"""Every line of every Loghub-2k file present keeps the time its header writes.

The files live in the shared data folder (``../shared/data/loghub-2k`` next to the checkout,
``LOGLOUPE_DATA``, or ``/work/shared/data``); the test is skipped where none is found. A line that
falls back to the observed time because its header time did not parse (``unparsable_time``) or
lies outside the sanity window fails the test, and so does a line that parses with no time.
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import pytest

from logloupe.model import FLAG_TIME_REPLACED, to_micros
from logloupe.parse.line import parse_line
from logloupe.parse.timestamps import REASON_ATTRIBUTE

NOW = to_micros(datetime(2026, 11, 21, 12, 0, tzinfo=UTC))
ROOT = Path(__file__).resolve().parents[2]


def loghub_dir() -> Path | None:
    for c in (os.environ.get("LOGLOUPE_DATA", ""), ROOT.parent / "shared/data", ROOT.parent.parent / "shared/data"):
        if c and (Path(c) / "loghub-2k").is_dir():
            return Path(c) / "loghub-2k"
    if Path("/work/shared/data/loghub-2k").is_dir():
        return Path("/work/shared/data/loghub-2k")
    return None


DATA = loghub_dir()
FILES = sorted(DATA.glob("*/*_2k.log")) if DATA is not None else []


@pytest.mark.skipif(not FILES, reason="no Loghub-2k files on this machine")
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.parent.name)
def test_no_header_time_falls_back_to_the_observed_time(path: Path) -> None:
    reasons: Counter[str] = Counter()
    examples: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    assert len(lines) == 2000
    for line in lines:
        parsed = parse_line(line, now_us=NOW)
        why = parsed.attributes.get(REASON_ATTRIBUTE) or ("no time" if parsed.ts_us is None else "")
        if why or FLAG_TIME_REPLACED in parsed.flags:
            reasons[why] += 1
            examples.setdefault(why, line[:120])
    assert not reasons, f"{path.name}: {dict(reasons)}; e.g. {examples}"


@pytest.mark.skipif(not any(p.parent.name == "HealthApp" for p in FILES), reason="no HealthApp_2k.log here")
def test_healthapp_times_keep_their_order() -> None:
    """HealthApp writes minutes, seconds and milliseconds unpadded (``22:16:0:119``, ``22:15:35:11``
    for 11 ms): the parsed times never go backwards in the file, which is in time order."""
    path = next(p for p in FILES if p.parent.name == "HealthApp")
    times = [parse_line(line, now_us=NOW).ts_us or 0 for line in path.read_text(encoding="utf-8").splitlines()]
    assert all(a <= b for a, b in pairwise(times))


def test_healthapp_unpadded_fields() -> None:
    parsed = parse_line("20171223-22:16:0:119|Step_LSC|30002312|processHandleBroadcastAction", now_us=NOW)
    assert parsed.format == "healthapp"
    assert parsed.ts_us == to_micros(datetime(2017, 12, 23, 22, 16, 0, 119_000, tzinfo=UTC))
    eleven_ms = parse_line("20171223-22:15:35:11|Step_LSC|30002312|x", now_us=NOW)
    assert eleven_ms.ts_us == to_micros(datetime(2017, 12, 23, 22, 15, 35, 11_000, tzinfo=UTC))
