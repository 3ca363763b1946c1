"""Every protocol through the real client users already run, against a real ``logloupe serve``."""

from __future__ import annotations

import gzip
import logging
import logging.handlers
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import cramjam
import httpx
import pytest

from tests.ingest.conftest import SHARED_DATA, Server


def _marker(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(5)}"


def test_elasticsearch_client_helpers_bulk(server: Server) -> None:
    from elasticsearch import Elasticsearch, helpers

    mark = _marker("es")
    es = Elasticsearch(server.url)
    assert es.info()["version"]["number"]
    now = datetime.now(UTC).isoformat()
    actions = [
        {
            "_index": "checkout",
            "_source": {"@timestamp": now, "message": f"{mark} order {i} paid", "log": {"level": "warn"}, "order": i},
        }
        for i in range(50)
    ]
    ok, errors = helpers.bulk(es, actions)
    assert ok == 50 and not errors
    events = server.search(f"{mark} service:checkout", 50)
    assert len(events) == 50
    assert {e["level"] for e in events} == {"WARN"}
    assert {e["attributes"]["order"] for e in events} == {str(i) for i in range(50)}
    assert all(e["source"] == "elasticsearch" for e in events)
    single = es.index(index="billing", document={"message": f"{mark} single doc", "host": {"name": "web-1"}})
    assert single["result"] == "created"
    event = server.search(f"{mark} service:billing", 1)[0]
    assert event["host"] == "web-1"


def test_elasticsearch_bulk_reports_bad_items(server: Server) -> None:
    mark = _marker("esbad")
    body = (
        b'{"index":{"_index":"inv"}}\n{"message":"' + mark.encode() + b' good"}\n'
        b'{"index":{"_index":"inv"}}\n{not json\n'
        b'{"delete":{"_index":"inv","_id":"1"}}\n'
    )
    r = httpx.post(f"{server.url}/_bulk", content=body, headers={"content-type": "application/x-ndjson"})
    assert r.status_code == 200
    assert r.headers["x-elastic-product"] == "Elasticsearch"
    out = r.json()
    assert out["errors"] is True
    assert [next(iter(i.values()))["status"] for i in out["items"]] == [201, 400, 400]
    server.search(f"{mark} service:inv", 1)


def test_opensearch_py_bulk(server: Server) -> None:
    from opensearchpy import OpenSearch, helpers

    mark = _marker("os")
    client = OpenSearch(hosts=[server.url])
    ok, errors = helpers.bulk(
        client,
        [{"_index": "search-api", "_source": {"message": f"{mark} query {i}", "level": "error"}} for i in range(20)],
    )
    assert ok == 20 and not errors
    events = server.search(f"{mark} service:search-api level:ERROR", 20)
    assert len(events) == 20


def test_opentelemetry_sdk_otlp_http_exporter(server: Server) -> None:
    from opentelemetry._logs import SeverityNumber
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    mark = _marker("otel")
    resource = Resource.create({"service.name": "otel-shop", "host.name": "node-7", "deployment.environment": "test"})
    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"{server.url}/v1/logs")))
    logger = provider.get_logger(f"otel.{mark}", "1.2.3", attributes={"team": "payments", "shard": 3})
    tracer = TracerProvider(resource=resource).get_tracer("t")
    with tracer.start_as_current_span("checkout") as span:
        logger.emit(
            severity_number=SeverityNumber.ERROR,
            severity_text="ERROR",
            body=f"{mark} payment declined",
            attributes={"order_id": 42},
        )
        ctx = span.get_span_context()
    logger.emit(severity_number=SeverityNumber.INFO, body=f"{mark} all fine")
    provider.force_flush()
    provider.shutdown()
    events = {e["level"]: e for e in server.search(f"{mark} service:otel-shop", 2)}
    err = events["ERROR"]
    assert err["host"] == "node-7"
    assert err["trace_id"] == f"{ctx.trace_id:032x}"
    assert err["span_id"] == f"{ctx.span_id:016x}"
    assert err["attributes"]["order_id"] == "42"
    assert err["attributes"]["resource.deployment.environment"] == "test"
    assert err["attributes"]["scope.name"] == f"otel.{mark}"
    assert err["attributes"]["scope.version"] == "1.2.3"
    assert err["attributes"]["scope.team"] == "payments"
    assert err["attributes"]["scope.shard"] == "3"
    assert len(server.search(f"{mark} attr.scope.team:payments", 2)) == 2
    assert events["INFO"]["trace_id"] == ""


def test_otlp_json_gzip_chunked(server: Server) -> None:
    mark = _marker("otj")
    body = {
        "resourceLogs": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "jsonsvc"}}]},
                "scopeLogs": [
                    {
                        "scope": {
                            "name": "lib",
                            "attributes": [{"key": "lib.tier", "value": {"stringValue": "gold"}}],
                        },
                        "logRecords": [
                            {
                                "timeUnixNano": str(time.time_ns()),
                                "severityNumber": "SEVERITY_NUMBER_WARN",
                                "body": {"stringValue": f"{mark} low disk"},
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "attributes": [{"key": "disk", "value": {"intValue": "3"}}],
                            }
                        ],
                    }
                ],
            }
        ]
    }
    import orjson

    zipped = gzip.compress(orjson.dumps(body))

    def chunks() -> Iterator[bytes]:  # no Content-Length: Transfer-Encoding: chunked
        for i in range(0, len(zipped), 64):
            yield zipped[i : i + 64]

    r = httpx.post(
        f"{server.url}/v1/logs",
        content=chunks(),
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert r.status_code == 200, r.text
    event = server.search(f"{mark} service:jsonsvc", 1)[0]
    assert event["level"] == "WARN"
    assert event["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert event["attributes"]["disk"] == "3"
    assert event["attributes"]["scope.name"] == "lib"
    assert event["attributes"]["scope.lib.tier"] == "gold"
    assert server.search(f"{mark} attr.scope.lib.tier:gold", 1)[0]["id"] == event["id"]


def test_python_logging_loki(server: Server) -> None:
    import logging_loki

    mark = _marker("loki")
    handler = logging_loki.LokiHandler(
        url=f"{server.url}/loki/api/v1/push", tags={"application": "lokiapp", "env": "ci"}, version="1"
    )
    logger = logging.getLogger(f"loki.{mark}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    logger.warning("%s cache miss storm", mark, extra={"tags": {"shard": "7"}})
    event = server.search(f"{mark} service:lokiapp", 1)[0]
    assert event["attributes"]["env"] == "ci"
    assert event["attributes"]["shard"] == "7"
    assert event["level"] == "WARN"


def _pb(field: int, value: bytes) -> bytes:
    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            b, n = n & 0x7F, n >> 7
            out.append(b | (0x80 if n else 0))
            if not n:
                return bytes(out)

    return varint(field << 3 | 2) + varint(len(value)) + value


def test_loki_snappy_protobuf(server: Server) -> None:
    mark = _marker("lokipb")
    now = time.time_ns()
    ts = bytes([0x08]) + _varint_bytes(now // 1_000_000_000) + bytes([0x10]) + _varint_bytes(now % 1_000_000_000)
    entry = _pb(1, ts) + _pb(2, f"{mark} upstream timeout".encode())
    stream = _pb(1, b'{job="gateway", level="error", region="eu"}') + _pb(2, entry) + _pb(2, entry)
    body = bytes(cramjam.snappy.compress_raw(_pb(1, stream)))
    r = httpx.post(f"{server.url}/loki/api/v1/push", content=body, headers={"content-type": "application/x-protobuf"})
    assert r.status_code == 204, r.text
    events = server.search(f"{mark} service:gateway", 2)
    assert {e["level"] for e in events} == {"ERROR"}
    assert events[0]["attributes"]["region"] == "eu"


def _varint_bytes(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


@pytest.mark.parametrize(
    ("fmt", "transport"),
    [("--rfc3164", "-d"), ("--rfc5424", "-d"), ("--rfc3164", "-T"), ("--rfc5424", "-T")],
)
def test_util_linux_logger(server: Server, fmt: str, transport: str) -> None:
    mark = _marker("lg")
    port = server.udp_port if transport == "-d" else server.tcp_port
    tag = f"tag{mark}"
    args = ["logger", fmt, "-n", "127.0.0.1", "-P", str(port), transport, "-t", tag, "-p", "local3.err"]
    if transport == "-T" and fmt == "--rfc5424":
        args.append("--octet-count")
    subprocess.run([*args, f"{mark} first line"], check=True, timeout=10)
    subprocess.run([*args, f"{mark} second line"], check=True, timeout=10)
    events = server.search(f"{mark} service:{tag}", 2)
    assert len(events) == 2
    e = events[0]
    assert e["level"] == "ERROR"
    assert e["attributes"]["syslog.facility"] == "local3"
    assert e["attributes"]["syslog.format"] == fmt[2:]
    assert e["host"]
    assert e["source"] == ("syslog_udp" if transport == "-d" else "syslog_tcp")


@pytest.mark.parametrize("socktype", [socket.SOCK_DGRAM, socket.SOCK_STREAM])
def test_python_syslog_handler(server: Server, socktype: socket.SocketKind) -> None:
    mark = _marker("slh")
    port = server.udp_port if socktype == socket.SOCK_DGRAM else server.tcp_port
    handler = logging.handlers.SysLogHandler(address=("127.0.0.1", port), socktype=socktype)
    handler.setFormatter(logging.Formatter("pyapp: %(message)s"))
    logger = logging.getLogger(f"slh.{mark}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    logger.warning("%s queue depth high", mark)
    logger.info("%s queue drained", mark)
    handler.close()
    events = server.search(f"{mark} service:pyapp", 2)
    assert {e["level"] for e in events} == {"WARN", "INFO"}
    assert all(not e["message"].endswith("\x00") for e in events)


@pytest.mark.parametrize("method", ["POST", "GET"])  # GET is the handler's default
def test_python_http_handler(server: Server, method: str) -> None:
    mark = _marker(f"httph{method.lower()}")
    host = server.url.removeprefix("http://")
    handler = logging.handlers.HTTPHandler(host, "/ingest", method=method)
    logger = logging.getLogger(f"httph.{mark}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    logger.error("%s upstream unreachable", mark)
    handler.close()
    event = server.search(f"{mark} level:ERROR", 1)[0]
    assert event["service"] == f"httph.{mark}"
    assert event["message"] == f"{mark} upstream unreachable"


def test_curl(server: Server, tmp_path: Path) -> None:
    mark = _marker("curl")
    out = subprocess.run(
        ["curl", "-sS", "-X", "POST", f"{server.url}/ingest", "-H", "content-type: application/json",
         "-d", f'{{"message": "{mark} hello from curl", "service": "curlsvc"}}'],
        capture_output=True, text=True, check=True, timeout=20,
    )  # fmt: skip
    assert '"accepted":1' in out.stdout
    gz = tmp_path / "batch.ndjson.gz"
    gz.write_bytes(
        gzip.compress(b"".join(b'{"message":"%s gz %d","level":"error"}\n' % (mark.encode(), i) for i in range(3)))
    )
    subprocess.run(
        ["curl", "-sS", "--fail", f"{server.url}/api/v1/logs?sync=true", "-H", "content-encoding: gzip",
         "-H", "content-type: application/x-ndjson", "--data-binary", f"@{gz}"],
        check=True, timeout=20, capture_output=True,
    )  # fmt: skip
    assert len(server.search(f"{mark} level:ERROR", 3, timeout_s=1)) == 3
    assert server.search(f"{mark} service:curlsvc", 1)[0]["message"] == f"{mark} hello from curl"
    # The simplest curl sends no content type (curl says form-encoded): the body is read for what it is.
    subprocess.run(["curl", "-sS", "--fail", f"{server.url}/ingest", "-d", f'{{"message": "{mark} plain curl"}}'],
                   check=True, timeout=20, capture_output=True)  # fmt: skip
    assert server.search(f'"{mark} plain curl"', 1)[0]["attributes"] == {}
    lines = tmp_path / "app.log"
    lines.write_text(f"2026-11-21 10:00:00 ERROR {mark} file line one\n2026-11-21 10:00:01 INFO {mark} file line two\n")
    subprocess.run(["curl", "-sS", "--fail", f"{server.url}/api/v1/logs", "--data-binary", f"@{lines}"],
                   check=True, timeout=20, capture_output=True)  # fmt: skip
    found = server.search(f"{mark} file", 2)
    assert sorted(e["level"] for e in found) == ["ERROR", "INFO"]


def _upload(server: Server, path: Path, **data: str) -> dict[str, object]:
    with path.open("rb") as f:
        r = httpx.post(f"{server.url}/api/v1/upload", files={"file": (path.name, f)}, data=data, timeout=60)
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = httpx.get(f"{server.url}/api/v1/jobs/{job_id}").json()
        if job["status"] != "running":
            return job  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError("the upload job did not finish")


def test_upload_loghub_file(server: Server, tmp_path: Path) -> None:
    path = SHARED_DATA / "loghub-2k" / "HDFS" / "HDFS_2k.log"
    if not path.exists():
        path = tmp_path / "HDFS_2k.log"
        path.write_text(
            "".join(
                f"081109 2036{i % 60:02d} 148 INFO dfs.DataNode$PacketResponder: PacketResponder {i} for block blk_{i} terminating\n"
                for i in range(2000)
            )
        )
    n = sum(1 for _ in path.open("rb"))
    job = _upload(server, path)
    assert job["status"] == "done", job
    assert job["lines_read"] == n and job["parsed"] == n and job["stored"] == n and job["rejected"] == 0
    events = server.search("service:HDFS_2k PacketResponder", 100, limit=5)
    assert events[0]["source"] == "upload:HDFS_2k.log"
    assert server.search("service:HDFS_2k", n, limit=1)


def test_upload_gzip_with_service(server: Server, tmp_path: Path) -> None:
    mark = _marker("up")
    path = tmp_path / "app.log.gz"
    path.write_bytes(gzip.compress(b"".join(b"ERROR %s job %d failed\n" % (mark.encode(), i) for i in range(30))))
    job = _upload(server, path, service="batchjobs")
    assert job["stored"] == 30
    assert len(server.search(f"{mark} service:batchjobs level:ERROR", 30)) == 30
    assert httpx.get(f"{server.url}/api/v1/jobs/nope").status_code == 404
