"""Classify log messages as ``incident``, ``preventive_action`` or ``normal``, offline.

Two layers, both shipped in the package and needing nothing from the network:

1. Rules over the level field and the wording of the message. They recognise what holds
   across systems: a fatal-level hardware or kernel exception is an incident, a register or
   state dump printed after a crash is context, "corrected"/"retrying" is the system coping,
   and ENOENT/EACCES on a user's own program is a user or configuration problem rather than a
   failing system.
2. A small linear model (softmax regression over hashed word uni- and bigrams) trained on
   the corpus the project builds in ``logloupe.analyse.training.corpus``; its weights ship
   as ``classifier_model.json``. It decides what the rules leave open and breaks ties.

The final label combines the model's log-probabilities with the rule and level evidence, so
every decision carries a confidence in [0, 1] and the reasons that produced it.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

INCIDENT = "incident"
PREVENTIVE = "preventive_action"
NORMAL = "normal"
LABELS: tuple[str, ...] = (INCIDENT, PREVENTIVE, NORMAL)

MODEL_FILE = "classifier_model.json"
DEFAULT_BUCKETS = 1 << 18

# Level words as they appear in the wild, mapped to a coarse severity.
_LEVEL_WORDS: dict[str, str] = {
    "emerg": "fatal",
    "emergency": "fatal",
    "alert": "fatal",
    "panic": "fatal",
    "fatal": "fatal",
    "crit": "fatal",
    "critical": "fatal",
    "failure": "fatal",
    "severe": "error",
    "error": "error",
    "err": "error",
    "e": "error",
    "f": "fatal",
    "warn": "warn",
    "warning": "warn",
    "w": "warn",
    "notice": "info",
    "info": "info",
    "information": "info",
    "i": "info",
    "debug": "debug",
    "trace": "debug",
    "d": "debug",
    "v": "debug",
    "fine": "debug",
}
# Only upper-case words (or bracketed ones) count as a level field; "error" inside a sentence
# is wording, not a level.
_LEVEL_TOKEN = re.compile(
    r"(?:^|[\s\[<(|])(EMERG(?:ENCY)?|ALERT|PANIC|FATAL|CRIT(?:ICAL)?|FAILURE|SEVERE|ERROR|ERR|WARN(?:ING)?|"
    r"NOTICE|INFO(?:RMATION)?|DEBUG|TRACE|FINE)(?=$|[\s\]>):|,/])"
)
_BRACKETED_LEVEL = re.compile(
    r"\[(emerg|alert|crit|critical|fatal|error|err|severe|warn|warning|notice|info|debug|trace)\]",
    re.IGNORECASE,
)
# Android logcat: "I/ActivityManager( 123):"
_LOGCAT = re.compile(r"(?:^|\s)([VDIWEF])/[A-Za-z][\w.$-]*\s*\(\s*\d+\)")
_SYSLOG_PRI = re.compile(r"^<(\d{1,3})>")
_SYSLOG_SEVERITY = ("fatal", "fatal", "fatal", "error", "warn", "info", "info", "debug")

_WORD = re.compile(r"[A-Za-z][A-Za-z_'-]*[A-Za-z]|[A-Za-z]")
_HAS_DIGIT = re.compile(r"\d")


def detect_level(line: str) -> str | None:
    """The coarse level of a raw line (fatal, error, warn, info, debug) or None when absent."""
    pri = _SYSLOG_PRI.match(line)
    if pri:
        return _SYSLOG_SEVERITY[int(pri.group(1)) % 8]
    # The level field sits in the header: look at the first part of the line only.
    match = _LEVEL_TOKEN.search(line[:200]) or _BRACKETED_LEVEL.search(line[:200]) or _LOGCAT.search(line[:200])
    if match is None:
        return None
    return _LEVEL_WORDS.get(match.group(1).lower())


def tokens(text: str) -> list[str]:
    """Lower-cased words; tokens carrying digits (ids, addresses, counts) are dropped."""
    out: list[str] = []
    for raw in re.split(r"[\s=:,;()\[\]{}<>\"|/\\]+", text):
        if not raw or _HAS_DIGIT.search(raw):
            continue
        for word in _WORD.findall(raw):
            if len(word) > 1:
                out.append(word.lower().strip("'-_"))
    return [w for w in out if w]


def features(text: str, level: str | None = None) -> list[str]:
    """Uni- and bigrams of the words plus the level; what the linear model sees."""
    words = tokens(text)
    feats = [f"w:{w}" for w in words]
    feats += [f"b:{a}_{b}" for a, b in itertools.pairwise(words)]
    feats.append(f"level:{level or 'none'}")
    return feats


def _bucket(feature: str, buckets: int) -> int:
    return zlib.crc32(feature.encode("utf-8", "surrogatepass")) % buckets


@dataclass(frozen=True, slots=True)
class Classification:
    label: str
    confidence: float
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "confidence": round(self.confidence, 4)}


class LinearModel:
    """Softmax regression over hashed features; weights kept sparse (bucket -> per-label)."""

    def __init__(
        self,
        labels: Sequence[str],
        bias: Sequence[float],
        weights: dict[int, list[float]],
        buckets: int = DEFAULT_BUCKETS,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.labels = tuple(labels)
        self.bias = list(bias)
        self.weights = weights
        self.buckets = buckets
        self.meta = meta or {}

    def scores(self, feats: Iterable[str]) -> list[float]:
        out = list(self.bias)
        seen: set[int] = set()
        for feat in feats:
            idx = _bucket(feat, self.buckets)
            if idx in seen:  # binary features, as in training
                continue
            seen.add(idx)
            row = self.weights.get(idx)
            if row is not None:
                for k, w in enumerate(row):
                    out[k] += w
        return out

    def proba(self, feats: Iterable[str]) -> dict[str, float]:
        return dict(zip(self.labels, softmax(self.scores(feats)), strict=True))

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "logloupe-linear-v1",
            "labels": list(self.labels),
            "buckets": self.buckets,
            "bias": [round(b, 5) for b in self.bias],
            "weights": {str(k): [round(w, 4) for w in v] for k, v in sorted(self.weights.items())},
            "meta": self.meta,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LinearModel:
        if data.get("format") != "logloupe-linear-v1":
            raise ValueError("not a LogLoupe linear model")
        weights = {int(k): [float(x) for x in v] for k, v in data["weights"].items()}
        return cls(data["labels"], data["bias"], weights, int(data["buckets"]), data.get("meta") or {})

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), separators=(",", ":")), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> LinearModel:
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))


def softmax(scores: Sequence[float]) -> list[float]:
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


# --- rules -------------------------------------------------------------------------------

# The system itself failing: wording that names a failure of hardware, kernel, network,
# storage or a process, whatever the level says.
_INCIDENT_STRONG = re.compile(
    r"\b(?:kernel panic|panic|oops|segfault|segmentation fault|general protection fault|"
    r"out of memory|oom[- ]killer|killed process|uncorrect(?:able|ed)|unrecoverable|"
    r"machine check exception|hardware error|i/o error|input/output error|"
    r"link (?:has been )?severed|link (?:is )?down|connection reset|broken pipe|"
    r"connection refused|connection timed out|timed out|no route to host|host unreachable|"
    r"network is unreachable|mount failed|failed to mount|kernel terminated|stopping execution|"
    r"data corruption|corrupt(?:ed|ion)?|checksum (?:error|mismatch)|bad block|"
    r"not responding|stale nfs|read-only file system|no space left|disk full|"
    r"deadlock|stack overflow|fatal error|crash(?:ed)?|aborted|abort\b|core dumped|"
    r"tlb error|parity error|ecc error|bus error|dma error|temperature above threshold|"
    r"overheat|power (?:failure|loss|supply failure)|fan failure|drive ?not ?ready|"
    r"watchdog|lost connection|connection lost|unable to connect|failed to connect|"
    r"service unavailable|internal server error|exception|traceback)\b",
    re.IGNORECASE,
)
# Generic failure wording: an incident when the level agrees or nothing softens it.
_INCIDENT_WEAK = re.compile(
    r"\b(?:error|errors|fail|failed|failing|failure|fatal|denied|refused|unable|cannot|can ?not|"
    r"could not|couldn't|invalid|rejected|lost|missing|interrupt|exception|violation|bad|fault|faulty)\b",
    re.IGNORECASE,
)
# The system coping, or an all-clear: not an incident even when "error" appears.
_NORMAL_CUES = re.compile(
    r"\b(?:corrected|correctable|recovered|recovery complete|resolved|succeeded|successful(?:ly)?|"
    r"no errors?|0 errors?|without errors?|is ok|are ok|back to normal|restored|cleared|"
    r"re-?established|healthy)\b",
    re.IGNORECASE,
)
# Something needs attention soon but nothing has failed yet.
_PREVENTIVE_CUES = re.compile(
    r"\b(?:retrying|retry(?:ing)? in|will retry|deprecated|deprecation|threshold|approaching|"
    r"almost full|nearly full|running low|low on|high (?:memory|cpu|load|latency)|slow|"
    r"expir(?:es|ing|y)|will expire|certificate expires|degraded|throttl(?:ed|ing)|backoff|"
    r"back-off|queue (?:is )?full|near(?:ing)? capacity|usage (?:at|above)|warning|"
    r"backing off)\b",
    re.IGNORECASE,
)
# A request or job that is wrong, rather than a system that is broken: the missing file,
# the refused permission, the unrunnable binary are the user's to fix.
_USER_ERROR = re.compile(
    r"(?:no such file or directory|permission denied|exec format error|"
    r"command not found|not a directory|is a directory|"
    r"invalid argument|usage:|bad request|unknown option|invalid option|syntax error)",
    re.IGNORECASE,
)
# Register and state dumps printed after a crash: "name .......... 0", "name: 0x00ff",
# "r3=0x.. r4=0x..". They describe the incident reported elsewhere; on their own they are context.
# A value after "name:" must look like a register (0x…, or 8+ hex digits) or come with more
# values: "connection refused to db:5432" and "port: 8080" are messages, not dumps.
_HEX_VALUE = r"(?:0x[0-9a-f]+|[0-9a-f]{8,})"
_DUMP_LINE = re.compile(
    r"(?:\.{3,}\s*[0-9a-fx]+\s*(?:\(.*\))?\s*$)"
    rf"|(?:^[A-Za-z][A-Za-z ()/=,.-]{{0,60}}:\s*(?:{_HEX_VALUE}(?:\s+(?:0x)?[0-9a-f]{{4,}})*"
    r"|(?:0x)?[0-9a-f]{4,}(?:\s+(?:0x)?[0-9a-f]{4,})+)\s*$)"
    r"|(?:(?:\b\w+=0x[0-9a-f]+\b.*){2,})"
    r"|(?:^[A-Za-z ]+registers?:?\s*$)",
    re.IGNORECASE,
)
_WORDS_ONLY = re.compile(r"[A-Za-z]{3,}")


def message_of(line: str) -> str:
    """The message part of a raw line: what follows the level field, or the whole line."""
    match = _LEVEL_TOKEN.search(line[:200])
    if match:
        rest = line[match.end() :].lstrip(" :]-|>)")
        if rest:
            return rest
    return line


@dataclass(frozen=True, slots=True)
class Evidence:
    level: str | None
    strong: bool
    weak: bool
    normal: bool
    preventive: bool
    user_error: bool
    dump: bool


# A raw value in a row of them: hex-looking (0x…, 8+ hex digits), maybe behind "name:" or "name=".
_VALUE_TOKEN = re.compile(
    r"^(?:\w+[:=])?(?:0x[0-9a-f]+|[0-9a-f]{8,}|(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{4,})$", re.IGNORECASE
)


def is_dump(msg: str) -> bool:
    """A register/state dump line: dotted leaders, ``name: 0x..`` or mostly raw hex values.

    The last, loosest form never wins over strong failure wording (a failure message that happens
    to carry a few ids is still a failure)."""
    if _DUMP_LINE.search(msg):
        return True
    parts = msg.split()
    if len(parts) < 3:
        return False
    values = sum(1 for p in parts if _VALUE_TOKEN.match(p.strip(",;")))
    return values / len(parts) >= 0.6 and not _INCIDENT_STRONG.search(msg)


def evidence(line: str) -> Evidence:
    level = detect_level(line)
    msg = message_of(line)
    dump = is_dump(msg)
    return Evidence(
        level=level,
        strong=not dump and bool(_INCIDENT_STRONG.search(msg)),
        weak=not dump and bool(_INCIDENT_WEAK.search(msg)),
        normal=bool(_NORMAL_CUES.search(msg)),
        preventive=bool(_PREVENTIVE_CUES.search(msg)),
        user_error=bool(_USER_ERROR.search(msg)),
        dump=dump,
    )


def rule_scores(ev: Evidence) -> tuple[dict[str, float], list[str]]:
    """Log-odds adjustments per label from the rules, with the reasons that fired."""
    adj = dict.fromkeys(LABELS, 0.0)
    reasons: list[str] = []
    level_prior = {
        "fatal": (2.0, 0.0, -1.0),
        "error": (1.0, 0.3, -0.5),
        "warn": (-0.5, 1.2, 0.0),
        "info": (-1.5, 0.0, 1.0),
        "debug": (-2.5, -0.5, 2.0),
    }
    if ev.level in level_prior:
        for label, value in zip(LABELS, level_prior[ev.level], strict=True):
            adj[label] += value
        reasons.append(f"level {ev.level}")
    if ev.strong:
        adj[INCIDENT] += 3.0
        reasons.append("failure wording")
    elif ev.weak:
        adj[INCIDENT] += 0.8
        reasons.append("error wording")
    if ev.normal:
        adj[NORMAL] += 3.5 if not ev.strong else 1.5
        adj[INCIDENT] -= 1.0
        reasons.append("recovered/corrected")
    if ev.preventive:
        adj[PREVENTIVE] += 1.5
        reasons.append("needs attention")
    if ev.user_error:
        adj[PREVENTIVE] += 3.0
        adj[INCIDENT] -= 3.0
        reasons.append("user or configuration error")
    if ev.dump:
        adj[NORMAL] += 4.0
        adj[INCIDENT] -= 4.0
        reasons.append("register/state dump")
    return adj, reasons


class Classifier:
    """Rules plus a linear model; ``classify`` takes a raw line or a bare message."""

    def __init__(self, model: LinearModel | None = None, model_weight: float = 1.0) -> None:
        self.model = model
        self.model_weight = model_weight

    @classmethod
    def default(cls) -> Classifier:
        return cls(default_model())

    @classmethod
    def for_tenant(cls, data_dir: Path, tenant: str) -> Classifier:
        """The tenant's installed model when there is one, else the shipped default."""
        path = tenant_model_path(data_dir, tenant)
        if path.exists():
            return cls(LinearModel.load(path))
        return cls.default()

    def classify(self, line: str, level: str | None = None) -> Classification:
        """``level``, when given, replaces the one found in the line: a coarse name (``error``) or a
        stored level's name (``ERROR``, ``WARN``, ``TRACE``, as the server passes them)."""
        ev = evidence(line)
        if level is not None:
            level = _LEVEL_WORDS.get(level.lower(), level.lower())
            # INFO is also what ingest stores when a line names no level: a level word the text
            # itself carries (a header the parser did not split off) says more.
            if not (level == "info" and ev.level is not None):
                ev = Evidence(level, ev.strong, ev.weak, ev.normal, ev.preventive, ev.user_error, ev.dump)
        adj, reasons = rule_scores(ev)
        if self.model is not None:
            proba = self.model.proba(features(message_of(line), ev.level))
            logits = [self.model_weight * math.log(max(proba[label], 1e-6)) + adj[label] for label in LABELS]
        else:
            logits = [adj[label] + (0.5 if label == NORMAL else 0.0) for label in LABELS]
        probs = softmax(logits)
        best = max(range(len(LABELS)), key=lambda k: probs[k])
        return Classification(LABELS[best], probs[best], tuple(reasons))

    def classify_many(self, lines: Iterable[str]) -> list[Classification]:
        return [self.classify(line) for line in lines]


_DEFAULT_MODEL: LinearModel | None = None


def default_model() -> LinearModel | None:
    """The model shipped in the package (None if the package was built without it)."""
    global _DEFAULT_MODEL
    if _DEFAULT_MODEL is None:
        ref = resources.files("logloupe.analyse").joinpath(MODEL_FILE)
        if not ref.is_file():
            return None
        _DEFAULT_MODEL = LinearModel.from_json(json.loads(ref.read_text(encoding="utf-8")))
    return _DEFAULT_MODEL


def tenant_model_path(data_dir: Path, tenant: str) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", tenant) or tenant in {".", ".."}:
        raise ValueError(f"invalid tenant name {tenant!r}")
    return data_dir / "models" / tenant / MODEL_FILE
