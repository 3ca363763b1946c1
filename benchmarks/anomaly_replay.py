"""What the server's session and window tracker would flag on a live-like replay of HDFS and BGL.

    PYTHONPATH=src python benchmarks/anomaly_replay.py [--data ../shared/data] [--set KEY=VALUE ...]

``logloupe serve`` scores sessions and windows with ``SessionTracker`` (``analyse/anomaly/tracker.py``):
it trains on the first ``train_sessions`` closed sessions of a service, then scores every session
it closes (idle for ``idle_close_s``, 300 s) and refits from a sample of those it did not flag.
``benchmarks/anomaly.py`` measures ``logloupe detect`` on fixed splits; this replays the data
through the tracker itself, in time order, and counts what the server would report: a session or
window scoring at least the server's ``anomaly_threshold`` (0.7), one-event sessions left out (the
server skips them). Labels only score the result. ``--set`` overrides ``TrackerSettings`` fields
(``--set structure_share=0 --set unfinished=0 --set line_rarity=0 --set exclusive_events=0`` is the
tracker before it took ``detect``'s rules).

- **HDFS** (``anomaly/hdfs/sessions.csv``, one service, key = block id). The file holds every
  anomalous block and 1 % of the normal ones; the live stream is 2.93 % anomalous. The replay
  keeps a random fifth of the anomalous blocks (``--anomaly-share``) and repeats each normal block
  as often as puts the stream at 2.93 % (about 20 times), the copies at random places in the
  stream, the anomalous blocks in the file's order. A block starts every 100 ms; its events
  come 1 ms apart. The file has no timestamps, so when a block is torn down (its events from the
  first ``E23``/``E21``/``E30`` on: the namenode invalidates it, the datanodes delete it) is
  simulated, in two scenarios: ``whole`` (a second after it was written: the tracker sees whole
  blocks) and ``late teardown`` (after an exponential delay, mean 600 s: most blocks are closed
  by the tracker while they wait for deletion, as in the real log where files are deleted
  minutes to hours after they are written, and their teardown arrives as a second session of
  the same block). A block counts as flagged when any of its sessions is; blocks that started
  before the model existed are not scored. Then ``hdfs_100k``: real blocks in the log's order,
  no copies, its own anomaly rate, events 1 ms apart; the log is cut at line 100k, before
  nearly every deletion (23 lines), so its blocks are write phases and there is no teardown to
  simulate.
- **BGL** (``anomaly/bgl/lines.csv``, one service, no key): the lines in order through the
  tracker's fixed windows (``window_events`` 100, as the issue's protocol) with
  ``train_sessions`` set to half the windows (250: the server's 2,000 windows are more than the
  file holds), and windows of 20, 50 and 200 lines and sliding windows (100 lines, step 50) as a
  check that the rule does not depend on the size. A window is anomalous when a line in it is.
"""

from __future__ import annotations

import argparse
import csv
import heapq
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from pathlib import Path

from anomaly import HDFS_ANOMALY_RATE, hdfs_classes
from logloupe.analyse.anomaly.live import DEFAULT_THRESHOLD, SESSION_LIMIT_SCORE
from logloupe.analyse.anomaly.metrics import prf
from logloupe.analyse.anomaly.tracker import SessionTracker, TrackerSettings

TEARDOWN = frozenset({"E21", "E23", "E30"})
SERVICE = "svc"
TENANT = "t"
TICK_US = 10_000_000


@dataclass
class Result:
    name: str
    precision: float
    recall: float
    f1: float
    scored: int
    anomalous: int
    flagged: int
    seconds: float


def _pid(event: str) -> int:
    return int(event[1:]) if event[1:].isdigit() else abs(hash(event)) % 1_000_000


def _block_of(anomaly_event_ids: tuple[str, ...]) -> int:
    return int(anomaly_event_ids[0].split(":")[0])


def hdfs_stream(data: Path, anomaly_share: float, seed: int) -> tuple[list[tuple[str, ...]], list[int]]:
    """Blocks in stream order and their labels (normal copies at random places)."""
    normal, anomalous = hdfs_classes(data)
    rng = random.Random(seed)
    anomalous = [s for s in anomalous if rng.random() < anomaly_share]
    copies = round(len(anomalous) * (1 - HDFS_ANOMALY_RATE) / (HDFS_ANOMALY_RATE * len(normal)))
    normals = [s for s in normal for _ in range(copies)]
    rng.shuffle(normals)
    # A random merge: each place of the stream holds an anomalous block with the share it has.
    blocks: list[tuple[str, ...]] = []
    labels: list[int] = []
    a = n = 0
    while a < len(anomalous) or n < len(normals):
        left_a, left_n = len(anomalous) - a, len(normals) - n
        if rng.random() < left_a / (left_a + left_n):
            blocks.append(anomalous[a])
            labels.append(1)
            a += 1
        else:
            blocks.append(normals[n])
            labels.append(0)
            n += 1
    return blocks, labels


def hdfs_events(
    blocks: list[tuple[str, ...]], teardown_mean_s: float, seed: int
) -> Iterator[tuple[int, int, int, str]]:
    """(ts_us, block, position, event) in time order."""
    rng = random.Random(seed)
    heap: list[tuple[int, int, int, str]] = []
    for i, events in enumerate(blocks):
        start = i * 100_000
        cut = next((j for j, e in enumerate(events) if e in TEARDOWN), len(events))
        delay = int(rng.expovariate(1 / teardown_mean_s) * 1e6) if teardown_mean_s > 0 else 1_000_000
        for j, event in enumerate(events):
            ts = start + j * 1_000 if j < cut else start + cut * 1_000 + delay + (j - cut) * 1_000
            heapq.heappush(heap, (ts, i, j, event))
        # Emit what can no longer be overtaken (every later block starts later).
        while heap and heap[0][0] < start:
            yield heapq.heappop(heap)
    while heap:
        yield heapq.heappop(heap)


def replay_hdfs(
    name: str, blocks: list[tuple[str, ...]], labels: list[int], settings: TrackerSettings, teardown_mean_s: float
) -> Result:
    tracker = SessionTracker(settings)
    flagged: set[int] = set()
    first_scored = -1  # the first block started after the model existed
    next_tick = TICK_US
    last = 0
    started = time.perf_counter()

    def collect(found: list) -> None:  # type: ignore[type-arg]
        for a in found:
            if a.score >= settings.threshold and len(a.event_ids) > 1:
                flagged.add(_block_of(a.event_ids))

    for ts, block, pos, event in hdfs_events(blocks, teardown_mean_s, seed=1):
        while ts >= next_tick:
            collect(tracker.tick(next_tick))
            next_tick += TICK_US
        collect(tracker.add(TENANT, SERVICE, str(block), ts, _pid(event), f"{block}:{pos}"))
        if first_scored < 0 and any(m.model is not None for m in tracker._models.values()):
            first_scored = block + 1
        last = ts
    collect(tracker.tick(last + 10 * settings.idle_close_s * 1_000_000))
    seconds = time.perf_counter() - started
    if first_scored < 0:
        first_scored = len(blocks)
    y = labels[first_scored:]
    pred = [int(i in flagged) for i in range(first_scored, len(blocks))]
    precision, recall, f1, *_ = prf(y, pred)
    return Result(name, precision, recall, f1, len(y), sum(y), sum(pred), seconds)


def replay_bgl(name: str, data: Path, settings: TrackerSettings) -> Result:
    with (data / "anomaly/bgl/lines.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    tracker = SessionTracker(settings)
    bad = [r["Label"] != "-" for r in rows]
    flagged: set[int] = set()
    scored: list[int] = []  # last line of each window scored by a model
    step = settings.window_step or settings.window_events
    started = time.perf_counter()
    for i, r in enumerate(rows):
        had_model = any(m.model is not None for m in tracker._models.values())
        found = tracker.add_to_window(TENANT, SERVICE, i * 1_000, _pid(r["EventId"]), str(i))
        if (i + 1) >= settings.window_events and (i + 1 - settings.window_events) % step == 0 and had_model:
            scored.append(i)
        for a in found:
            if a.score >= settings.threshold:
                flagged.add(i)
    seconds = time.perf_counter() - started
    w = settings.window_events
    y = [int(any(bad[end - w + 1 : end + 1])) for end in scored]
    pred = [int(end in flagged) for end in scored]
    precision, recall, f1, *_ = prf(y, pred)
    return Result(name, precision, recall, f1, len(y), sum(y), sum(pred), seconds)


def parse_sets(values: list[str]) -> dict[str, object]:
    known = {f.name: f.type for f in fields(TrackerSettings)}
    out: dict[str, object] = {}
    for item in values:
        key, _, value = item.partition("=")
        if key not in known:
            sys.exit(f"unknown TrackerSettings field {key!r}")
        kind = known[key]
        out[key] = (value not in ("0", "false", "False")) if kind in (bool, "bool") else float(value)
        if kind in (int, "int"):
            out[key] = int(float(value))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / "../shared/data")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="A TrackerSettings field.")
    ap.add_argument("--anomaly-share", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", choices=("hdfs", "hdfs_100k", "bgl"), help="Only one data set.")
    args = ap.parse_args()
    base = replace(
        TrackerSettings(threshold=DEFAULT_THRESHOLD, limit_score=SESSION_LIMIT_SCORE), **parse_sets(args.set)
    )  # type: ignore[arg-type]
    print(
        "tracker:",
        {
            k: getattr(base, k)
            for k in (
                "threshold",
                "limit_score",
                "robust_core",
                "structure_share",
                "unfinished",
                "line_rarity",
                "exclusive_events",
            )
        },
    )
    results: list[Result] = []
    if args.only in (None, "hdfs"):
        blocks, labels = hdfs_stream(args.data, args.anomaly_share, args.seed)
        print(f"HDFS stream: {len(blocks):,} blocks, {sum(labels):,} anomalous, {sum(map(len, blocks)):,} events")
        for scenario, mean_s in (("whole", 0.0), ("late teardown", 600.0)):
            results.append(replay_hdfs(f"HDFS {scenario}", blocks, labels, base, mean_s))
            print(_row(results[-1]), flush=True)
    if args.only in (None, "hdfs", "hdfs_100k"):
        # The development set: real blocks (no copies) in the order of the log, its real anomaly rate.
        with (args.data / "anomaly/hdfs_100k/sessions.csv").open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        blocks = [tuple(r["EventSequence"].split()) for r in rows]
        labels = [int(r["Label"]) for r in rows]
        results.append(replay_hdfs("hdfs_100k", blocks, labels, base, 0.0))
        print(_row(results[-1]), flush=True)
    if args.only in (None, "bgl"):
        for size, step in ((100, 0), (20, 0), (50, 0), (200, 0), (100, 50)):
            n_windows = 50_000 // (step or size)
            settings = replace(base, window_events=size, window_step=step, train_sessions=n_windows // 2)
            label = f"BGL {size}" + (f" step {step}" if step else "")
            results.append(replay_bgl(label, args.data, settings))
            print(_row(results[-1]), flush=True)


def _row(r: Result) -> str:
    return (
        f"{r.name:<20} P {r.precision:.3f}  R {r.recall:.3f}  F1 {r.f1:.3f}  "
        f"(scored {r.scored:,}, anomalous {r.anomalous:,}, flagged {r.flagged:,}; {r.seconds:.1f} s)"
    )


if __name__ == "__main__":
    main()
