"""Template mining: LogLoupe's miner against drain3 (PyPI), accuracy and throughput in one run.

    python benchmarks/patterns.py                    # accuracy on the eight systems + 1M-line throughput
    python benchmarks/patterns.py --lines 200000     # smaller throughput input while iterating
    python benchmarks/patterns.py --no-throughput

Accuracy: each system's ``Content`` column (Loghub-2k, corrected ground truth) is fed to the parser;
every line is then labelled with its cluster's *final* template (what the Drain benchmark and our
``logloupe patterns --messages --per-line`` both do). GA and PA are defined in
``logloupe.parse.evaluate``. LogLoupe runs with ``MinerConfig()`` for every system; drain3 gets the
per-system settings of the LogPAI Drain benchmark.

Throughput: the eight systems' ``Content`` lines, concatenated and repeated until ``--lines``, fed
once through each parser; lines per CPU-second from ``time.process_time``. drain3 runs with its
defaults and no masking (its fastest set-up), LogLoupe with its defaults (which mask and extract
typed variables for every line).

Needs the ``bench`` extra (``pip install -e .[bench]``) for drain3.
"""

from __future__ import annotations

import argparse
import csv
import gc
import os
import random
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from logloupe.parse.evaluate import Accuracy, evaluate
from logloupe.parse.patterns import PatternMiner

SYSTEMS = ["Apache", "BGL", "HDFS", "HealthApp", "Linux", "OpenStack", "Spark", "Zookeeper"]

# Drain's per-system settings from the LogPAI benchmark (logparser, benchmark/Drain_benchmark.py:
# "benchmark_settings"), the settings behind the published Drain figures. depth counts the root and
# the leaf, as drain3's ``drain_depth`` does; st is the similarity threshold; the regexes are
# replaced by <*> before clustering. Written out here from that table, not imported.
DRAIN_SETTINGS: dict[str, dict[str, object]] = {
    "HDFS": {"regex": [r"blk_-?\d+", r"(\d+\.){3}\d+(:\d+)?"], "st": 0.5, "depth": 4},
    "Spark": {"regex": [r"(\d+\.){3}\d+", r"\b[KGTM]?B\b", r"([\w-]+\.){2,}[\w-]+"], "st": 0.5, "depth": 4},
    "Zookeeper": {"regex": [r"(/|)(\d+\.){3}\d+(:\d+)?"], "st": 0.5, "depth": 4},
    "BGL": {"regex": [r"core\.\d+"], "st": 0.5, "depth": 4},
    "Linux": {"regex": [r"(\d+\.){3}\d+", r"\d{2}:\d{2}:\d{2}"], "st": 0.39, "depth": 6},
    "HealthApp": {"regex": [], "st": 0.2, "depth": 4},
    "Apache": {"regex": [r"(\d+\.){3}\d+"], "st": 0.5, "depth": 4},
    "OpenStack": {"regex": [r"((\d+\.){3}\d+,?)+", r"/.+?\s", r"\d+"], "st": 0.5, "depth": 5},
}


@dataclass
class Row:
    system: str
    ours: Accuracy
    drain: Accuracy | None


def find_data(explicit: str | None) -> Path:
    candidates = [explicit] if explicit else []
    candidates += [
        os.environ.get("LOGLOUPE_DATA", ""),
        "../shared/data",
        "../../shared/data",
        "/work/shared/data",
    ]
    for c in candidates:
        if c and (Path(c) / "loghub-2k").is_dir():
            return Path(c) / "loghub-2k"
    sys.exit("loghub-2k not found: pass --data DIR (the folder holding loghub-2k/)")


def load(data: Path, system: str) -> list[dict[str, str]]:
    with open(data / system / f"{system}_2k.log_structured.csv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def run_ours(lines: list[str]) -> tuple[list[int], list[str]]:
    miner = PatternMiner()
    for line in lines:
        miner.add(line)
    ids: list[int] = []
    templates: list[str] = []
    for line in lines:
        m = miner.match(line)
        ids.append(m.pattern_id if m else -len(ids) - 1)
        templates.append(m.template if m else line)
    return ids, templates


def _drain_miner(settings: dict[str, object] | None):  # type: ignore[no-untyped-def]
    from drain3 import TemplateMiner
    from drain3.masking import MaskingInstruction
    from drain3.template_miner_config import TemplateMinerConfig

    config = TemplateMinerConfig()
    config.profiling_enabled = False
    if settings is not None:
        config.drain_depth = int(settings["depth"])  # type: ignore[call-overload]
        config.drain_sim_th = float(settings["st"])  # type: ignore[arg-type]
        # mask_prefix "<" + "*" + mask_suffix ">" writes the benchmark's <*>
        config.masking_instructions = [MaskingInstruction(r, "*") for r in settings["regex"]]  # type: ignore[attr-defined]
    return TemplateMiner(config=config)


def run_drain(lines: list[str], settings: dict[str, object]) -> tuple[list[int], list[str]]:
    miner = _drain_miner(settings)
    cluster_ids = [miner.add_log_message(line)["cluster_id"] for line in lines]
    final = {c.cluster_id: c.get_template() for c in miner.drain.clusters}
    return cluster_ids, [final[c] for c in cluster_ids]


def accuracy(data: Path, systems: list[str], with_drain: bool) -> list[Row]:
    rows = []
    for system in systems:
        records = load(data, system)
        contents = [r["Content"] for r in records]
        true_ids = [r["EventId"] for r in records]
        true_templates = [r["EventTemplate"] for r in records]
        ids, templates = run_ours(contents)
        ours = evaluate(ids, templates, true_ids, true_templates)
        drain = None
        if with_drain:
            d_ids, d_templates = run_drain(contents, DRAIN_SETTINGS[system])
            drain = evaluate(d_ids, d_templates, true_ids, true_templates)
        rows.append(Row(system, ours, drain))
    return rows


# digit runs that are values: not part of a name such as jk2_init, L3, tty2 or log4j
_DIGITS = re.compile(r"(?<![A-Za-z_\d])\d+(?![A-Za-z_\d])")


def _fresh_digits(line: str, rng: random.Random) -> str:
    """The same line with new values: every numeric run gets new digits; a free-standing number
    (not part of an address, time or version such as 10.0.0.1, 12:30:01, 1.2.3) also a length
    changed by -1..+1."""

    def redraw(m: re.Match[str]) -> str:
        n = len(m.group())
        before = line[m.start() - 1] if m.start() else " "
        after = line[m.end()] if m.end() < len(line) else " "
        if before not in ".:-" and after not in ".:-":
            n = max(1, n + rng.randint(-1, 1))
        return "".join(rng.choice("0123456789") for _ in range(n))

    return _DIGITS.sub(redraw, line)


def throughput_input(data: Path, systems: list[str], n: int, fresh: bool) -> list[tuple[str, list[str]]]:
    """Per system, its Content lines repeated to n / len(systems) lines (at least once).

    With ``fresh`` every repetition after the first gets new numbers (see ``_fresh_digits``), so a
    parser cannot profit from seeing the very same lines again.
    """
    rng = random.Random(7)
    per = max(1, n // len(systems))
    out = []
    for s in systems:
        base = [r["Content"] for r in load(data, s)]
        lines = list(base)
        while len(lines) < per:
            lines.extend(_fresh_digits(x, rng) for x in base) if fresh else lines.extend(base)
        out.append((s, lines[: max(per, len(base))]))
    return out


def measure(label: str, chunks: list[tuple[str, list[str]]]) -> float:
    """Lines per CPU-second. Each system is its own stream: a drain3 miner with that system's
    benchmark settings ("drain3"), a drain3 miner with defaults and no masks ("drain3-plain"),
    or one LogLoupe miner with the system as its service (one tree per service)."""
    gc.collect()
    spent = 0.0
    total = 0
    miner = PatternMiner()
    for system, lines in chunks:
        total += len(lines)
        if label == "logloupe":
            add = miner.add
            start = time.process_time()
            for line in lines:
                add(line, service=system)
            spent += time.process_time() - start
        else:
            d = _drain_miner(DRAIN_SETTINGS[system] if label == "drain3" else None)
            add_d = d.add_log_message
            start = time.process_time()
            for line in lines:
                add_d(line)
            spent += time.process_time() - start
    return total / spent if spent > 0 else float("inf")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="folder holding loghub-2k/ (default: ../shared/data)")
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument("--lines", type=int, default=1_000_000, help="throughput input size")
    ap.add_argument("--no-throughput", action="store_true")
    ap.add_argument("--no-drain", action="store_true", help="LogLoupe only (drain3 not installed)")
    args = ap.parse_args()
    data = find_data(args.data)
    systems = [s for s in args.systems.split(",") if s]
    with_drain = not args.no_drain

    rows = accuracy(data, systems, with_drain)
    print(f"{'system':<11} {'GA ours':>8} {'PA ours':>8} {'GA drain3':>10} {'PA drain3':>10}")
    for r in rows:
        d = f"{r.drain.grouping:>10.3f} {r.drain.parsing:>10.3f}" if r.drain else f"{'-':>10} {'-':>10}"
        print(f"{r.system:<11} {r.ours.grouping:>8.3f} {r.ours.parsing:>8.3f} {d}")
    n = len(rows)
    ga = sum(r.ours.grouping for r in rows) / n
    pa = sum(r.ours.parsing for r in rows) / n
    if with_drain:
        dga = sum(r.drain.grouping for r in rows if r.drain) / n
        dpa = sum(r.drain.parsing for r in rows if r.drain) / n
        print(f"{'average':<11} {ga:>8.3f} {pa:>8.3f} {dga:>10.3f} {dpa:>10.3f}")
    else:
        print(f"{'average':<11} {ga:>8.3f} {pa:>8.3f}")

    if not args.no_throughput:
        for fresh in (False, True):
            chunks = throughput_input(data, systems, args.lines, fresh)
            total = sum(len(lines) for _, lines in chunks)
            kind = "repeated lines" if not fresh else "repeated lines with fresh numbers"
            print(f"\nthroughput on {total:,} {kind} (lines per CPU-second, time.process_time)")
            ours_lps = measure("logloupe", chunks)
            print(f"  logloupe (defaults)           {ours_lps:>12,.0f}")
            if with_drain:
                drain_lps = measure("drain3", chunks)
                plain_lps = measure("drain3-plain", chunks)
                print(f"  drain3 (benchmark settings)   {drain_lps:>12,.0f}   ratio {ours_lps / drain_lps:.2f}x")
                print(f"  drain3 (defaults, no masks)   {plain_lps:>12,.0f}   ratio {ours_lps / plain_lps:.2f}x")


if __name__ == "__main__":
    main()
