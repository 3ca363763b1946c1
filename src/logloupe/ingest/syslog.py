"""Syslog framing and header parsing (pure): RFC 5424 and RFC 3164 messages, octet-counting and
newline framing on TCP, and the NUL-terminated messages Python's ``SysLogHandler`` sends.

``parse_message`` returns a record (the dict shape every ingest path produces): severity → level,
facility, hostname → host, app name / tag → service, procid, msgid and structured data → attributes.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

SEVERITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
FACILITIES = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp",
    "ntp", "security", "console", "solaris-cron", "local0", "local1", "local2", "local3", "local4", "local5",
    "local6", "local7",
)  # fmt: skip
MAX_FRAME = 1024 * 1024  # longer octet-counted frames are cut (and flagged by the message limit)


class Framer:
    """Incremental TCP framing: octet counting (``123 <13>...``), else LF or NUL terminated lines."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.buf = bytearray()
        self.max_frame = max_frame

    def feed(self, data: bytes) -> list[bytes]:
        self.buf += data
        out: list[bytes] = []
        while self.buf:
            first = self.buf[:1]
            if first.isdigit():
                space = self.buf.find(b" ", 0, 12)
                if space > 0 and self.buf[:space].isdigit():
                    length = int(self.buf[:space])
                    if len(self.buf) < space + 1 + length:
                        if length > self.max_frame:  # never hold an absurd frame: take what there is
                            out.append(bytes(self.buf[space + 1 :]))
                            del self.buf[:]
                        break
                    out.append(bytes(self.buf[space + 1 : space + 1 + length]))
                    del self.buf[: space + 1 + length]
                    continue
                if space < 0 and len(self.buf) < 12:
                    break  # the count may still be arriving
            end = _terminator(self.buf)
            if end < 0:
                if len(self.buf) > self.max_frame:
                    out.append(bytes(self.buf))
                    del self.buf[:]
                break
            frame = bytes(self.buf[:end]).rstrip(b"\r")
            del self.buf[: end + 1]
            if frame.strip():
                out.append(frame)
        return out

    def flush(self) -> list[bytes]:
        rest = bytes(self.buf).strip(b"\x00\r\n ")
        self.buf.clear()
        return [rest] if rest else []


def _terminator(buf: bytearray) -> int:
    nl, nul = buf.find(b"\n"), buf.find(b"\x00")
    if nl < 0:
        return nul
    if nul < 0:
        return nl
    return min(nl, nul)


def split_datagram(data: bytes) -> list[bytes]:
    """A UDP datagram holds one message (maybe NUL- or LF-terminated); some senders pack several lines."""
    parts = [p.rstrip(b"\r") for p in re.split(rb"[\n\x00]", data)]
    return [p for p in parts if p.strip()]


_PRI = re.compile(rb"^<(\d{1,3})>")
_5424 = re.compile(
    r"^1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<proc>\S+) (?P<msgid>\S+) "
    r"(?P<sd>-|(?:\[(?:[^\]\\]|\\.)*\])+)(?: (?P<msg>.*))?$",
    re.S,
)
_3164_TS = re.compile(r"^(?P<ts>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (?P<rest>.*)$", re.S)
_TAG = re.compile(r"^(?P<tag>[^\s\[\]:]{1,64})(?:\[(?P<pid>[^\]]{1,32})\])?: ?(?P<msg>.*)$", re.S)
_SD_ELEMENT = re.compile(r'\[(?P<id>[^\s\]=]+)(?P<params>(?: [^\s=\]]+="(?:[^"\\]|\\.)*")*)\]')
_SD_PARAM = re.compile(r' ([^\s=\]]+)="((?:[^"\\]|\\.)*)"')
_MONTHS = {
    m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)
}


def _nil(value: str) -> str:
    return "" if value == "-" else value


def parse_message(frame: bytes, now: datetime) -> dict[str, Any]:
    """One syslog message → record. Unparseable headers keep the whole text as the message."""
    data = frame.rstrip(b"\x00\r\n")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    record: dict[str, Any] = {}
    attrs: dict[str, Any] = {}
    m = _PRI.match(data)
    if m and int(m.group(1)) <= 191:
        pri = int(m.group(1))
        record["level"] = SEVERITIES[pri & 7]
        attrs["syslog.facility"] = FACILITIES[pri >> 3] if pri >> 3 < len(FACILITIES) else str(pri >> 3)
        data = data[m.end() :]
    text = data.decode("utf-8", "replace")
    m5 = _5424.match(text)
    if m5:
        attrs["syslog.format"] = "rfc5424"
        if _nil(m5["ts"]):
            record["timestamp"] = m5["ts"]
        record["host"] = _nil(m5["host"])
        record["service"] = _nil(m5["app"])
        for key, group in (("syslog.procid", "proc"), ("syslog.msgid", "msgid")):
            if _nil(m5[group]):
                attrs[key] = m5[group]
        for el in _SD_ELEMENT.finditer(m5["sd"] or ""):
            for name, value in _SD_PARAM.findall(el["params"]):
                attrs[f"sd.{el['id']}.{name}"] = re.sub(r"\\(.)", r"\1", value)
        msg = m5["msg"] or ""
        record["message"] = msg[1:] if msg.startswith("\ufeff") else msg
    else:
        m3 = _3164_TS.match(text)
        rest = text
        if m3:
            attrs["syslog.format"] = "rfc3164"
            record["timestamp"] = _bsd_time(m3["ts"], now)
            rest = m3["rest"]
            head, _, tail = rest.partition(" ")
            if head and not head.endswith(":") and "[" not in head and tail:
                record["host"] = head
                rest = tail
        else:
            attrs["syslog.format"] = "bare"
        mt = _TAG.match(rest)
        if mt:
            record["service"] = mt["tag"]
            if mt["pid"]:
                attrs["syslog.procid"] = mt["pid"]
            record["message"] = mt["msg"]
        else:
            record["message"] = rest
    record["attributes"] = attrs
    return record


def _bsd_time(text: str, now: datetime) -> str:
    """``Nov 21 02:10:13`` has no year or zone: the current year, or last year if that is the future;
    read in UTC unless the source names a time zone."""
    month = _MONTHS.get(text[:3], 1)
    day = int(text[4:6])
    hh, mm, ss = (int(x) for x in text[7:15].split(":"))
    try:
        ts = datetime(now.year, month, day, hh, mm, ss, tzinfo=UTC)
        if (ts - now).days > 1:
            ts = ts.replace(year=now.year - 1)
    except ValueError:
        return now.isoformat()
    # Written without a zone, so a parsing source's ``timezone`` can read it (parse/sources.py).
    return ts.replace(tzinfo=None).isoformat()


# An API key can ride in the message: RFC 5424 structured data ``[logloupe@32473 key="llk_…"]`` (any
# SD-ID ``logloupe`` or ``logloupe@<enterprise>``, parameter ``key`` or ``token``), or, for senders
# that cannot write structured data (RFC 3164, Python's SysLogHandler), a first word ``llk_…``.
KEY_PREFIX = "llk_"
_KEY_PARAMS = ("key", "token")


def _key_attr(name: str) -> bool:
    if not name.startswith("sd.logloupe"):
        return False
    sd_id, _, param = name[3:].rpartition(".")
    return (sd_id == "logloupe" or sd_id.startswith("logloupe@")) and param in _KEY_PARAMS


def message_key(record: dict[str, Any]) -> str | None:
    """The API key a parsed message carries, if any (the record is not changed)."""
    for name, value in record.get("attributes", {}).items():
        if _key_attr(name):
            return str(value)
    message = str(record.get("message", ""))
    if message.startswith(KEY_PREFIX):
        return message.split(None, 1)[0]
    return None


def without_key(record: dict[str, Any]) -> dict[str, Any]:
    """The record with its API key taken out, so the secret is never stored or shown."""
    attrs = {k: v for k, v in record.get("attributes", {}).items() if not _key_attr(k)}
    out = {**record, "attributes": attrs}
    message = str(record.get("message", ""))
    if message.startswith(KEY_PREFIX):
        out["message"] = message.split(None, 1)[1] if len(message.split(None, 1)) > 1 else ""
    return out
