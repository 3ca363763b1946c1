"""``logloupe tail`` against a real ``logloupe serve``: what is stored equals what was written.

The tailer runs as a subprocess so it can be stopped, restarted and killed -9 mid-file. Each test
stamps its own service name and reads back everything with that service through /api/v1/search.
The large-file size is ``LOGLOUPE_TEST_TAIL_MB`` (50 MB in CI; the 1 GB run is in docs/sources.md).
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import orjson

from logloupe.ingest.checkpoints import FileCheckpoints
from logloupe.ingest.sinks import HttpSink
from logloupe.ingest.tail import FileTailer, TailConfig, TailInput
from tests.sources.conftest import LOGLOUPE, Server, Tailer, assert_exact, digest, env

JAVA_TRACE = [
    "ERROR request failed",
    "java.lang.IllegalStateException: boom",
    "\tat com.example.Foo.bar(Foo.java:10)",
    "\tat com.example.Main.main(Main.java:3)",
    "Caused by: java.io.IOException: disk",
    "\t... 2 more",
]
PY_TRACE = [
    "ERROR job crashed",
    "Traceback (most recent call last):",
    '  File "job.py", line 3, in <module>',
    "    run()",
    "ValueError: bad input",
]


class Writer:
    """Appends lines and remembers what a reader must end up with."""

    def __init__(self) -> None:
        self.expected: list[str] = []

    def lines(self, path: Path, lines: list[str], *, expect: bool = True) -> None:
        with path.open("a") as fh:
            fh.write("".join(line + "\n" for line in lines))
        if expect:
            self.expected.extend(lines)


def tailer(tmp_path: Path, server: Server, service: str, *paths: str, extra: tuple[str, ...] = ()) -> Tailer:
    args = [*paths, "--server", server.url, "--service", service, "--start-at", "beginning", *extra]
    return Tailer(args, tmp_path / "checkpoints.json", tmp_path / f"tail-{service}.log")


def in_process(tmp_path: Path, server: Server, service: str, *paths: str, **options: object) -> FileTailer:
    """The same tailer driven step by step in this process: deterministic, no sleeps."""
    settings: dict[str, object] = {
        "start_at": "beginning",
        "scan_s": 0,
        "idle_s": 0,
        "multiline_flush_s": 0,
        "close_removed_s": 0,
        "compressed_settle_s": 0,
        **options,
    }
    config = TailConfig([TailInput(list(paths), service=service, labels={"env": "test"})], **settings)  # type: ignore[arg-type]
    return FileTailer(config, HttpSink(server.url), FileCheckpoints(tmp_path / "cp.json"), source_id=service)


def drain(t: FileTailer) -> None:
    """Step until nothing more is delivered (every acknowledged batch is already searchable)."""
    quiet = 0
    while quiet < 3:
        quiet = 0 if t.step() else quiet + 1


def settle(server: Server, service: str, w: Writer, timeout_s: float = 60) -> None:
    n = len(w.expected)
    got = server.wait_total(f"service:{service}", n, timeout_s)
    assert got == n, f"stored {got}, written {n}"


def test_tail_rotation_truncation_restart_delete_symlink_multiline(shared_server: Server, tmp_path: Path) -> None:
    server, svc, w = shared_server, "scenario", Writer()
    logs = tmp_path / "logs"
    logs.mkdir()
    paths = (str(logs / "*.log"), str(logs / "*.log.1"))
    w.lines(logs / "a.log", [f"a-before-start {i}" for i in range(100)])
    t = in_process(tmp_path, server, svc, *paths)
    drain(t)
    w.lines(logs / "a.log", [f"a-appended {i}" for i in range(100)])
    drain(t)

    # Rotation by rename; the application keeps writing to the renamed file for a moment.
    os.rename(logs / "a.log", logs / "a.log.1")
    w.lines(logs / "a.log.1", [f"a-late-write {i}" for i in range(50)])
    w.lines(logs / "a.log", [f"a-new-file {i}" for i in range(50)])
    drain(t)

    # Copytruncate: lines sneak in after our last read, the copy, the truncate, new lines.
    w.lines(logs / "b.log", [f"b-first {i}" for i in range(100)])
    drain(t)
    w.lines(logs / "b.log", [f"b-before-copy {i}" for i in range(20)])
    shutil.copyfile(logs / "b.log", logs / "b.log.1")
    t.step()  # sees the copy before the truncate: it must not read it twice
    with (logs / "b.log").open("r+") as fh:
        fh.truncate(0)
    w.lines(logs / "b.log", [f"b-after-truncate {i}" for i in range(30)])
    drain(t)

    # Plain truncation (no copy), then new content.
    with (logs / "b.log").open("r+") as fh:
        fh.truncate(0)
    drain(t)
    w.lines(logs / "b.log", [f"b-after-second-truncate {i}" for i in range(10)])
    drain(t)

    # Stop the tailer, write while it is down, start a new one on the same checkpoint.
    t.close()
    w.lines(logs / "a.log", [f"a-while-down {i}" for i in range(200)])
    w.lines(logs / "c.log", [f"c-created-while-down {i}" for i in range(20)])
    t = in_process(tmp_path, server, svc, *paths)
    drain(t)

    # Restart mid-file: a few batches in, stop, start again.
    w.lines(logs / "d.log", [f"d-mid-file {i} " + "x" * 100 for i in range(12000)])
    t.close()
    t2 = in_process(tmp_path, server, svc, *paths, batch_lines=1000)
    for _ in range(4):
        t2.step()
    t2.close()
    t = in_process(tmp_path, server, svc, *paths)
    drain(t)

    # Delete a file we hold open with unread lines: finished through the descriptor.
    w.lines(logs / "e.log", [f"e-first {i}" for i in range(10)])
    drain(t)
    w.lines(logs / "e.log", [f"e-then-deleted {i}" for i in range(2000)])
    os.remove(logs / "e.log")
    drain(t)
    # ... and recreated under the same name (the inode may well be reused).
    w.lines(logs / "e.log", [f"e-recreated {i}" for i in range(30)])
    drain(t)

    # A symlink to a file outside the glob's directory.
    (tmp_path / "real").mkdir()
    w.lines(tmp_path / "real" / "target.txt", [f"via-symlink {i}" for i in range(15)])
    os.symlink(tmp_path / "real" / "target.txt", logs / "link.log")
    drain(t)
    w.lines(tmp_path / "real" / "target.txt", [f"via-symlink-later {i}" for i in range(15)])
    drain(t)

    # Stack traces become one event each.
    w.lines(logs / "f.log", [*JAVA_TRACE, "INFO next", *PY_TRACE, "INFO after"], expect=False)
    w.expected.extend(["\n".join(JAVA_TRACE), "INFO next", "\n".join(PY_TRACE), "INFO after"])
    drain(t)
    t.close()
    assert_exact(server.messages(f"service:{svc}"), w.expected)
    events = httpx.get(
        f"{server.url}/api/v1/search", params={"q": f'service:{svc} "ValueError: bad input"', "limit": 5}
    ).json()["events"]
    assert len(events) == 1 and events[0]["attributes"]["env"] == "test"
    assert events[0]["attributes"]["multiline.lines"] == "5"


def test_tail_kill9_mid_file_and_huge_lines(shared_server: Server, tmp_path: Path) -> None:
    """A large file (LOGLOUPE_TEST_TAIL_MB, 50 by default), the tailer killed -9 twice mid-file."""
    server, svc = shared_server, "killed"
    logs = tmp_path / "logs"
    logs.mkdir()
    size_mb = float(os.environ.get("LOGLOUPE_TEST_TAIL_MB", "50"))
    line_len = 1000
    n = int(size_mb * 1024 * 1024 / (line_len + 1))
    expected: list[bytes] = []
    with (logs / "big.log").open("w") as fh:
        for i in range(n):
            head = f"big {i} "
            line = head + "z" * (line_len - len(head))
            fh.write(line + "\n")
            expected.append(digest(line))
    huge = "H" * (3 * 1024 * 1024)
    Writer().lines(logs / "huge.log", ["before huge", huge, "after huge"])
    expected += [digest("before huge"), digest(huge[:2000]), digest("after huge")]
    t = tailer(tmp_path, server, svc, str(logs / "*.log"), extra=("--max-line-bytes", "2000"))
    t.start()
    try:
        for fraction in (0.2, 0.5):
            got = server.wait_total(f"service:{svc}", int(n * fraction), timeout_s=3600)
            assert got >= int(n * fraction)
            t.kill9()
            t.start()
        got = server.wait_total(f"service:{svc}", len(expected), timeout_s=3600)
        assert got == len(expected), f"stored {got}, written {len(expected)}"
    finally:
        t.stop()
    time.sleep(1.0)
    assert_exact(server.digests(f"service:{svc}"), expected)
    cut = httpx.get(f"{server.url}/api/v1/search", params={"q": f"service:{svc} attr.truncated:true"}).json()
    assert cut["total"] == 1 and cut["events"][0]["message"] == "H" * 2000


def test_tail_waits_for_a_server_that_is_down(server: Server, tmp_path: Path) -> None:
    svc, w = "downtime", Writer()
    logs = tmp_path / "logs"
    logs.mkdir()
    t = tailer(tmp_path, server, svc, str(logs / "*.log"))
    t.start()
    try:
        w.lines(logs / "app.log", [f"up {i}" for i in range(50)])
        settle(server, svc, w)
        server.stop()
        w.lines(logs / "app.log", [f"while server down {i}" for i in range(500)])
        time.sleep(3)  # the tailer is now retrying with backoff
        t.kill9()  # and a crash while it waits changes nothing
        t.start()
        time.sleep(1)
        server.start()
        settle(server, svc, w, timeout_s=120)
    finally:
        t.stop()
    time.sleep(1.0)
    assert_exact(server.messages(f"service:{svc}"), w.expected)


def test_tail_reads_compressed_rotations_once_and_starts_at_end(shared_server: Server, tmp_path: Path) -> None:
    server, svc, w = shared_server, "gzipped", Writer()
    logs = tmp_path / "logs"
    logs.mkdir()
    w.lines(logs / "old.log", [f"old-before-first-start {i}" for i in range(40)], expect=False)
    with gzip.open(logs / "ancient.log.1.gz", "wt") as fh:
        fh.write("".join(f"ancient {i}\n" for i in range(10)))
    paths = (str(logs / "*.log"), str(logs / "*.log.1"), str(logs / "*.gz"))
    options = {"start_at": "end", "read_compressed": True}
    t = in_process(tmp_path, server, svc, *paths, **options)
    drain(t)  # what was there at the very first start is skipped
    w.lines(logs / "old.log", [f"old-after-start {i}" for i in range(20)])
    drain(t)
    # Rename rotation, then compress the rotated file: nothing is read twice.
    os.rename(logs / "old.log", logs / "old.log.1")
    w.lines(logs / "old.log.1", [f"old-late {i}" for i in range(5)])
    drain(t)
    with (logs / "old.log.1").open("rb") as src, gzip.open(logs / "old.log.1.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.remove(logs / "old.log.1")
    # A compressed file never seen as plain text is read whole, once.
    with gzip.open(logs / "other.log.2.gz", "wt") as fh:
        fh.write("".join(f"other {i}\n" for i in range(25)))
    w.expected.extend(f"other {i}" for i in range(25))
    drain(t)
    t.close()
    t = in_process(tmp_path, server, svc, *paths, **options)
    drain(t)
    t.close()
    assert_exact(server.messages(f"service:{svc}"), w.expected)


def test_tail_without_a_server_writes_the_store_directly(tmp_path: Path) -> None:
    logs, data = tmp_path / "logs", tmp_path / "data"
    logs.mkdir()
    w = Writer()
    w.lines(logs / "app.log", [f"offline {i}" for i in range(40)])
    args = [str(logs / "*.log"), "--data-dir", str(data), "--start-at", "beginning", "--service", "offline"]
    t = Tailer(args, tmp_path / "cp.json", tmp_path / "tail.log")
    t.start()
    done = f'"offset":{(logs / "app.log").stat().st_size},'.encode()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (tmp_path / "cp.json").exists() and done in (tmp_path / "cp.json").read_bytes():
            break  # every line acknowledged (the last one once the multiline joiner let it go)
        time.sleep(0.2)
    t.stop()  # SIGTERM: a clean stop, the store closed
    assert b"stopped after 40 events" in (tmp_path / "tail.log").read_bytes()
    out = subprocess.run(
        [*LOGLOUPE, "search", "service:offline", "--json", "--limit", "100", "--data-dir", str(data)],
        capture_output=True,
        env=env(),
        check=True,
    )
    assert_exact([e["message"] for e in orjson.loads(out.stdout)["events"]], w.expected)


def test_a_remote_tail_reports_its_lag_and_position_to_the_server(shared_server: Server, tmp_path: Path) -> None:
    server, svc, w = shared_server, "reported", Writer()
    logs = tmp_path / "logs"
    logs.mkdir()
    w.lines(logs / "app.log", [f"reported line {i}" for i in range(30)])
    t = tailer(tmp_path, server, svc, str(logs / "*.log"), extra=("--name", "edge-1", "--report-interval", "0.2"))
    t.start()
    try:
        settle(server, svc, w)
        deadline = time.monotonic() + 30
        found: dict[str, object] = {}
        while time.monotonic() < deadline:
            found = next(
                (s for s in httpx.get(f"{server.url}/api/v1/sources").json()["sources"] if s["id"] == "edge-1"), {}
            )
            if found.get("events_total") == 30:
                break
            time.sleep(0.2)
        assert found["remote"] is True and found["status"] == "running" and found["kind"] == "tail"
        assert found["lag"] == {"bytes": 0} and found["position"]["bytes"] == sum(len(x) + 1 for x in w.expected)
        metrics = httpx.get(f"{server.url}/metrics").text
        assert 'logloupe_source_lag_bytes{source="edge-1"} 0.0' in metrics
        assert f'logloupe_source_position{{source="edge-1"}} {float(found["position"]["bytes"])}' in metrics  # type: ignore[index]
    finally:
        t.stop()
    final = next(s for s in httpx.get(f"{server.url}/api/v1/sources").json()["sources"] if s["id"] == "edge-1")
    assert final["status"] == "stopped"
    bad = httpx.put(f"{server.url}/api/v1/sources/edge-1/status", json={"lag": "lots"})
    assert bad.status_code == 400, bad.text


def test_each_input_carries_its_own_service_host_and_labels(shared_server: Server, tmp_path: Path) -> None:
    server = shared_server
    web, jobs = tmp_path / "web", tmp_path / "jobs"
    web.mkdir()
    jobs.mkdir()
    (web / "a.log").write_text("".join(f"per-input web line {i}\n" for i in range(5)))
    (jobs / "b.log").write_text("".join(f"per-input job line {i}\n" for i in range(3)))
    inputs = tmp_path / "inputs.toml"
    inputs.write_text(
        f'[[inputs]]\npaths = ["{web}/*.log"]\nservice = "per-web"\nhost = "web-1"\nlabels = {{ tier = "front" }}\n'
        f'[[inputs]]\npaths = ["{jobs}/*.log"]\nservice = "per-jobs"\n'
    )
    t = Tailer(["--inputs", str(inputs), "--server", server.url, "--start-at", "beginning"],
               tmp_path / "cp.json", tmp_path / "tail.log")  # fmt: skip
    t.start()
    try:
        assert server.wait_total("service:per-web", 5, 30) == 5
        assert server.wait_total("service:per-jobs", 3, 30) == 3
        assert server.wait_total("service:per-web host:web-1 attr.tier:front", 5, 10) == 5
        assert server.wait_total("service:per-jobs attr.tier:front", 0, 1) == 0
    finally:
        t.stop()
    bad = tmp_path / "bad.toml"
    bad.write_text('[[inputs]]\npath = "/var/log/*.log"\n')
    run = subprocess.run([*LOGLOUPE, "tail", "--inputs", str(bad), "--server", server.url],
                         capture_output=True, text=True, env=env(), timeout=60)  # fmt: skip
    assert run.returncode == 2 and "unknown input options ['path']" in run.stderr, run.stderr
