from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from logloupe.model import FLAG_INVALID_UTF8, FLAG_NUL_BYTES, FLAG_TIME_REPLACED, FLAG_TRUNCATED, Level, to_micros
from logloupe.parse.line import MAX_LINE_CHARS, parse_line

NOW = to_micros(datetime(2026, 11, 21, 12, 0, tzinfo=UTC))


def us(*args: int) -> int:
    return to_micros(datetime(*args, tzinfo=UTC))  # type: ignore[misc]


# (line, format, message, level, service, host, ts_us, some attributes)
CASES = [
    (
        '{"time":"2023-01-02T03:04:05Z","level":"warning","msg":"disk low","service":"db","host":"h1",'
        '"trace_id":"abc","span_id":"def","disk":{"free":12}}',
        "json",
        "disk low",
        Level.WARN,
        "db",
        "h1",
        us(2023, 1, 2, 3, 4, 5),
        {"disk.free": "12"},
    ),
    (
        '{"@timestamp":1672628645123,"severity":"ERROR","message":"boom","logger":"app.core"}',
        "json",
        "boom",
        Level.ERROR,
        "app.core",
        "",
        us(2023, 1, 2, 3, 4, 5) + 123000,
        {},
    ),
    (
        '{"log":"hello from container\\n","stream":"stderr","time":"2023-01-02T03:04:05.5Z"}',
        "docker_json",
        "hello from container",
        Level.INFO,
        "",
        "",
        us(2023, 1, 2, 3, 4, 5) + 500000,
        {"stream": "stderr"},
    ),
    (
        "2023-01-02T03:04:05.123456789Z stdout F GET /health 200",
        "cri",
        "GET /health 200",
        Level.INFO,
        "",
        "",
        us(2023, 1, 2, 3, 4, 5) + 123456,
        {"stream": "stdout"},
    ),
    (
        'ts=2023-01-02T03:04:05Z level=error msg="payment failed" user=bob amount=12.5',
        "logfmt",
        "payment failed",
        Level.ERROR,
        "",
        "",
        us(2023, 1, 2, 3, 4, 5),
        {"user": "bob", "amount": "12.5"},
    ),
    (
        '<165>1 2023-01-02T03:04:05.000Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3"] An app event',
        "syslog5424",
        "An app event",
        Level.INFO,
        "evntslog",
        "mymachine.example.com",
        us(2023, 1, 2, 3, 4, 5),
        {"exampleSDID@32473.iut": "3", "msgid": "ID47", "facility": "20"},
    ),
    (
        "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
        "syslog3164",
        "'su root' failed for lonvick on /dev/pts/8",
        Level.FATAL,
        "su",
        "mymachine",
        us(2026, 10, 11, 22, 14, 15),
        {"facility": "4"},
    ),
    (
        "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: check pass; user unknown",
        "syslog3164",
        "check pass; user unknown",
        Level.INFO,
        "sshd(pam_unix)",
        "combo",
        us(2026, 6, 14, 15, 16, 1),
        {"pid": "19939"},
    ),
    (
        '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326',
        "common",
        "GET /apache_pb.gif HTTP/1.0 200 2326",
        Level.INFO,
        "",
        "",
        us(2000, 10, 10, 20, 55, 36),
        {"client": "127.0.0.1", "user": "frank", "status": "200", "path": "/apache_pb.gif"},
    ),
    (
        '10.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "POST /login HTTP/1.1" 503 12 "-" "curl/8.0"',
        "combined",
        "POST /login HTTP/1.1 503 12",
        Level.ERROR,
        "",
        "",
        us(2000, 10, 10, 13, 55, 36),
        {"user_agent": "curl/8.0", "method": "POST"},
    ),
    (
        "[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok /etc/httpd/conf/workers2.properties",
        "apache_error",
        "workerEnv.init() ok /etc/httpd/conf/workers2.properties",
        Level.INFO,
        "",
        "",
        us(2005, 12, 4, 4, 47, 44),
        {},
    ),
    (
        "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_38865049064139660 terminating",
        "hdfs",
        "PacketResponder 1 for block blk_38865049064139660 terminating",
        Level.INFO,
        "dfs.DataNode$PacketResponder",
        "",
        us(2008, 11, 9, 20, 36, 15),
        {"pid": "148"},
    ),
    (
        "- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 R02-M1-N0-C:J12-U11 RAS KERNEL INFO "
        "instruction cache parity error corrected",
        "bgl",
        "instruction cache parity error corrected",
        Level.INFO,
        "KERNEL",
        "R02-M1-N0-C:J12-U11",
        us(2005, 6, 3, 15, 42, 50) + 675872,
        {"label": "-"},
    ),
    (
        "20171223-22:15:29:606|Step_LSC|30002312|onStandStepChanged 3579",
        "healthapp",
        "onStandStepChanged 3579",
        Level.INFO,
        "Step_LSC",
        "",
        us(2017, 12, 23, 22, 15, 29) + 606000,
        {},
    ),
    (
        "nova-api.log.1.2017-05-16_13:53:08 2017-05-16 00:00:00.008 25746 INFO nova.osapi_compute.wsgi.server "
        '[req-38101a0b-2096 113d3a99 - - -] 10.11.10.1 "GET /v2/servers HTTP/1.1" status: 200',
        "openstack",
        '10.11.10.1 "GET /v2/servers HTTP/1.1" status: 200',
        Level.INFO,
        "nova.osapi_compute.wsgi.server",
        "",
        us(2017, 5, 16, 0, 0, 0) + 8000,
        {},
    ),
    (
        "2015-07-29 17:41:44,747 - INFO  [QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@774] - "
        "Notification time out: 3200",
        "zookeeper",
        "Notification time out: 3200",
        Level.INFO,
        "FastLeaderElection",
        "",
        us(2015, 7, 29, 17, 41, 44) + 747000,
        {"line": "774"},
    ),
    (
        "17/06/09 20:10:40 INFO executor.CoarseGrainedExecutorBackend: Registered signal handlers for [TERM, HUP, INT]",
        "timestamped",
        "Registered signal handlers for [TERM, HUP, INT]",
        Level.INFO,
        "executor.CoarseGrainedExecutorBackend",
        "",
        us(2017, 6, 9, 20, 10, 40),
        {},
    ),
    (
        "2023-01-02 03:04:05,123 ERROR [main] com.acme.Service: request failed",
        "timestamped",
        "request failed",
        Level.ERROR,
        "com.acme.Service",
        "",
        us(2023, 1, 2, 3, 4, 5) + 123000,
        {"thread": "main"},
    ),
    (
        "2023-01-02 03:04:05,123 - myapp.db - WARNING - slow query",
        "python",
        "slow query",
        Level.WARN,
        "myapp.db",
        "",
        us(2023, 1, 2, 3, 4, 5) + 123000,
        {},
    ),
    (
        "2023/01/02 03:04:05 listening on :8080",
        "timestamped",
        "listening on :8080",
        Level.INFO,
        "",
        "",
        us(2023, 1, 2, 3, 4, 5),
        {},
    ),
    ("just some text ERROR happened", "plain", "just some text ERROR happened", Level.ERROR, "", "", None, {}),
    # Go glog / klog (Kubernetes components): level letter, month-day, time, thread id, file:line]
    (
        "I1101 12:00:00.123456   12345 main.go:42] sync loop done",
        "glog",
        "sync loop done",
        Level.INFO,
        "main.go",
        "",
        us(2026, 11, 1, 12, 0, 0) + 123456,
        {"thread": "12345", "line": "42"},
    ),
    (
        'E0102 15:04:05.000001       1 reflector.go:138] failed to list *v1.Pod: "boom"',
        "glog",
        'failed to list *v1.Pod: "boom"',
        Level.ERROR,
        "reflector.go",
        "",
        us(2026, 1, 2, 15, 4, 5) + 1,
        {"thread": "1"},
    ),
    (
        "W1120 23:59:59.5 7 x.go:1] slow",
        "glog",
        "slow",
        Level.WARN,
        "x.go",
        "",
        us(2026, 11, 20, 23, 59, 59) + 500000,
        {},
    ),
    # a bracketed level word after the time is the level, not a thread
    (
        "2026/01/02 03:04:05 [error] 1234#0: *5 connect() failed (111: Connection refused)",
        "timestamped",
        "*5 connect() failed (111: Connection refused)",
        Level.ERROR,
        "",
        "",
        us(2026, 1, 2, 3, 4, 5),
        {"pid": "1234", "tid": "0"},
    ),
    (
        "2026-01-02 03:04:05 [warning] disk almost full",
        "timestamped",
        "disk almost full",
        Level.WARN,
        "",
        "",
        us(2026, 1, 2, 3, 4, 5),
        {},
    ),
    (
        "2026-01-02 03:04:05 [CRIT] [worker-1] app.Pool: exhausted",
        "timestamped",
        "exhausted",
        Level.FATAL,
        "app.Pool",
        "",
        us(2026, 1, 2, 3, 4, 5),
        {"thread": "worker-1"},
    ),
]


@pytest.mark.parametrize(("line", "fmt", "message", "level", "service", "host", "ts_us", "attrs"), CASES)
def test_formats(
    line: str, fmt: str, message: str, level: Level, service: str, host: str, ts_us: int | None, attrs: dict[str, str]
) -> None:
    p = parse_line(line, now_us=NOW)
    assert (p.format, p.message, p.level, p.service, p.host, p.ts_us) == (fmt, message, level, service, host, ts_us)
    for k, v in attrs.items():
        assert p.attributes.get(k) == v


def test_json_trace_ids() -> None:
    p = parse_line(CASES[0][0], now_us=NOW)
    assert (p.trace_id, p.span_id) == ("abc", "def")


@pytest.mark.parametrize(
    "record",
    [
        {"service": "a", "level": "info", "message": "m", "meta": {"user_id": 7}},
        {"msg": "m", "meta": {"user": {"id": 7}, "service": "inner"}, "user": "top", "data": "kept"},
        {"message": "m", "attributes": {"a": 1}, "labels": {"a": 2, "b": [1, 2]}, "context": None},
        {"message": "m", "fields": {"ok": True}, "extra": {"n": None}, "host": {"name": "h", "os": "linux"}},
    ],
)
def test_json_line_attributes_are_a_records(record: dict[str, object]) -> None:
    from logloupe.parse.records import Limits, record_fields

    line = orjson.dumps(record)
    text, body = parse_line(line, now_us=NOW), record_fields(orjson.loads(line), Limits())
    assert text.format == "json"
    assert (text.attributes, text.service, text.host) == (body.attributes, body.service, body.host)


def test_hint_is_tried_first() -> None:
    line = "2023-01-02T03:04:05Z stdout F hello"
    assert parse_line(line, now_us=NOW, hint="cri").format == "cri"
    assert parse_line("plain words", now_us=NOW, hint="cri").format == "plain"


def test_invalid_utf8_is_replaced_and_flagged() -> None:
    p = parse_line(b"bad \xff\xfe bytes", now_us=NOW)
    assert p.message == "bad \ufffd\ufffd bytes"
    assert FLAG_INVALID_UTF8 in p.flags


def test_nul_bytes_are_dropped_and_flagged() -> None:
    p = parse_line(b"a\x00b", now_us=NOW)
    assert p.message == "ab" and FLAG_NUL_BYTES in p.flags


def test_long_lines_are_truncated_and_flagged() -> None:
    p = parse_line("x" * (MAX_LINE_CHARS + 10), now_us=NOW)
    assert len(p.message) == MAX_LINE_CHARS and FLAG_TRUNCATED in p.flags


def test_ansi_colours_are_stripped() -> None:
    p = parse_line("\x1b[31mERROR\x1b[0m \x1b]0;title\x07disk \x1b[1;32mfull\x1b[m", now_us=NOW)
    assert p.message == "ERROR disk full"
    assert p.level == Level.ERROR


@pytest.mark.parametrize("line", ["", "   ", b"\r\n", "\t"])
def test_empty_lines(line: str | bytes) -> None:
    p = parse_line(line, now_us=NOW)
    assert p.message == "" and p.format == "empty" and p.ts_us is None


def test_impossible_time_becomes_observed_time_with_reason() -> None:
    p = parse_line('{"time":"2099-01-01T00:00:00Z","msg":"from the future"}', now_us=NOW)
    assert p.ts_us == NOW
    assert FLAG_TIME_REPLACED in p.flags
    assert p.attributes["time_replaced_reason"] == "time_in_future"
    assert p.attributes["original_time"] == "2099-01-01T00:00:00Z"
    q = parse_line('{"time":"not a time","msg":"x"}', now_us=NOW)
    assert q.ts_us == NOW and q.attributes["time_replaced_reason"] == "unparsable_time"
