"""Line formats: detect how a line is written and split it into fields. Pure functions.

Recognised (``FORMAT_NAMES``): JSON lines (common key names for time, level, message, logger/service,
host, trace and span ids), Docker's JSON log driver, Kubernetes CRI, logfmt, syslog RFC 5424 and
RFC 3164 (with or without ``<PRI>``), Apache/Nginx access logs (common and combined), Apache error
logs, the Loghub header styles (HDFS, BGL, HealthApp, OpenStack, Zookeeper, Spark, Linux), Go's glog/klog
(Kubernetes components), the "timestamp level [thread] logger: message" family (Java, Python, Go,
Node; a bracketed level word such as Nginx's ``[error]`` is the level), and plain text.

``detect(line, hint)`` tries the hinted format first (a stream keeps the last format that worked)
and returns ``Fields``; it never raises.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from logloupe.model import Level
from logloupe.parse.grok import CustomFormat
from logloupe.parse.keys import (
    ATTRIBUTE_KEYS,
    HOST_KEYS,
    MESSAGE_KEYS,
    SERVICE_KEYS,
    SPAN_KEYS,
    TIME_KEYS,
    TRACE_KEYS,
    lift_attributes,
    lift_ecs,
    needs_lift,
    pop_level,
)
from logloupe.parse.levels import normalise_level, syslog_severity
from logloupe.parse.timestamps import find_timestamp, parse_timestamp

MAX_ATTRIBUTES = 64
MAX_DEPTH = 4


@dataclass(slots=True)
class Fields:
    format: str
    message: str
    ts_us: int | None = None
    ts_raw: str = ""
    level_raw: str = ""
    level: Level | None = None
    service: str = ""
    host: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    trace_id: str = ""
    span_id: str = ""
    flags: list[str] = field(default_factory=list)


_Parser = Callable[[str, int | None, str], "Fields | None"]

_LEVEL_WORDS = (
    r"TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|SEVERE|CRIT|CRITICAL|FATAL|ALERT|EMERG|PANIC|"
    r"FINE|FINER|FINEST|CONFIG|VERBOSE|Trace|Debug|Info|Information|Notice|Warn|Warning|Error|Critical|Fatal|"
    r"trace|debug|info|notice|warn|warning|error|crit|critical|fatal|panic"
)

# --- JSON ---------------------------------------------------------------------------------------------
# The key names: ``parse/keys.py``, shared with structured records.
_ATTRIBUTE_KEY_SET = frozenset(ATTRIBUTE_KEYS)


def _flatten(value: Any, prefix: str, out: dict[str, str], depth: int, flags: list[str]) -> None:
    if len(out) >= MAX_ATTRIBUTES:
        if "attributes_dropped" not in flags:
            flags.append("attributes_dropped")
        return
    if isinstance(value, dict):
        if depth >= MAX_DEPTH:
            out[prefix] = orjson.dumps(value).decode()
            if "nesting_flattened" not in flags:
                flags.append("nesting_flattened")
            return
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out, depth + 1, flags)
    elif isinstance(value, list):
        out[prefix] = orjson.dumps(value).decode()
    elif value is None:
        out[prefix] = ""
    elif isinstance(value, bool):
        out[prefix] = "true" if value else "false"
    else:
        out[prefix] = str(value)


def _pop(flat: dict[str, str], keys: tuple[str, ...]) -> str:
    for k in keys:
        if k in flat:
            return flat.pop(k)
    return ""


def _is_level_word(value: str) -> bool:
    return normalise_level(value) is not None


def _pop_level(flat: dict[str, str]) -> str:
    return str(pop_level(flat, _is_level_word) or "")


def _ts_value(raw: str, now_us: int | None, default_tz: str) -> int | None:
    if not raw:
        return None
    try:
        if raw.replace(".", "", 1).isdigit():
            whole, _, frac = raw.partition(".")
            n = len(whole)
            if n <= 10:
                return int(whole) * 1_000_000 + int((frac + "000000")[:6] or 0)
            if n <= 13:
                return int(whole) * 1000
            if n <= 16:
                return int(whole)
            return int(whole) // 1000
    except ValueError:
        return None
    return parse_timestamp(raw, now_us=now_us, default_tz=default_tz)


def parse_json(line: str, now_us: int | None, default_tz: str) -> Fields | None:
    if not line.startswith("{"):
        return None
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    flags: list[str] = []
    # Docker's json-file driver: {"log": "...\n", "stream": "stdout", "time": "..."}
    if "log" in obj and "stream" in obj and "time" in obj and isinstance(obj["log"], str):
        log = obj["log"]
        inner = log[:-1] if log.endswith("\n") else log
        fields = Fields("docker_json", inner.rstrip("\r"), ts_raw=str(obj["time"]))
        fields.ts_us = _ts_value(str(obj["time"]), now_us, default_tz)
        fields.attributes["stream"] = str(obj["stream"])
        if not log.endswith("\n"):  # the driver split a long line (16 KiB): the rest follows
            fields.attributes["partial"] = "true"
        return fields
    if needs_lift(obj):
        obj = lift_ecs(obj)
    # Attribute keys (``meta``...) are set aside so the fields come from the top level only, then
    # lifted as a record's are (``lift_attributes``): the same line reads the same as a JSON body.
    held = None
    if not _ATTRIBUTE_KEY_SET.isdisjoint(obj):
        held = {k: obj.pop(k) for k in ATTRIBUTE_KEYS if k in obj}
    flat: dict[str, str] = {}
    _flatten(obj, "", flat, 0, flags)
    ts_raw = _pop(flat, TIME_KEYS)
    fields = Fields("json", _pop(flat, MESSAGE_KEYS), ts_raw=ts_raw, flags=flags)
    fields.ts_us = _ts_value(ts_raw, now_us, default_tz)
    fields.level_raw = _pop_level(flat)
    fields.service = _pop(flat, SERVICE_KEYS)
    fields.host = _pop(flat, HOST_KEYS)
    fields.trace_id = _pop(flat, TRACE_KEYS)
    fields.span_id = _pop(flat, SPAN_KEYS)
    if held:
        lifted = lift_attributes({**held, **flat})
        flat = {}
        _flatten(lifted, "", flat, 0, flags)
    fields.attributes = flat
    return fields


# --- logfmt --------------------------------------------------------------------------------------------
# a pair starts the line or follows whitespace (so scanning stays linear on long lines)
_LOGFMT_PAIR = re.compile(r'(?:^|(?<=\s))([A-Za-z_@][\w.\-/@]*)=("(?:[^"\\]|\\.)*"|[^\s"]*)')


def parse_logfmt(line: str, now_us: int | None, default_tz: str) -> Fields | None:
    if "=" not in line:
        return None
    pairs = _LOGFMT_PAIR.findall(line)
    if len(pairs) < 2 or not line.lstrip().startswith(pairs[0][0] + "="):
        return None
    # most of the line must be pairs
    covered = sum(len(k) + 1 + len(v) for k, v in pairs)
    if covered < 0.6 * len(line.replace(" ", "")):
        return None
    flat: dict[str, str] = {}
    for k, v in pairs:
        if v.startswith('"') and v.endswith('"') and len(v) >= 2:
            v = v[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        if len(flat) < MAX_ATTRIBUTES:
            flat[k] = v
    ts_raw = _pop(flat, TIME_KEYS)
    fields = Fields("logfmt", _pop(flat, MESSAGE_KEYS), ts_raw=ts_raw)
    fields.ts_us = _ts_value(ts_raw, now_us, default_tz)
    fields.level_raw = _pop_level(flat)
    fields.service = _pop(flat, SERVICE_KEYS)
    fields.host = _pop(flat, HOST_KEYS)
    fields.trace_id = _pop(flat, TRACE_KEYS)
    fields.span_id = _pop(flat, SPAN_KEYS)
    fields.attributes = flat
    return fields


# --- syslog ---------------------------------------------------------------------------------------------
_RFC5424 = re.compile(
    r"<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) "
    r"(?P<sd>-|(?:\[(?:[^\]\\]|\\.)*\])+)(?: (?P<msg>.*))?$",
    re.DOTALL,
)
_SD_ELEMENT = re.compile(r"\[([^\s\]]+)((?:\s+[^\s=\]]+=\"(?:[^\"\\]|\\.)*\")*)\]")
_SD_PARAM = re.compile(r'([^\s=\]]+)="((?:[^"\\]|\\.)*)"')


def parse_rfc5424(line: str, now_us: int | None, default_tz: str) -> Fields | None:
    m = _RFC5424.match(line)
    if m is None:
        return None
    pri = int(m.group("pri"))
    msg = m.group("msg") or ""
    if msg.startswith("\ufeff"):
        msg = msg[1:]
    fields = Fields("syslog5424", msg, ts_raw=m.group("ts"))
    fields.ts_us = (
        None if m.group("ts") == "-" else parse_timestamp(m.group("ts"), now_us=now_us, default_tz=default_tz)
    )
    fields.level = syslog_severity(pri & 7)
    fields.level_raw = str(pri & 7)
    fields.host = "" if m.group("host") == "-" else m.group("host")
    fields.service = "" if m.group("app") == "-" else m.group("app")
    attrs = fields.attributes
    attrs["facility"] = str(pri >> 3)
    if m.group("procid") != "-":
        attrs["procid"] = m.group("procid")
    if m.group("msgid") != "-":
        attrs["msgid"] = m.group("msgid")
    if m.group("sd") != "-":
        for el in _SD_ELEMENT.finditer(m.group("sd")):
            for k, v in _SD_PARAM.findall(el.group(2)):
                if len(attrs) < MAX_ATTRIBUTES:
                    attrs[f"{el.group(1)}.{k}"] = v.replace('\\"', '"').replace("\\]", "]").replace("\\\\", "\\")
    return fields


_RFC3164_TAIL = re.compile(
    r"\s+(?P<host>[\w.\-:]+)\s+(?P<tag>[\w.\-/()@]+?)(?:\[(?P<pid>[\w.\-]+)\])?:\s?(?P<msg>.*)$", re.DOTALL
)
_PRI = re.compile(r"<(?P<pri>\d{1,3})>")


def parse_rfc3164(line: str, now_us: int | None, default_tz: str) -> Fields | None:
    pri: int | None = None
    rest = line
    m = _PRI.match(line)
    if m is not None:
        pri = int(m.group("pri"))
        rest = line[m.end() :]
    if rest[:3].lower() not in (
        "jan",
        "feb",
        "mar",
        "apr",
        "may",
        "jun",
        "jul",
        "aug",
        "sep",
        "oct",
        "nov",
        "dec",
    ):
        return None
    found = find_timestamp(rest, now_us=now_us, default_tz=default_tz, allow_epoch=False)
    if found is None or found[2] not in ("rfc3164", "ctime"):
        return None
    ts, end, _ = found
    tail = _RFC3164_TAIL.match(rest, end)
    if tail is None:
        if pri is None:
            return None
        fields = Fields("syslog3164", rest[end:].strip(), ts_us=ts, ts_raw=rest[:end])
    else:
        fields = Fields("syslog3164", tail.group("msg"), ts_us=ts, ts_raw=rest[:end])
        fields.host = tail.group("host")
        fields.service = tail.group("tag")
        if tail.group("pid"):
            fields.attributes["pid"] = tail.group("pid")
    if pri is not None:
        fields.level = syslog_severity(pri & 7)
        fields.level_raw = str(pri & 7)
        fields.attributes["facility"] = str(pri >> 3)
    return fields


# --- containers -----------------------------------------------------------------------------------------
_CRI = re.compile(r"(?P<ts>\d{4}-\d{2}-\d{2}T\S+) (?P<stream>stdout|stderr) (?P<tag>[FP]) ?(?P<msg>.*)$", re.DOTALL)


def parse_cri(line: str, now_us: int | None, default_tz: str) -> Fields | None:
    m = _CRI.match(line)
    if m is None:
        return None
    fields = Fields("cri", m.group("msg"), ts_raw=m.group("ts"))
    fields.ts_us = parse_timestamp(m.group("ts"), now_us=now_us, default_tz=default_tz)
    fields.attributes["stream"] = m.group("stream")
    if m.group("tag") == "P":
        fields.attributes["partial"] = "true"
    return fields


CONTAINER_FORMATS = ("cri", "docker_json")


class ContainerLine(NamedTuple):
    """A container runtime's line, split: its output stream, the program's own text and whether the
    runtime cut it (CRI tag ``P``, a Docker ``log`` value without a trailing newline)."""

    kind: str  # "cri" or "docker_json"
    stream: str
    inner: str
    partial: bool


def container_line(line: str) -> ContainerLine | None:
    """The raw line as a container runtime wrote it (CRI or Docker's json-file driver); None otherwise.
    Cheap on other lines: a prefix test before any regular expression or JSON decoding."""
    if line.startswith('{"log":'):
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(obj, dict) or not isinstance(obj.get("log"), str) or "stream" not in obj:
            return None
        log = obj["log"]
        partial = not log.endswith("\n")
        return ContainerLine("docker_json", str(obj["stream"]), log if partial else log[:-1].rstrip("\r"), partial)
    if line[:4].isdigit() and (" stdout " in line[:64] or " stderr " in line[:64]):
        m = _CRI.match(line)
        if m is not None:
            return ContainerLine("cri", m.group("stream"), m.group("msg"), m.group("tag") == "P")
    return None


def container_glue(first: str, more: str, partial: bool) -> str:
    """``first`` (a raw CRI or Docker line that was cut) with ``more`` of its text appended, written as
    the runtime writes a line: tag ``F`` / a trailing newline once ``partial`` is False."""
    if first.startswith("{"):
        obj = orjson.loads(first)
        obj["log"] = obj["log"] + more + ("" if partial else "\n")
        return orjson.dumps(obj).decode()
    m = _CRI.match(first)
    if m is None:  # pragma: no cover - only called with what container_line accepted
        return first + more
    return f"{first[: m.start('tag')]}{'P' if partial else 'F'} {m.group('msg')}{more}"


# --- web servers ------------------------------------------------------------------------------------
_CLF = re.compile(
    r'(?P<client>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<ts>[^\]]+)\] "(?P<request>(?:[^"\\]|\\.)*)" '
    r"(?P<status>\d{3}|-) (?P<bytes>\d+|-)"
    r'(?: "(?P<referer>(?:[^"\\]|\\.)*)" "(?P<agent>(?:[^"\\]|\\.)*)")?(?P<rest>.*)$'
)


def parse_clf(line: str, now_us: int | None, default_tz: str) -> Fields | None:
    m = _CLF.match(line)
    if m is None:
        return None
    combined = m.group("agent") is not None
    fields = Fields(
        "combined" if combined else "common", f"{m.group('request')} {m.group('status')} {m.group('bytes')}"
    )
    fields.ts_raw = m.group("ts")
    fields.ts_us = parse_timestamp(m.group("ts"), now_us=now_us, default_tz=default_tz)
    a = fields.attributes
    a["client"] = m.group("client")
    if m.group("user") != "-":
        a["user"] = m.group("user")
    a["status"] = m.group("status")
    a["bytes"] = m.group("bytes")
    parts = m.group("request").split(" ")
    if len(parts) >= 2:
        a["method"], a["path"] = parts[0], parts[1]
    if combined:
        a["referer"] = m.group("referer") or ""
        a["user_agent"] = m.group("agent") or ""
    status = m.group("status")
    fields.level = Level.ERROR if status.startswith("5") else Level.WARN if status.startswith("4") else Level.INFO
    fields.level_raw = status
    return fields


_APACHE_ERROR = re.compile(
    r"\[(?P<ts>(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) [^\]]+)\] \[(?:(?P<module>[\w\-]+):)?(?P<level>\w+)\]"
    r"(?: \[pid (?P<pid>\d+)(?::tid (?P<tid>\d+))?\])?(?: \[client (?P<client>[^\]]+)\])? ?(?P<msg>.*)$",
    re.DOTALL,
)


def parse_apache_error(line: str, now_us: int | None, default_tz: str) -> Fields | None:
    m = _APACHE_ERROR.match(line)
    if m is None:
        return None
    fields = Fields("apache_error", m.group("msg"), ts_raw=m.group("ts"), level_raw=m.group("level"))
    fields.ts_us = parse_timestamp(m.group("ts"), now_us=now_us, default_tz=default_tz)
    if m.group("module"):
        fields.service = m.group("module")
    for k in ("pid", "tid", "client"):
        if m.group(k):
            fields.attributes[k] = m.group(k)
    return fields


# --- Loghub header styles -----------------------------------------------------------------------------
_LOGHUB: list[tuple[str, re.Pattern[str], dict[str, str]]] = [
    # HDFS: 081109 203615 148 INFO dfs.DataNode$PacketResponder: msg
    (
        "hdfs",
        re.compile(
            r"(?P<ts>\d{6} \d{6}) (?P<pid>\d+) (?P<level>[A-Z]+) (?P<service>[\w.$\-]+): (?P<msg>.*)$",
            re.DOTALL,
        ),
        {},
    ),
    # BGL: - 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 R02-M1-N0-C:J12-U11
    #      RAS KERNEL INFO msg
    (
        "bgl",
        re.compile(
            r"(?P<label>\S+) (?P<epoch>\d{9,10}) \d{4}\.\d{2}\.\d{2} (?P<host>\S+) "
            r"(?P<ts>\d{4}-\d{2}-\d{2}-\d{2}\.\d{2}\.\d{2}\.\d+) "
            r"\S+ (?P<type>[A-Z]+) (?P<service>[A-Z_]+) (?P<level>[A-Z]+) (?P<msg>.*)$",
            re.DOTALL,
        ),
        {},
    ),
    # HealthApp: 20171223-22:15:29:606|Step_LSC|30002312|onStandStepChanged 3579
    (
        "healthapp",
        re.compile(
            r"(?P<ts>\d{8}-\d{1,2}:\d{1,2}:\d{1,2}:\d{1,3})\|(?P<service>[^|]*)\|(?P<pid>\d+)\|(?P<msg>.*)$",
            re.DOTALL,
        ),
        {},
    ),
    # OpenStack: nova-api.log.1.2017-05-16_13:53:08 2017-05-16 00:00:00.008 25746 INFO nova.osapi...
    #            [req-...] msg
    (
        "openstack",
        re.compile(
            r"(?P<file>\S+\.log\S*) (?P<ts>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d+) "
            r"(?P<pid>\d+) (?P<level>[A-Z]+) "
            r"(?P<service>[\w.]+) \[(?P<ctx>[^\]]*)\] (?P<msg>.*)$",
            re.DOTALL,
        ),
        {},
    ),
    # Zookeeper: 2015-07-29 17:41:44,747 - INFO  [QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:Election@774] - msg
    (
        "zookeeper",
        re.compile(
            r"(?P<ts>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}) - (?P<level>[A-Z]+) +"
            r"\[(?P<thread>.*):(?P<service>[\w$.]+)@(?P<line>\d+)\] - (?P<msg>.*)$",
            re.DOTALL,
        ),
        {},
    ),
]


def parse_loghub(line: str, now_us: int | None, default_tz: str) -> Fields | None:
    for name, pattern, _ in _LOGHUB:
        m = pattern.match(line)
        if m is None:
            continue
        g = m.groupdict()
        fields = Fields(name, g["msg"], ts_raw=g["ts"], level_raw=g.get("level") or "")
        fields.ts_us = parse_timestamp(g["ts"], now_us=now_us, default_tz=default_tz)
        fields.service = g.get("service") or ""
        fields.host = g.get("host") or ""
        for k in ("pid", "thread", "label", "type", "ctx", "file", "line"):
            if g.get(k):
                fields.attributes[k] = g[k]
        return fields
    return None


# --- "timestamp level [thread] logger: message" -------------------------------------------------------
_BRACKET_LEVELS = r"trace|debug|info|notice|warn|warning|error|err|crit|critical|alert|emerg|fatal|panic|severe"
_AFTER_TS = re.compile(
    r"[\s,|\-]*(?:(?P<level>" + _LEVEL_WORDS + r")\b[\s:|\-]*)?"
    # a bracketed level word is a level, not a thread: "[warning]", Nginx's "[error] 1234#0: *5 ..."
    r"(?:\[(?i:(?P<blevel>" + _BRACKET_LEVELS + r"))\]\s*(?:(?P<pid>\d+)#(?P<tid>\d+):\s*)?)?"
    r"(?:\[(?P<thread>[^\]]{0,200})\]\s*)?"
    r"(?:(?P<level2>" + _LEVEL_WORDS + r")\b[\s:|\-]*)?"
    r"(?:(?P<logger>[A-Za-z_$][\w.$\-/]*(?:\[[^\]]{0,100}\])?)(?:\s*:\s+|\s+-\s+))?"
    r"(?P<msg>.*)$",
    re.DOTALL,
)
_PY_STYLE = re.compile(
    r"[\s,]*-\s+(?P<logger>[\w.$\-]+)\s+-\s+(?P<level>" + _LEVEL_WORDS + r")\s+-\s+(?P<msg>.*)$", re.DOTALL
)


def parse_timestamped(line: str, now_us: int | None, default_tz: str) -> Fields | None:
    found = find_timestamp(line, now_us=now_us, default_tz=default_tz, allow_epoch=False)
    if found is None:
        return None
    ts, end, _ts_name = found
    if end < len(line) and not (line[end].isspace() or line[end] in ",|-]:"):
        return None
    rest = line[end:]
    py = _PY_STYLE.match(rest)
    if py is not None:
        fields = Fields("python", py.group("msg"), ts_us=ts, ts_raw=line[:end], level_raw=py.group("level"))
        fields.service = py.group("logger")
        return fields
    m = _AFTER_TS.match(rest)
    if m is None:  # pragma: no cover - the pattern matches any text
        return Fields("timestamped", rest.strip(), ts_us=ts, ts_raw=line[:end])
    level = m.group("level") or m.group("blevel") or m.group("level2") or ""
    logger = m.group("logger") or ""
    if not level and logger:
        # without a level a "word: " prefix is just message text ("Received block ...")
        return Fields("timestamped", rest.strip(), ts_us=ts, ts_raw=line[:end])
    fields = Fields("timestamped", m.group("msg"), ts_us=ts, ts_raw=line[:end], level_raw=level)
    fields.service = logger
    if m.group("thread"):
        fields.attributes["thread"] = m.group("thread")
    if m.group("pid"):
        fields.attributes["pid"], fields.attributes["tid"] = m.group("pid"), m.group("tid")
    return fields


# --- Go glog / klog (Kubernetes components): I1101 12:00:00.123456   12345 main.go:42] msg -------------
_GLOG = re.compile(
    r"(?P<level>[IWEF])(?P<m>\d{2})(?P<d>\d{2}) (?P<H>\d{2}):(?P<M>\d{2}):(?P<S>\d{2})(?:\.(?P<frac>\d{1,9}))?"
    r"\s+(?P<thread>\d+) (?P<file>[^\s:\]]+):(?P<line>\d+)\] ?(?P<msg>.*)$",
    re.DOTALL,
)


def parse_glog(line: str, now_us: int | None, default_tz: str) -> Fields | None:
    if line[:1] not in "IWEF" or not line[1:5].isdigit():
        return None
    m = _GLOG.match(line)
    if m is None:
        return None
    end = m.start("thread")
    fields = Fields("glog", m.group("msg"), ts_raw=line[:end].rstrip(), level_raw=m.group("level"))
    fields.ts_us = parse_timestamp(line[:end], now_us=now_us, default_tz=default_tz)
    fields.service = m.group("file")
    fields.attributes["thread"] = m.group("thread")
    fields.attributes["line"] = m.group("line")
    return fields


PARSERS: dict[str, _Parser] = {
    "json": parse_json,
    "docker_json": parse_json,
    "syslog5424": parse_rfc5424,
    "syslog3164": parse_rfc3164,
    "cri": parse_cri,
    "common": parse_clf,
    "combined": parse_clf,
    "apache_error": parse_apache_error,
    "hdfs": parse_loghub,
    "bgl": parse_loghub,
    "healthapp": parse_loghub,
    "openstack": parse_loghub,
    "zookeeper": parse_loghub,
    "logfmt": parse_logfmt,
    "timestamped": parse_timestamped,
    "python": parse_timestamped,
    "glog": parse_glog,
}
FORMAT_NAMES: tuple[str, ...] = (*PARSERS, "plain")

# Detection order when there is no hint: cheap, specific checks first.
_ORDER: tuple[_Parser, ...] = (
    parse_json,
    parse_rfc5424,
    parse_cri,
    parse_apache_error,
    parse_clf,
    parse_loghub,
    parse_rfc3164,
    parse_glog,
    parse_timestamped,
    parse_logfmt,
)


def parse_custom(line: str, fmt: CustomFormat, now_us: int | None, default_tz: str) -> Fields | None:
    groups = fmt.match(line)
    if groups is None:
        return None
    ts_raw = groups.pop("ts", "")
    fields = Fields(fmt.name, groups.pop("msg", line), ts_raw=ts_raw)
    fields.ts_us = _ts_value(ts_raw, now_us, default_tz)
    fields.level_raw = groups.pop("level", "")
    fields.service = groups.pop("service", "")
    fields.host = groups.pop("host", "")
    fields.trace_id = groups.pop("trace_id", "")
    fields.span_id = groups.pop("span_id", "")
    fields.attributes = dict(list(groups.items())[:MAX_ATTRIBUTES])
    return fields


def detect(
    line: str,
    *,
    now_us: int | None = None,
    default_tz: str = "UTC",
    hint: str | None = None,
    custom: Sequence[CustomFormat] = (),
) -> Fields:
    """Split ``line`` into fields: the source's own formats first, then the hinted format, then the
    first built-in one that fits; ``plain`` otherwise."""
    for fmt in custom:
        fields = parse_custom(line, fmt, now_us, default_tz)
        if fields is not None:
            return fields
    tried: _Parser | None = None
    if hint and hint in PARSERS:
        tried = PARSERS[hint]
        fields = tried(line, now_us, default_tz)
        if fields is not None:
            return fields
    for parser in _ORDER:
        if parser is tried:
            continue
        fields = parser(line, now_us, default_tz)
        if fields is not None:
            return fields
    return Fields("plain", line)


def level_of(fields: Fields) -> Level | None:
    if fields.level is not None:
        return fields.level
    return normalise_level(fields.level_raw) if fields.level_raw else None
