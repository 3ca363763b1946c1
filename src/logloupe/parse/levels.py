"""Severity names and numbers from every common source, normalised to ``logloupe.model.Level``."""

from __future__ import annotations

from logloupe.model import Level

_NAMES: dict[str, Level] = {}
for _level, _names in (
    (Level.TRACE, ("trace", "trc", "t", "finest", "finer", "verbose", "vrb", "v", "all")),
    (Level.DEBUG, ("debug", "dbg", "d", "fine", "config", "debg", "dbug")),
    (Level.INFO, ("info", "inf", "i", "information", "informational", "notice", "note", "n", "log", "ok")),
    (Level.WARN, ("warn", "warning", "wrn", "w", "wrng", "warnings", "caution")),
    (
        Level.ERROR,
        ("error", "err", "e", "eror", "severe", "fail", "failure", "failed", "errors", "exception"),
    ),
    (
        Level.FATAL,
        ("fatal", "ftl", "f", "crit", "critical", "crt", "c", "emerg", "emergency", "alert", "panic", "a"),
    ),
):
    for _name in _names:
        _NAMES[_name] = _level

# syslog severities (RFC 5424 section 6.2.1): 0 emergency ... 7 debug
_SYSLOG: tuple[Level, ...] = (
    Level.FATAL,  # 0 emerg
    Level.FATAL,  # 1 alert
    Level.FATAL,  # 2 crit
    Level.ERROR,  # 3 err
    Level.WARN,  # 4 warning
    Level.INFO,  # 5 notice
    Level.INFO,  # 6 info
    Level.DEBUG,  # 7 debug
)

# bunyan / pino numeric levels
_BUNYAN: dict[int, Level] = {
    10: Level.TRACE,
    20: Level.DEBUG,
    30: Level.INFO,
    40: Level.WARN,
    50: Level.ERROR,
    60: Level.FATAL,
}


def syslog_severity(severity: int) -> Level:
    """Level of a syslog severity 0-7 (out-of-range values are INFO)."""
    return _SYSLOG[severity] if 0 <= severity <= 7 else Level.INFO


def normalise_level(raw: str | int | None) -> Level | None:
    """The Level named by ``raw`` (``"WARNING"``, ``"warn"``, ``"W"``, ``"crit"``, ``3``, ``"50"``...),
    or None when it names no level. Numbers 0-7 are syslog severities, 10-60 bunyan/pino levels."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        if 0 <= raw <= 7:
            return _SYSLOG[raw]
        return _BUNYAN.get(raw)
    text = raw.strip().strip("[]()<>:").strip().lower()
    if not text:
        return None
    if text.isdigit() and len(text) <= 2:
        return normalise_level(int(text))
    level = _NAMES.get(text)
    if level is not None:
        return level
    # "WARNING:", "E0123" (glog), "<error>" and friends
    for prefix, lvl in (
        ("warn", Level.WARN),
        ("err", Level.ERROR),
        ("crit", Level.FATAL),
        ("fatal", Level.FATAL),
    ):
        if text.startswith(prefix):
            return lvl
    if len(text) > 1 and text[0] in "iwef" and text[1:].isdigit():
        return {"i": Level.INFO, "w": Level.WARN, "e": Level.ERROR, "f": Level.FATAL}[text[0]]
    return None
