"""Per-line parsing cost: ``parse_line`` on raw text lines and ``record_fields`` on JSON records.

The inputs: the eight Loghub-2k files (headers of real systems), and a synthetic mix of the shapes
shippers send (JSON lines, logfmt, CRI, Docker json, Nginx access and error logs, Go glog,
"ts level [thread] logger: msg", bare continuation lines). Records: the common plain shape (ISO
time, epoch time) and ECS-style ones. Lines per CPU-second of this process, best of ``--repeat``.

    python benchmarks/parse.py                  # repeat 5
    python benchmarks/parse.py --data DIR       # the folder holding loghub-2k/
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from logloupe.parse.line import parse_line
from logloupe.parse.records import Limits, record_fields

NOW = 1_790_000_000_000_000


def find_loghub(explicit: str | None) -> Path | None:
    for c in [explicit or "", os.environ.get("LOGLOUPE_DATA", ""), "../shared/data", "/work/shared/data"]:
        if c and (Path(c) / "loghub-2k").is_dir():
            return Path(c) / "loghub-2k"
    return None


def mixed_lines(n: int) -> list[str]:
    shapes = [
        '{"time":"2026-01-02T03:04:05.123Z","level":"info","msg":"request {i} done","service":"api"}',
        'ts=2026-01-02T03:04:05Z level=warn msg="slow request {i}" path=/v1/x dur=12ms',
        "2026-01-02T03:04:05.123456789Z stdout F GET /healthz {i} 200",
        '{"log":"worker {i} started\\n","stream":"stderr","time":"2026-01-02T03:04:05.1Z"}',
        '10.0.0.{i} - - [10/Oct/2025:13:55:36 -0700] "GET /a/{i} HTTP/1.1" 200 512 "-" "curl/8"',
        "2026/01/02 03:04:05 [error] 1234#0: *{i} connect() failed (111: Connection refused)",
        "I1101 12:00:00.123456   12345 main.go:42] sync loop {i} done",
        "2026-01-02 03:04:05,123 INFO [main-{i}] com.example.Service: started in 12 ms",
        "\tat com.example.Service.handle(Service.java:{i})",
    ]
    return [shapes[i % len(shapes)].replace("{i}", str(i)) for i in range(n)]


def records(n: int) -> list[dict[str, Any]]:
    shapes: list[dict[str, Any]] = [
        {"timestamp": "2026-01-02T03:04:05.123Z", "level": "info", "service": "api", "message": "m {i}"},
        {"timestamp": 1767323045.5, "level": "warn", "service": "api", "host": "h", "message": "m {i}"},
        {"@timestamp": "2026-01-02T03:04:05Z", "log.level": "error", "service.name": "x", "message": "m {i}"},
        {"time": "Jun 14 15:16:01", "service": {"name": "checkout"}, "log": {"level": "warn"}, "msg": "m {i}"},
    ]
    out = []
    for i in range(n):
        r = dict(shapes[i % len(shapes)])
        r["message" if "message" in r else "msg"] = f"request {i}"
        out.append(r)
    return out


def rate(fn: Callable[[], int], repeat: int) -> float:
    best = 0.0
    for _ in range(repeat):
        t0 = time.process_time()
        n = fn()
        dt = time.process_time() - t0
        best = max(best, n / dt if dt > 0 else 0.0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", help="folder holding loghub-2k/ (default: ../shared/data)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--lines", type=int, default=50_000, help="synthetic lines and records")
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()}")
    loghub = find_loghub(args.data)
    if loghub is not None:
        lines: list[str] = []
        for p in sorted(loghub.glob("*/*_2k.log")):
            lines += p.read_text(encoding="utf-8", errors="replace").splitlines()

        def run_loghub() -> int:
            for line in lines:
                parse_line(line, now_us=NOW)
            return len(lines)

        print(f"parse_line, Loghub-2k ({len(lines)} lines): {rate(run_loghub, args.repeat):,.0f} lines/CPU-s")
    mixed = mixed_lines(args.lines)

    def run_mixed() -> int:
        for line in mixed:
            parse_line(line, now_us=NOW)
        return len(mixed)

    print(f"parse_line, mixed shapes ({len(mixed)} lines): {rate(run_mixed, args.repeat):,.0f} lines/CPU-s")
    recs = records(args.lines)
    limits = Limits()

    def run_records() -> int:
        for r in recs:
            record_fields(r, limits)
        return len(recs)

    print(f"record_fields ({len(recs)} records): {rate(run_records, args.repeat):,.0f} records/CPU-s")
    plain = [r for r in recs[::4]]

    def run_plain() -> int:
        for r in plain:
            record_fields(r, limits)
        return len(plain)

    print(f"record_fields, plain shape only ({len(plain)}): {rate(run_plain, args.repeat):,.0f} records/CPU-s")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
