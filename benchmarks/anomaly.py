"""Anomaly detection benchmark: LogLoupe against PCA, IsolationForest and Invariants Mining.

    PYTHONPATH=src python benchmarks/anomaly.py [--data ../shared/data] [--json out.json]
        [--only LogLoupe] [--set structure_trim=0.02] [--no-online] [--splits]

Data sets and protocol (see ../shared/data/README.md):

- HDFS ``anomaly/hdfs/sessions.csv``: split chronologically within each class, first half of each
  class trains, second half tests. The file holds every anomalous block but only 1 % of the
  normal ones, so in the test half each normal session stands for the normal blocks that were
  left out: it weighs ``w = n_anom * (1 - 0.0293) / (0.0293 * n_norm)`` (≈ 100), which puts the
  test half back at the real 2.93 % anomaly rate. Precision, recall, F1 and AUROC are computed
  with these weights (recall is unaffected: anomalies weigh 1).
- BGL ``anomaly/bgl/lines.csv``: fixed windows of 100 lines, anomalous if any line's Label is not
  ``-``; first half of the windows trains, second half tests; no weights.

Training regimes (labels are never given to a detector; they only choose what it is fed):

- ``unlabelled``: the training half as it is. For HDFS that is 75 % anomalous sessions, because
  of the 1 % sampling of normal blocks; for BGL it is 33 % anomalous windows.
- ``population`` (HDFS only): the training half with each normal session repeated ``round(w)``
  times, i.e. what a detector would see on the real stream (2.93 % anomalies, unlabelled).
- ``normal-only``: only the normal sessions of the training half (the semi-supervised protocol
  of much of the literature, e.g. Invariants Mining "fitted on normal windows").

Other splits (``--splits``): the protocol's split is one draw; the defaults must hold on others
(the evaluation uses splits not in ``shared/``). With ``--splits`` the same regimes are run on
splits built from the same files, LogLoupe only unless ``--only`` names more methods:

- HDFS, within each class (so every split keeps the file's 1 % sampling of normal blocks and a
  training part about 75 % anomalous): ``reversed`` (second half trains, first half tests),
  ``odd/even`` (sessions at even positions train, odd ones test), ``thirds`` (first third
  trains, second third tests), ``random-S`` (a random half trains, seeds 1 to 3);
- BGL windows: ``reversed``, ``odd/even``, ``thirds`` (first third trains, second third tests) and
  ``random-S`` (a random half of the windows trains, seeds 1 to 3; the rest, in order, tests);
- ``hdfs_100k`` (the development set): first half of the sessions, in order, trains; no weights
  (its anomaly rate is the real one); unlabelled and normal-only regimes.

Throughput: events per second through the session scorer (fit excluded) and through the online
detector (``OnlineDetector.observe``, and ``observe_many`` in batches of 1,000 as the ingest pipeline
calls it, on a synthetic multi-service stream).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from anomaly_baselines import (
    InvariantsMiningDetector,
    IsolationForestDetector,
    PCADetector,
    count_matrix,
)
from logloupe.analyse.anomaly.metrics import Metrics, evaluate, population_weights
from logloupe.analyse.anomaly.online import OnlineDetector
from logloupe.analyse.anomaly.sessions import (
    DETECT_EXCLUSIVE_EVENTS,
    DETECT_LINE_RARITY,
    DETECT_ROBUST_CORE,
    DETECT_STRUCTURE_SHARE,
    DETECT_UNFINISHED,
    SessionModel,
)

HDFS_ANOMALY_RATE = 0.0293
BGL_WINDOW = 100

Session = tuple[str, ...]


@dataclass
class Split:
    name: str
    train: list[Session]
    train_labels: list[int]
    test: list[Session]
    test_labels: list[int]
    test_weights: list[float] | None


def load_hdfs(data: Path) -> Split:
    with (data / "anomaly/hdfs/sessions.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    train: list[Session] = []
    train_labels: list[int] = []
    test: list[Session] = []
    test_labels: list[int] = []
    for label in (0, 1):
        group = [tuple(r["EventSequence"].split()) for r in rows if int(r["Label"]) == label]
        half = len(group) // 2
        train += group[:half]
        train_labels += [label] * half
        test += group[half:]
        test_labels += [label] * (len(group) - half)
    weights = population_weights(test_labels, HDFS_ANOMALY_RATE)
    return Split("HDFS", train, train_labels, test, test_labels, weights)


def hdfs_classes(data: Path) -> tuple[list[Session], list[Session]]:
    """The HDFS sessions of each class (normal, anomalous), in the file's order."""
    with (data / "anomaly/hdfs/sessions.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    normal = [tuple(r["EventSequence"].split()) for r in rows if int(r["Label"]) == 0]
    anomalous = [tuple(r["EventSequence"].split()) for r in rows if int(r["Label"]) == 1]
    return normal, anomalous


def split_within_classes(
    name: str, classes: tuple[list[Session], list[Session]], pick: Callable[[int, int], tuple[list[int], list[int]]]
) -> Split:
    """Training and test sessions chosen per class by ``pick(n, label)`` (their positions)."""
    train: list[Session] = []
    train_labels: list[int] = []
    test: list[Session] = []
    test_labels: list[int] = []
    for label, group in enumerate(classes):
        train_at, test_at = pick(len(group), label)
        train += [group[i] for i in train_at]
        train_labels += [label] * len(train_at)
        test += [group[i] for i in test_at]
        test_labels += [label] * len(test_at)
    return Split(name, train, train_labels, test, test_labels, population_weights(test_labels, HDFS_ANOMALY_RATE))


def _random_halves(seed: int) -> Callable[[int, int], tuple[list[int], list[int]]]:
    def pick(n: int, label: int) -> tuple[list[int], list[int]]:
        order = list(range(n))
        random.Random(seed * 10 + label).shuffle(order)
        return order[: n // 2], order[n // 2 :]

    return pick


def other_splits(data: Path) -> list[Split]:
    """The ``--splits`` set: other ways to cut the same files (see the module docstring)."""
    classes = hdfs_classes(data)
    hdfs_picks: list[tuple[str, Callable[[int, int], tuple[list[int], list[int]]]]] = [
        ("reversed", lambda n, _: (list(range(n // 2, n)), list(range(n // 2)))),
        ("odd/even", lambda n, _: (list(range(0, n, 2)), list(range(1, n, 2)))),
        ("thirds", lambda n, _: (list(range(n // 3)), list(range(n // 3, 2 * n // 3)))),
        *((f"random-{seed}", _random_halves(seed)) for seed in (1, 2, 3)),
    ]
    out = [split_within_classes(f"HDFS {name}", classes, pick) for name, pick in hdfs_picks]
    bgl = load_bgl(data)
    sessions, labels = bgl.train + bgl.test, bgl.train_labels + bgl.test_labels
    half = len(sessions) // 2
    out.append(Split("BGL reversed", sessions[half:], labels[half:], sessions[:half], labels[:half], None))
    out.append(Split("BGL odd/even", sessions[0::2], labels[0::2], sessions[1::2], labels[1::2], None))
    third = len(sessions) // 3
    out.append(
        Split(
            "BGL thirds", sessions[:third], labels[:third], sessions[third : 2 * third], labels[third : 2 * third], None
        )
    )
    for seed in (1, 2, 3):
        order = list(range(len(sessions)))
        random.Random(seed).shuffle(order)
        train_at, test_at = sorted(order[:half]), sorted(order[half:])
        out.append(
            Split(
                f"BGL random-{seed}",
                [sessions[i] for i in train_at],
                [labels[i] for i in train_at],
                [sessions[i] for i in test_at],
                [labels[i] for i in test_at],
                None,
            )
        )
    with (data / "anomaly/hdfs_100k/sessions.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    dev = [tuple(r["EventSequence"].split()) for r in rows]
    dev_labels = [int(r["Label"]) for r in rows]
    half = len(dev) // 2
    out.append(Split("hdfs_100k", dev[:half], dev_labels[:half], dev[half:], dev_labels[half:], None))
    return out


def load_bgl(data: Path) -> Split:
    with (data / "anomaly/bgl/lines.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    windows = [rows[i : i + BGL_WINDOW] for i in range(0, len(rows), BGL_WINDOW)]
    sessions = [tuple(r["EventId"] for r in w) for w in windows]
    labels = [int(any(r["Label"] != "-" for r in w)) for w in windows]
    half = len(windows) // 2
    return Split("BGL", sessions[:half], labels[:half], sessions[half:], labels[half:], None)


def regimes(split: Split) -> list[tuple[str, list[Session]]]:
    normal = [s for s, y in zip(split.train, split.train_labels, strict=True) if not y]
    out = [("unlabelled", list(split.train))]
    if split.name.startswith("HDFS"):
        n_anom = sum(split.train_labels)
        w = n_anom * (1 - HDFS_ANOMALY_RATE) / (HDFS_ANOMALY_RATE * len(normal))
        copies = round(w)
        population = [
            s for s, y in zip(split.train, split.train_labels, strict=True) for _ in range(1 if y else copies)
        ]
        out.append(("population", population))
    out.append(("normal-only", normal))
    return out


Detector = Callable[[list[Session], list[Session]], tuple[Sequence[float], Sequence[int], float]]


# SessionModel keyword arguments: ``logloupe detect``'s defaults, then --set (the sensitivity
# table in docs/anomaly.md).
LOGLOUPE_OPTIONS: dict[str, float] = {
    "robust_core": DETECT_ROBUST_CORE,
    "unfinished": DETECT_UNFINISHED,
    "structure_share": DETECT_STRUCTURE_SHARE,
    "line_rarity": DETECT_LINE_RARITY,
    "exclusive_events": DETECT_EXCLUSIVE_EVENTS,
}


def run_logloupe(train: list[Session], test: list[Session]) -> tuple[Sequence[float], Sequence[int], float]:
    model = SessionModel(**LOGLOUPE_OPTIONS).fit(train)
    start = time.perf_counter()
    scores = model.score_many(test)
    elapsed = time.perf_counter() - start
    return [s.score for s in scores], [int(s.anomaly) for s in scores], elapsed


def _baseline(factory: Callable[[], object]) -> Detector:
    def run(train: list[Session], test: list[Session]) -> tuple[Sequence[float], Sequence[int], float]:
        x_train, vocab = count_matrix(train)
        detector = factory()
        detector.fit(x_train)  # type: ignore[attr-defined]
        start = time.perf_counter()
        x_test, _ = count_matrix(test, vocab)
        scores, predicted = detector.score(x_test)  # type: ignore[attr-defined]
        elapsed = time.perf_counter() - start
        return list(scores), list(predicted), elapsed

    return run


DETECTORS: dict[str, Detector] = {
    "LogLoupe": run_logloupe,
    "PCA (Xu 2009)": _baseline(PCADetector),
    "IsolationForest": _baseline(IsolationForestDetector),
    "Invariants Mining": _baseline(InvariantsMiningDetector),
}


def novelty_ceiling(train: list[Session], split: Split) -> tuple[Metrics, int]:
    """What a detector that flags every test session whose *set* of events no training session
    has can reach at best: perfect otherwise, it still flags the normal sessions with such a set.
    Flagging an unseen combination is what novelty detection is for, so this is the ceiling the
    training data leaves it; returns the metrics and how many normal test sessions are hit."""
    seen = {frozenset(s) for s in train}
    novel = [frozenset(s) not in seen for s in split.test]
    predicted = [int(y or n) for y, n in zip(split.test_labels, novel, strict=True)]
    hit = sum(1 for y, n in zip(split.test_labels, novel, strict=True) if n and not y)
    return evaluate(split.test_labels, [float(p) for p in predicted], predicted, split.test_weights), hit


def online_throughput(n_events: int = 200_000, seed: int = 7, batch: int = 0) -> float:
    """Events/s through ``OnlineDetector.observe`` (and its periodic ``tick``) on a synthetic
    stream: 20 services, 200 patterns, mixed levels, one event every 5 ms of stream time. With
    ``batch``, through ``observe_many`` in batches of that size (the ingest pipeline's form)."""
    rng = random.Random(seed)
    detector = OnlineDetector()
    services = [f"svc-{i}" for i in range(20)]
    levels = [3] * 90 + [4] * 7 + [5] * 3
    ts0 = 1_700_000_000_000_000
    rows = [
        ("t", rng.choice(services), ts0 + 5_000 * (i + 1), rng.choice(levels), rng.randrange(1, 200), "")
        for i in range(n_events)
    ]
    start = time.perf_counter()
    if batch:
        for first in range(0, n_events, batch):
            detector.observe_many(rows[first : first + batch], lambda i, first=first: f"e{first + i}")
            detector.tick(rows[min(first + batch, n_events) - 1][2])
    else:
        for i, (tenant, service, ts, level, pattern, _) in enumerate(rows):
            detector.observe(tenant, service, ts, level, pattern, f"e{i}")
            if i % 1000 == 0:
                detector.tick(ts)
    return n_events / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / "../shared/data")
    parser.add_argument("--json", type=Path, help="Also write the results as JSON here.")
    parser.add_argument(
        "--only", action="append", choices=sorted(DETECTORS), help="Run only these methods (repeatable)."
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="A SessionModel option for LogLoupe, e.g. structure_trim=0.02 (repeatable).",
    )
    parser.add_argument("--no-online", action="store_true", help="Skip the online throughput run.")
    parser.add_argument(
        "--splits",
        action="store_true",
        help="Also run other splits of the same files (reversed, odd/even, thirds, random halves, hdfs_100k); "
        "LogLoupe only unless --only names more.",
    )
    args = parser.parse_args()
    for item in args.set:
        key, _, value = item.partition("=")
        LOGLOUPE_OPTIONS[key] = float(value)
    detectors = {k: v for k, v in DETECTORS.items() if not args.only or k in args.only}
    results: list[dict[str, object]] = []
    print("| data | training regime | method | precision | recall | F1 | AUROC | scoring events/s |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    splits = [(load_hdfs(args.data), detectors), (load_bgl(args.data), detectors)]
    if args.splits:
        extra = detectors if args.only else {"LogLoupe": DETECTORS["LogLoupe"]}
        splits += [(split, extra) for split in other_splits(args.data)]
    for split, methods in splits:
        n_test_events = sum(len(s) for s in split.test)
        for regime, train in regimes(split):
            for method, run in methods.items():
                scores, predicted, elapsed = run(train, split.test)
                m: Metrics = evaluate(split.test_labels, scores, predicted, split.test_weights)
                rate = n_test_events / elapsed if elapsed > 0 else float("inf")
                print(
                    f"| {split.name} | {regime} | {method} | {m.precision:.3f} | {m.recall:.3f} "
                    f"| {m.f1:.3f} | {m.auroc:.3f} | {rate:,.0f} |",
                    flush=True,
                )
                results.append(
                    {
                        "data": split.name,
                        "regime": regime,
                        "method": method,
                        "train_sessions": len(train),
                        "test_sessions": len(split.test),
                        **m.as_dict(),
                        "scoring_events_per_s": rate,
                    }
                )
            ceiling, hit = novelty_ceiling(train, split)
            print(
                f"| {split.name} | {regime} | *ceiling: flags only anomalies and unseen event sets "
                f"({hit} normal test sessions)* | {ceiling.precision:.3f} | {ceiling.recall:.3f} "
                f"| {ceiling.f1:.3f} | | |",
                flush=True,
            )
            results.append(
                {"data": split.name, "regime": regime, "method": "ceiling", "normal_hit": hit, **ceiling.as_dict()}
            )
    online = online_batched = float("nan")
    if not args.no_online:
        online = online_throughput()
        online_batched = online_throughput(batch=1000)
        print(f"\nOnlineDetector.observe: {online:,.0f} events/s (one core, 200,000 synthetic events)")
        print(f"OnlineDetector.observe_many, batches of 1,000 (the pipeline's form): {online_batched:,.0f} events/s")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"results": results, "online_events_per_s": online, "online_batched_events_per_s": online_batched},
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
