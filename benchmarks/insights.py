"""Two measured claims of the AI stage, each against a named peer in the same run.

    PYTHONPATH=src python benchmarks/insights.py [--lines 1000000] [--data ../shared/data]

(a) Classifier on BGL_2k, label token removed, no BGL-specific training: precision/recall/F1
    of ``incident`` vs. the rest for LogLoupe's default classifier and for the peer
    "level field alone" (FATAL/ERROR/SEVERE/FAILURE or stronger => incident).
(b) Tokens sent to explain a >= 1M-line file built by repeating the shared Loghub-2k systems:
    LogLoupe (the file analysed as ``logloupe analyze`` does it: ``analyse_lines``, i.e. parsed and
    joined as ingest does and mined by the server's template miner; then pattern summaries within
    its token budget, through a provider that counts what it receives) vs. the naive method of chunking the whole file into the same model's
    context window (128k tokens, same system prompt per chunk). Tokens are counted offline
    with ``logloupe.analyse.tokens.count_tokens`` on both sides.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from logloupe.analyse.classify import Classifier, detect_level
from logloupe.analyse.grouping import open_lines
from logloupe.analyse.insights import SYSTEM_PROMPT, explain
from logloupe.analyse.llm.base import Completion
from logloupe.analyse.pipeline import analyse_lines
from logloupe.analyse.reading import upload_service
from logloupe.analyse.tokens import count_tokens
from logloupe.settings import Settings

HERE = Path(__file__).resolve().parent
# ../shared/data from the project root (a git worktree sits one level deeper).
DEFAULT_DATA = next(
    (p for p in (HERE.parent.parent / "shared/data", HERE.parent.parent.parent / "shared/data") if p.exists()),
    HERE.parent.parent / "shared/data",
)


def prf(truth: list[bool], pred: list[bool]) -> tuple[float, float, float]:
    tp = sum(t and p for t, p in zip(truth, pred, strict=True))
    fp = sum((not t) and p for t, p in zip(truth, pred, strict=True))
    fn = sum(t and not p for t, p in zip(truth, pred, strict=True))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def classifier_benchmark(bgl: Path) -> dict[str, object]:
    truth: list[bool] = []
    lines: list[str] = []
    for raw in bgl.read_text(encoding="utf-8", errors="replace").splitlines():
        label, _, rest = raw.partition(" ")
        truth.append(label != "-")
        lines.append(rest)
    clf = Classifier.default()
    ours = [clf.classify(line).label == "incident" for line in lines]
    peer = [detect_level(line) in {"fatal", "error"} for line in lines]
    out: dict[str, object] = {"lines": len(lines), "incidents": sum(truth)}
    for name, pred in (("logloupe", ours), ("level_only", peer)):
        p, r, f = prf(truth, pred)
        out[name] = {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4)}
    return out


class CountingProvider:
    """A provider that answers with no insights and reports the tokens it was sent."""

    name = "counting"
    model = "gpt-4o-mini"

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def complete(self, system: str, user: str, max_tokens: int = 1024) -> Completion:
        self.prompts.append(user)
        text = '{"insights": []}'
        return Completion(text, count_tokens(system) + count_tokens(user), count_tokens(text), self.name, self.model)

    def stream(self, system: str, user: str, max_tokens: int = 1024) -> Iterator[str]:
        yield self.complete(system, user, max_tokens).text


def build_big_file(data: Path, target_lines: int, out: Path) -> int:
    sources = sorted((data / "loghub-2k").glob("*/*_2k.log"))
    block = "".join(s.read_text(encoding="utf-8", errors="replace") for s in sources)
    block_lines = block.count("\n")
    repeats = -(-target_lines // block_lines)
    with out.open("w", encoding="utf-8") as fh:
        for _ in range(repeats):
            fh.write(block)
    return repeats * block_lines


def token_benchmark(data: Path, target_lines: int, budget: int, context: int = 128_000) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "loghub-big.log"
        n_lines = build_big_file(data, target_lines, big)
        t0 = time.perf_counter()
        file_tokens = 0
        seen: dict[str, int] = {}  # the file repeats its lines: count each distinct line once, exactly
        for _, line in open_lines(str(big)):
            n = seen.get(line)
            if n is None:
                n = seen[line] = count_tokens(line) + 1
            file_tokens += n
        count_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        # The product path: what `logloupe analyze FILE` runs before explaining.
        result = analyse_lines(
            open_lines(str(big)),
            Settings(data_dir=Path(tmp) / "data"),
            "default",
            Classifier.default(),
            source=f"upload:{big.name}",
            service=upload_service(big.name),
        )
        analyse_s = time.perf_counter() - t0
    instructions = count_tokens(SYSTEM_PROMPT) + 40
    per_chunk = context - instructions - 4096  # room for the answer
    chunks = -(-file_tokens // per_chunk)
    naive = file_tokens + chunks * instructions
    provider = CountingProvider()
    _, usage = explain(result, provider, budget_tokens=budget, context_tokens=min(budget, 16_000))
    # The same run with a budget large enough for every selected pattern (no omissions).
    _, full = explain(result, CountingProvider(), budget_tokens=10**6, context_tokens=16_000)
    return {
        "lines": n_lines,
        "events": result.events,
        "patterns": len(result.patterns),
        "naive_tokens_in": naive,
        "naive_requests": chunks,
        "logloupe_tokens_in": usage.tokens_in,
        "logloupe_requests": usage.requests,
        "logloupe_patterns_sent": usage.patterns_sent,
        "logloupe_patterns_omitted": usage.patterns_omitted,
        "ratio": round(usage.tokens_in / naive, 6),
        "logloupe_all_selected_tokens_in": full.tokens_in,
        "logloupe_all_selected_patterns_sent": full.patterns_sent,
        "logloupe_all_selected_requests": full.requests,
        "ratio_all_selected": round(full.tokens_in / naive, 6),
        "analyse_seconds": round(analyse_s, 1),
        "count_seconds": round(count_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--budget", type=int, default=6000, help="LogLoupe's token budget (the default)")
    parser.add_argument("--skip-tokens", action="store_true")
    args = parser.parse_args()
    report: dict[str, object] = {"classifier_bgl_2k": classifier_benchmark(args.data / "loghub-2k/BGL/BGL_2k.log")}
    print(json.dumps(report, indent=2), flush=True)
    if not args.skip_tokens:
        tokens = token_benchmark(args.data, args.lines, args.budget)
        print(json.dumps({"tokens": tokens}, indent=2))


if __name__ == "__main__":
    main()
