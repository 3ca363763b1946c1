"""Per-source parsing settings: a default time zone, named grok patterns, multiline and a format hint.

A *rule* matches a stream by tenant, ingest path (``source``: ``http``, ``elasticsearch``, ``loki``,
``otlp``, ``syslog_udp``, ``syslog_tcp``, ``upload:<file>``, ``tail:<id>``...) and service
(globs), and carries ``SourceOptions``. Rules come from the settings (``parsing_sources`` in the
TOML file) and from each tenant's ``/api/v1/parsing/sources``; the first rule that matches wins,
a tenant's own rules before the file's. Pure: no I/O; ``SourceRules`` caches each resolution so
the pipeline looks options up once per stream, not once per event.

    {"name": "billing", "match": {"service": "billing*", "source": "http"},
     "timezone": "America/New_York",
     "patterns": [{"name": "billing", "pattern": "%{TIMESTAMP_ISO8601:ts} %{LOGLEVEL:level} %{GREEDYDATA:msg}"}],
     "multiline": "auto", "multiline_start": "^\\\\d{4}-", "format": "logfmt"}
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from logloupe.errors import InvalidInput
from logloupe.model import FLAG_TIME_REPLACED
from logloupe.parse.formats import FORMAT_NAMES, parse_custom
from logloupe.parse.grok import CustomFormat
from logloupe.parse.keys import LEVEL_KEYS, TIME_KEYS
from logloupe.parse.levels import normalise_level
from logloupe.parse.line import parse_line
from logloupe.parse.timestamps import ORIGINAL_ATTRIBUTE, REASON_ATTRIBUTE, parse_timestamp, zone

MULTILINE_MODES = ("auto", "on", "off")
MAX_PATTERNS = 32
MAX_PATTERN_CHARS = 4096
MAX_RULES = 200
_CACHE_MAX = 10_000


@dataclass(frozen=True)
class SourceOptions:
    """How lines of one source are read. The defaults are LogLoupe's behaviour with no settings."""

    timezone: str = "UTC"
    patterns: tuple[CustomFormat, ...] = ()
    # auto: raw text lines and syslog messages are joined into multiline events; records (JSON, _bulk,
    # OTLP, Loki) are events as sent. on: records' messages are joined too. off: nothing is joined.
    multiline: str = "auto"
    multiline_start: re.Pattern[str] | None = None  # a line matching it starts an event; others continue
    format: str | None = None  # the format to try first (a hint, as a stream's last format is)

    @property
    def is_default(self) -> bool:
        return self == DEFAULT_OPTIONS


DEFAULT_OPTIONS = SourceOptions()


@dataclass(frozen=True)
class SourceRule:
    name: str
    options: SourceOptions
    tenant: str = "*"
    source: str = "*"
    service: str = "*"
    spec: Mapping[str, Any] = field(default_factory=dict)  # as given (for the API and docs)

    def matches(self, tenant: str, source: str, service: str) -> bool:
        return _glob(self.tenant, tenant) and _glob(self.source, source) and _glob(self.service, service)


def _glob(pattern: str, value: str) -> bool:
    return pattern == "*" or pattern == value or fnmatch.fnmatchcase(value, pattern)


def rule_from_spec(spec: Mapping[str, Any], *, tenant: str | None = None) -> SourceRule:
    """Validate one rule (TOML table or API body); InvalidInput names what is wrong.

    ``tenant`` pins the rule to that tenant (API rules); file rules may name one in ``match.tenant``."""
    if not isinstance(spec, Mapping):
        raise InvalidInput("a parsing source must be an object")
    name = str(spec.get("name") or "").strip()
    if not name or len(name) > 200:
        raise InvalidInput("a parsing source needs a name of 1 to 200 characters")
    match = spec.get("match") or {}
    if not isinstance(match, Mapping):
        raise InvalidInput(f"parsing source {name!r}: match must be an object")
    unknown = set(match) - {"tenant", "source", "service"}
    if unknown:
        raise InvalidInput(f"parsing source {name!r}: unknown match keys {sorted(unknown)}")
    tz = str(spec.get("timezone") or "UTC")
    if zone(tz) is zone("UTC") and tz.upper() not in ("UTC", "Z", "GMT", "UT", "+00:00", "+0000", "+00"):
        raise InvalidInput(f"parsing source {name!r}: unknown time zone {tz!r} (use an IANA name or an offset)")
    patterns = _patterns(name, spec.get("patterns") or [])
    multiline = spec.get("multiline", "auto")
    if isinstance(multiline, bool):
        multiline = "on" if multiline else "off"
    if multiline not in MULTILINE_MODES:
        raise InvalidInput(f"parsing source {name!r}: multiline must be one of {MULTILINE_MODES} or a boolean")
    start = spec.get("multiline_start") or None
    start_re = None
    if start is not None:
        if not isinstance(start, str) or len(start) > MAX_PATTERN_CHARS:
            raise InvalidInput(f"parsing source {name!r}: multiline_start must be a regular expression")
        try:
            start_re = re.compile(start)
        except re.error as exc:
            raise InvalidInput(f"parsing source {name!r}: invalid multiline_start: {exc}") from None
    fmt = spec.get("format") or None
    if fmt is not None and fmt not in FORMAT_NAMES:
        raise InvalidInput(f"parsing source {name!r}: format must be one of {list(FORMAT_NAMES)}")
    options = SourceOptions(tz, patterns, str(multiline), start_re, fmt)
    clean = {
        "name": name,
        "match": {k: str(v) for k, v in match.items() if k != "tenant" or tenant is None},
        "timezone": tz,
        "patterns": [{"name": p.name, "pattern": src} for p, src in zip(patterns, _sources(spec), strict=True)],
        "multiline": str(multiline),
        "multiline_start": start,
        "format": fmt,
    }
    return SourceRule(
        name,
        options,
        tenant=tenant if tenant is not None else str(match.get("tenant") or "*"),
        source=str(match.get("source") or "*"),
        service=str(match.get("service") or "*"),
        spec=clean,
    )


def _sources(spec: Mapping[str, Any]) -> list[str]:
    raw = spec.get("patterns") or []
    if isinstance(raw, Mapping):
        return [str(v) for v in raw.values()]
    return [str(p.get("pattern", "")) if isinstance(p, Mapping) else str(p) for p in raw]


def _patterns(rule: str, raw: Any) -> tuple[CustomFormat, ...]:
    """``[{"name", "pattern"}]``, ``{"name": "pattern"}`` or ``["pattern"]`` → compiled formats, in order."""
    if isinstance(raw, Mapping):
        pairs = [(str(k), v) for k, v in raw.items()]
    elif isinstance(raw, list):
        pairs = []
        for i, p in enumerate(raw):
            if isinstance(p, Mapping):
                pairs.append((str(p.get("name") or f"{rule}-{i + 1}"), p.get("pattern")))
            else:
                pairs.append((f"{rule}-{i + 1}", p))
    else:
        raise InvalidInput(f"parsing source {rule!r}: patterns must be a list or an object")
    if len(pairs) > MAX_PATTERNS:
        raise InvalidInput(f"parsing source {rule!r}: at most {MAX_PATTERNS} patterns")
    out = []
    for name, pattern in pairs:
        if not isinstance(pattern, str) or not pattern or len(pattern) > MAX_PATTERN_CHARS:
            raise InvalidInput(f"parsing source {rule!r}: pattern {name!r} must be a string of 1 to 4096 characters")
        try:
            out.append(CustomFormat.grok(name, pattern))
        except InvalidInput as exc:
            raise InvalidInput(f"parsing source {rule!r}: {exc.message}") from None
    return tuple(out)


class SourceRules:
    """Ordered rules and a cache of (tenant, source, service) → options. Picklable (decoder processes)."""

    def __init__(self, rules: Iterable[SourceRule] = ()) -> None:
        self.rules = list(rules)
        self._cache: dict[tuple[str, str, str], SourceOptions] = {}

    def __bool__(self) -> bool:
        return bool(self.rules)

    def options_for(self, tenant: str, source: str, service: str) -> SourceOptions:
        key = (tenant, source, service)
        found = self._cache.get(key)
        if found is None:
            found = next((r.options for r in self.rules if r.matches(tenant, source, service)), DEFAULT_OPTIONS)
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[key] = found
        return found

    def tenant_wants_records_joined(self, tenant: str) -> bool:
        """Whether any rule could join this tenant's records (``multiline = "on"`` or a start pattern)."""
        return any(
            (r.options.multiline == "on" or r.options.multiline_start is not None) and _glob(r.tenant, tenant)
            for r in self.rules
        )


def rules_from(
    file_specs: Sequence[Mapping[str, Any]], tenant_specs: Mapping[str, Sequence[Mapping[str, Any]]]
) -> SourceRules:
    """Tenants' own rules first (each pinned to its tenant), then the settings file's.

    A bad file rule raises InvalidInput (the server does not start); a stored tenant rule that no
    longer validates (it did when it was stored) is left out rather than stopping every tenant."""
    rules = []
    for t, specs in sorted(tenant_specs.items()):
        for spec in specs:
            try:
                rules.append(rule_from_spec(spec, tenant=t))
            except InvalidInput:
                continue
    rules.extend(rule_from_spec(s) for s in file_specs)
    return SourceRules(rules)


def apply_to_record(record: Mapping[str, Any], fields: Any, options: SourceOptions, now_us: int) -> None:
    """A structured record's fields under a source's options (in place, ``fields`` a ``records.Fields``).

    ``timezone``: a record time written without a zone is read in it. ``patterns``: tried on the
    message; the first that matches sets time, level, message, service, host, trace/span ids from
    its captures (``ts``, ``level``, ``msg``...) and adds the other captures as attributes."""
    if options.timezone != "UTC":
        for key in TIME_KEYS:
            if key in record:
                value = record[key]
                if isinstance(value, str):
                    ts = parse_timestamp(value, now_us=now_us, default_tz=options.timezone)
                    if ts is not None:
                        fields.ts_us = ts
                        _clear_time_replaced(fields)
                break
    if not options.patterns or not fields.message:
        return
    for fmt in options.patterns:
        parsed = parse_custom(fields.message, fmt, now_us, options.timezone)
        if parsed is None:
            continue
        if parsed.ts_us is not None:
            fields.ts_us = parsed.ts_us
        if parsed.level_raw:
            level = normalise_level(parsed.level_raw)
            if level is not None:
                fields.level, fields.level_raw = level, parsed.level_raw
        fields.message = parsed.message
        for name in ("service", "host", "trace_id", "span_id"):
            value = getattr(parsed, name)
            if value:
                setattr(fields, name, value[:256])
        fields.attributes = {**fields.attributes, **parsed.attributes, "parsing.pattern": fmt.name}
        return


def _clear_time_replaced(fields: Any) -> None:
    """The source's own reading found a time the default one did not: the record's time stands."""
    if REASON_ATTRIBUTE in fields.attributes:
        fields.attributes = {
            k: v for k, v in fields.attributes.items() if k not in (REASON_ATTRIBUTE, ORIGINAL_ATTRIBUTE)
        }
        fields.flags = [f for f in fields.flags if f != FLAG_TIME_REPLACED]


def read_raw_line(record: Mapping[str, Any], fields: Any, options: SourceOptions, now_us: int) -> None:
    """A record whose message is a raw log line (a tailed file's): the line's own header is read as a
    text line's would be — format, time (in the source's zone), level, logger, attributes — unless
    the record says them itself. A multiline message is read by its first line."""
    message = fields.message
    if not message:
        return
    first, sep, rest = message.partition("\n")
    parsed = parse_line(first, now_us=now_us, default_tz=options.timezone, custom=options.patterns, hint=options.format)
    if parsed.format in ("plain", "empty") and parsed.ts_us is None:
        return
    fields.message = parsed.message + sep + rest
    if parsed.ts_us is not None and not any(key in record for key in TIME_KEYS):
        fields.ts_us = parsed.ts_us
    if parsed.level_raw and not any(key in record for key in LEVEL_KEYS):
        fields.level, fields.level_raw = parsed.level, parsed.level_raw
    if parsed.service and not fields.service:
        fields.service = parsed.service
        fields.service_from_text = True
    elif parsed.service and parsed.service != fields.service:
        parsed.attributes["logger"] = parsed.service  # as for text lines: the source names the service
    if parsed.host and not fields.host:
        fields.host = parsed.host
    fields.attributes = {**parsed.attributes, **fields.attributes}
    for flag in parsed.flags:
        if flag not in fields.flags:
            fields.flags.append(flag)


RAW_LINE_SOURCES = ("tail:",)  # records whose message is a raw line from a file


def apply_source(record: Mapping[str, Any], fields: Any, options: SourceOptions, now_us: int, source: str) -> None:
    """The one call every record path makes: raw lines (``tail:`` sources) are read as text lines,
    other records get the source's options (``apply_to_record``)."""
    if source.startswith(RAW_LINE_SOURCES):
        read_raw_line(record, fields, options, now_us)
    elif not options.is_default:
        apply_to_record(record, fields, options, now_us)
