"""Online, incremental log template mining: one small typed miner, no pickles.

How a message finds its pattern (per ``(tenant, service)`` tree):

1. ``mask_for_mining`` turns values that are variable by nature into ``<*>`` *inside* tokens
   (``CPU#0`` → ``CPU#<*>``, ``/10.0.0.1:50010`` → ``<*>``), then the text is split on whitespace.
2. The masked text is looked up in a signature map (a dict): most lines end here.
3. Otherwise the clusters with the same token count are compared position by position. A position
   differs *compatibly* when the template already has ``<*>`` there, when either token looks variable
   (digits, a partial mask) or both are ``key=value`` with the same key. Two different plain words
   (``VM Started`` / ``VM Paused``) are *not* compatible: the line starts its own cluster and the
   word is remembered as a variant of that position. Only when a position has collected
   ``min_word_variants`` different words with the rest of the line equal does it become ``<*>`` — so
   small enumerations stay separate events while user names and hosts generalise.
4. Failing that, clusters of a different length are tried with one differing span on each side
   where both spans look variable (multi-word variables such as ``3.3.3 (Red Hat 3.3.3-7)``).
5. Otherwise a new cluster is created. Its id is 64 bits of a hash of tenant, service and its first
   template, and it stays the same while the template generalises.

Memory is bounded per tree (``max_clusters``, ``max_signatures``); the least recently used clusters
are evicted, and ``stats()`` counts every eviction. User corrections (rename, merge, split) are kept
in the state and applied to later lines. ``export_state``/``from_state`` use plain JSON types.
"""

from __future__ import annotations

import hashlib
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from logloupe.parse.masking import _SHAPE_TABLE, WILDCARD, MiningMasker, value_type

STATE_VERSION = 1
_MAX_EXTRACT_CHARS = 8192
_DIGIT = re.compile(r"\d")


@dataclass(frozen=True, slots=True)
class MinerConfig:
    """Defaults are the benchmarked configuration; every field has a reason to exist."""

    # A position holding different plain words becomes <*> only after this many distinct words
    # with the rest of the line identical ("VM Started/Stopped/Paused/Resumed" stay four events).
    min_word_variants: int = 5
    # ...or as soon as two different events vary over at least this many of the same words.
    min_shared_variants: int = 3
    # Share of the template's constant tokens a line must match to join a cluster.
    min_constant_share: float = 0.5
    # Bounded memory, per (tenant, service) tree.
    max_clusters: int = 5000
    max_signatures: int = 50_000
    max_trees: int = 1000
    # Merges the user made (merged-away id -> surviving id), for the whole miner. Past it, aliases
    # whose surviving pattern was evicted go first, then the oldest tenth (``aliases_evicted``).
    max_aliases: int = 20_000
    # Longer messages are mined on their first tokens only (the rest is one variable).
    max_tokens: int = 120
    max_samples: int = 3
    max_variable_chars: int = 256


@dataclass(frozen=True, slots=True)
class PatternMatch:
    pattern_id: int
    template: str
    variables: list[str]
    variable_types: list[str]
    is_new: bool


@dataclass(frozen=True, slots=True)
class Pattern:
    pattern_id: int
    tenant: str
    service: str
    template: str
    name: str
    count: int
    first_seen_us: int
    last_seen_us: int
    samples: list[str]


@dataclass(slots=True)
class _Cluster:
    id: int
    tokens: list[str]
    count: int = 0
    first_seen_us: int = 0
    last_seen_us: int = 0
    last_seq: int = 0
    samples: list[str] = field(default_factory=list)
    name: str = ""
    # positions a user split: a wildcard there no longer absorbs other values
    locked: set[int] = field(default_factory=set)
    # positions where spans of different lengths were merged (the variable may hold spaces)
    multi: set[int] = field(default_factory=set)
    _regex: re.Pattern[str] | None = None
    _template: str | None = None
    version: int = 0

    @property
    def template(self) -> str:
        if self._template is None:
            self._template = " ".join(self.tokens)
        return self._template

    def touch(self) -> None:
        """The tokens changed: forget what was derived from them."""
        self._regex = None
        self.version += 1
        self._template = None

    def regex(self) -> re.Pattern[str]:
        if self._regex is None:
            parts = []
            for i, tok in enumerate(self.tokens):
                if tok == WILDCARD:
                    parts.append("(.+?)" if i in self.multi else r"(\S+?)")
                else:
                    pieces = tok.split(WILDCARD)
                    parts.append(r"(\S*?)".join(re.escape(p) for p in pieces))
            self._regex = re.compile(r"^\s*" + r"\s+".join(parts) + r"\s*$", re.DOTALL)
        return self._regex


def _variable_like(tok: str) -> bool:
    return WILDCARD in tok or _DIGIT.search(tok) is not None


_PIECES = re.compile(r"([=:,;()\[\]{}#/@.|'\"]+)")


def _value_merge(a: str, b: str) -> str | None:
    """Merge two differing values: <*> when either is variable-looking, None for two plain words."""
    if a == WILDCARD or b == WILDCARD:
        return WILDCARD
    wa = WILDCARD in a
    wb = WILDCARD in b
    if wa and wb:
        return None  # both partly masked but with different constant text: different shapes
    if wa or wb:
        plain = b if wa else a
        return WILDCARD if _DIGIT.search(plain) else None
    if _DIGIT.search(a) or _DIGIT.search(b):
        return WILDCARD
    return None


def _affix_merge(a: str, b: str) -> str | None:
    """``(<*>)`` and ``(host.example.net)`` → ``(<*>)``: keep shared punctuation-bounded ends."""
    limit = min(len(a), len(b))
    p = 0
    while p < limit and a[p] == b[p]:
        p += 1
    while p and (a[p - 1].isalnum() or a[:p].endswith(("<", "<*", WILDCARD))):
        p -= 1
    s = 0
    while s < limit - p and a[-1 - s] == b[-1 - s]:
        s += 1
    while s and (a[len(a) - s].isalnum() or a[len(a) - s :].startswith(("*>", ">", WILDCARD))):
        s -= 1
    if p == 0 and s == 0:
        return None
    ma, mb = a[p : len(a) - s], b[p : len(b) - s]
    if WILDCARD in ma and WILDCARD in mb and ma != WILDCARD and mb != WILDCARD:
        return None
    if ma == WILDCARD or mb == WILDCARD or (ma and mb and _value_merge(ma, mb) is not None):
        return a[:p] + WILDCARD + a[len(a) - s :]
    return None


def _token_merge(a: str, b: str) -> str | None:
    """The token both ``a`` (template) and ``b`` (line) fit, or None when they are different words."""
    if a in (b, WILDCARD):
        return a
    pa = _PIECES.split(a)
    pb = _PIECES.split(b)
    if len(pa) == len(pb) > 1 and pa[1::2] == pb[1::2]:
        # same punctuation skeleton (key=value, name(arg), core.2275): merge piece by piece
        out = []
        differs = 0
        for i, (x, y) in enumerate(zip(pa, pb, strict=True)):
            if x == y:
                out.append(x)
            elif i % 2:
                return None
            else:
                merged = _value_merge(x, y)
                if merged is None and i and pa[i - 1].endswith("=") and WILDCARD not in x + y:
                    merged = WILDCARD  # key=value: the value is a variable by nature
                if merged is None:
                    return None
                out.append(merged)
                differs += 1
        joined = "".join(out)
        return joined if differs else a
    ka, kb = a.find("="), b.find("=")
    if 0 < ka == kb and a[:ka] == b[:ka] and a[:ka].replace("_", "").replace(".", "").isalnum():
        # key=value: the value is a variable by nature, unless it has a different shape
        va, vb = a[ka + 1 :], b[kb + 1 :]
        if (WILDCARD in va) == (WILDCARD in vb) or va == WILDCARD or vb == WILDCARD:
            return a[: ka + 1] + WILDCARD
    merged = _value_merge(a, b)
    if merged is None or (merged == WILDCARD and WILDCARD in a + b):
        return _affix_merge(a, b) or merged
    return merged


def _common_shape(words: list[str]) -> str:
    """``<*>`` with the punctuation-bounded ends all ``words`` share: ``a.com:<*>``, ``b.org:<*>``
    → ``<*>:<*>``."""
    first = words[0]
    p = min(len(w) for w in words)
    s = p
    for w in words[1:]:
        q = 0
        while q < p and w[q] == first[q]:
            q += 1
        p = q
        q = 0
        while q < s and w[-1 - q] == first[-1 - q]:
            q += 1
        s = q
    while p and (first[p - 1].isalnum() or first[:p].endswith(("<", "<*"))):
        p -= 1
    s = min(s, len(first) - p)
    while s and (first[len(first) - s].isalnum() or first[len(first) - s :].startswith(("*>", ">"))):
        s -= 1
    shape = first[:p] + WILDCARD + (first[len(first) - s :] if s else "")
    while WILDCARD + WILDCARD in shape:
        shape = shape.replace(WILDCARD + WILDCARD, WILDCARD)
    return shape


def _stable_id(*parts: str) -> int:
    h = hashlib.blake2b(digest_size=8)
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    return int.from_bytes(h.digest(), "big") & 0x7FFF_FFFF_FFFF_FFFF or 1


# A known shape's answer: cluster id, template version, variable spans, variable types, template,
# and the spans as one itemgetter (returns a str for one span, a tuple for more) with their count.
_Fast = tuple[int, int, list[tuple[int, int]], list[str], str, Callable[[str], Any], int]


def _no_variables(message: str) -> str:
    """Stands where an itemgetter stands for a shape without variables (its count, 0, says so)."""
    return ""


class _Tree:
    __slots__ = (
        "by_len",
        "clusters",
        "fast",
        "seq",
        "service",
        "signatures",
        "splits",
        "tenant",
        "variants",
        "word_index",
    )

    def __init__(self, tenant: str, service: str) -> None:
        self.tenant = tenant
        self.service = service
        self.clusters: dict[int, _Cluster] = {}
        self.by_len: dict[int, list[_Cluster]] = {}
        self.signatures: dict[str, int] = {}
        # shape key -> (cluster id, template version, variable spans, variable types, template): lines of one
        # shape mask alike and split into variables alike, so the whole answer can be reused.
        self.fast: dict[bytes, _Fast] = {}
        # (cluster id, position) -> {word: cluster id holding that word}
        self.variants: dict[tuple[int, int], dict[str, int]] = {}
        self.word_index: dict[str, set[tuple[int, int]]] = {}
        # (split pattern id, values at its split positions) -> child pattern id
        self.splits: dict[tuple[int, tuple[str, ...]], int] = {}
        self.seq = 0


class PatternMiner:
    """Learns templates from messages; see the module docstring for the algorithm."""

    def __init__(self, config: MinerConfig | None = None) -> None:
        self.config = config or MinerConfig()
        self._trees: dict[tuple[str, str], _Tree] = {}
        self._mask = MiningMasker()
        self._aliases: dict[int, int] = {}
        self._names: dict[int, str] = {}
        self._stats: dict[str, int] = {
            "clusters_created": 0,
            "clusters_evicted": 0,
            "signatures_flushed": 0,
            "trees_evicted": 0,
            "merges": 0,
            "aliases_evicted": 0,
        }

    # --- public API ---------------------------------------------------------------------------------
    def add(self, message: str, *, tenant: str = "default", service: str = "", ts_us: int = 0) -> PatternMatch:
        """Learn from ``message`` and return its pattern (``is_new`` when a cluster was created)."""
        tree = self._trees.get((tenant, service)) or self._tree(tenant, service)
        tree.seq += 1
        key = message.encode("utf-8", "surrogatepass").translate(_SHAPE_TABLE)
        fast = tree.fast.get(key)
        if fast is not None:
            cluster = tree.clusters.get(fast[0])
            if cluster is not None and cluster.version == fast[1]:
                # the hot path, inlined: most lines of a warm tree end here
                cluster.count += 1
                cluster.last_seq = tree.seq
                if ts_us or len(cluster.samples) < self.config.max_samples:
                    cluster.count -= 1
                    self._seen(tree, cluster, message, ts_us)
                return PatternMatch(fast[0], fast[4], [message[a:b] for a, b in fast[2]], list(fast[3]), False)
        masked, exact = self._mask.mask(message, key)
        created = self._stats["clusters_created"]
        cid = tree.signatures.get(masked)
        cluster = tree.clusters.get(self._resolve(cid)) if cid is not None else None
        if cluster is None:
            masked, tokens = self._tokens(masked)
            cluster = self._find(tree, tokens, learn=True)
            if cluster is None:
                cluster = self._create(tree, tokens)
            if len(tree.signatures) >= self.config.max_signatures:
                tree.signatures.clear()
                self._stats["signatures_flushed"] += 1
            tree.signatures[masked] = cluster.id
        if cluster.locked:
            routed = self._route_split(tree, cluster, message, learn=True)
            if routed is not None and routed is not cluster:
                cluster, exact = routed, False  # the value decides: no reuse by shape
        self._seen(tree, cluster, message, ts_us)
        is_new = self._stats["clusters_created"] != created and cluster.count == 1
        return self._result(tree, cluster, message, is_new, key if exact else None)

    def add_many(self, items: Iterable[tuple[str, str, str, int]]) -> list[tuple[int, list[str], PatternMatch | None]]:
        """``add`` over ``(message, tenant, service, ts_us)`` items, in order, with the same effects.

        The ingest path's batch form: a line of a shape already seen (most lines) costs one dict
        lookup and builds no ``PatternMatch``; it gives ``(pattern id, variables, None)``. The
        other lines go through ``add`` and give ``(pattern id, variables, their match)``."""
        out: list[tuple[int, list[str], PatternMatch | None]] = []
        append = out.append
        trees = self._trees
        max_samples = self.config.max_samples
        tree: _Tree | None = None
        last_tenant: str | None = None
        last_service: str | None = None
        for message, tenant, service, ts_us in items:
            if tenant != last_tenant or service != last_service:
                tree = trees.get((tenant, service))
                last_tenant, last_service = tenant, service
            if tree is not None:
                fast = tree.fast.get(message.encode("utf-8", "surrogatepass").translate(_SHAPE_TABLE))
                if fast is not None:
                    cluster = tree.clusters.get(fast[0])
                    if cluster is not None and cluster.version == fast[1]:
                        # add's hot path and _seen, inlined
                        tree.seq += 1
                        cluster.count += 1
                        cluster.last_seq = tree.seq
                        if ts_us:
                            if not cluster.first_seen_us or ts_us < cluster.first_seen_us:
                                cluster.first_seen_us = ts_us
                            if ts_us > cluster.last_seen_us:
                                cluster.last_seen_us = ts_us
                        if len(cluster.samples) < max_samples and message[:1000] not in cluster.samples:
                            cluster.samples.append(message[:1000])
                        # the variables in one C call (an itemgetter of slices; see _result)
                        n = fast[6]
                        append((fast[0], list(fast[5](message)) if n > 1 else [fast[5](message)] if n else [], None))
                        continue
            match = self.add(message, tenant=tenant, service=service, ts_us=ts_us)
            append((match.pattern_id, match.variables, match))
            last_tenant = None  # add may have created or evicted trees: look it up again
        return out

    def _seen(self, tree: _Tree, cluster: _Cluster, message: str, ts_us: int) -> None:
        cluster.count += 1
        cluster.last_seq = tree.seq
        if ts_us:
            if not cluster.first_seen_us or ts_us < cluster.first_seen_us:
                cluster.first_seen_us = ts_us
            if ts_us > cluster.last_seen_us:
                cluster.last_seen_us = ts_us
        if len(cluster.samples) < self.config.max_samples and message[:1000] not in cluster.samples:
            cluster.samples.append(message[:1000])

    def match(self, message: str, *, tenant: str = "default", service: str = "") -> PatternMatch | None:
        """The pattern ``message`` belongs to, without learning; None when nothing fits."""
        tree = self._trees.get((tenant, service))
        if tree is None:
            return None
        key = message.encode("utf-8", "surrogatepass").translate(_SHAPE_TABLE)
        fast = tree.fast.get(key)
        if fast is not None:
            cluster = tree.clusters.get(fast[0])
            if cluster is not None and cluster.version == fast[1]:
                return PatternMatch(fast[0], fast[4], [message[a:b] for a, b in fast[2]], list(fast[3]), False)
        masked, exact = self._mask.mask(message, key)
        cid = tree.signatures.get(masked)
        cluster = tree.clusters.get(self._resolve(cid)) if cid is not None else None
        if cluster is None:
            masked, tokens = self._tokens(masked)
            cluster = self._find(tree, tokens, learn=False)
            if cluster is None:
                return None
        if cluster.locked:
            routed = self._route_split(tree, cluster, message, learn=False)
            if routed is None:
                return None
            if routed is not cluster:
                cluster, exact = routed, False
        return self._result(tree, cluster, message, False, key if exact else None)

    def patterns(self, tenant: str = "default", service: str | None = None) -> list[Pattern]:
        """Patterns of a tenant (one service, or all when ``service`` is None), most frequent first."""
        out: list[Pattern] = []
        for (t, s), tree in self._trees.items():
            if t != tenant or (service is not None and s != service):
                continue
            for c in tree.clusters.values():
                out.append(
                    Pattern(
                        pattern_id=c.id,
                        tenant=t,
                        service=s,
                        template=c.template,
                        name=self._names.get(c.id, ""),
                        count=c.count,
                        first_seen_us=c.first_seen_us,
                        last_seen_us=c.last_seen_us,
                        samples=list(c.samples),
                    )
                )
        out.sort(key=lambda p: (-p.count, p.template))
        return out

    def stats(self) -> dict[str, int]:
        s = dict(self._stats)
        s["lines"] = sum(t.seq for t in self._trees.values())
        s["trees"] = len(self._trees)
        s["clusters"] = sum(len(t.clusters) for t in self._trees.values())
        s["signatures"] = sum(len(t.signatures) for t in self._trees.values())
        s["aliases"] = len(self._aliases)
        return s

    def resolve(self, pattern_id: int) -> int:
        """The id a pattern is known by now (after merges)."""
        return self._resolve(pattern_id)

    # --- corrections ----------------------------------------------------------------------------
    def rename(self, pattern_id: int, name: str) -> None:
        cluster, _ = self._locate(pattern_id)
        self._names[cluster.id] = name
        cluster.name = name

    def merge(self, ids: list[int]) -> int:
        """Merge patterns of one tree into the first; returns the surviving id."""
        if not ids:
            raise ValueError("merge needs at least one pattern id")
        survivor, tree = self._locate(ids[0])
        for other_id in ids[1:]:
            other, other_tree = self._locate(other_id)
            if other is survivor:
                continue
            if other_tree is not tree:
                raise ValueError("patterns of different tenants or services cannot be merged")
            self._absorb(tree, survivor, other, generalise=True)
        self._stats["merges"] += 1
        return survivor.id

    def split(self, pattern_id: int, position: int) -> list[int]:
        """Undo the generalisation at token ``position``: lines are re-learned with the value kept.

        Returns the id of the (now locked) pattern; new patterns appear as lines arrive.
        """
        cluster, tree = self._locate(pattern_id)
        if not 0 <= position < len(cluster.tokens):
            raise ValueError(f"position {position} is outside the template")
        cluster.locked.add(position)
        cluster.touch()
        for sig in [s for s, cid in tree.signatures.items() if self._resolve(cid) == cluster.id]:
            del tree.signatures[sig]
        return [cluster.id]

    def _route_split(self, tree: _Tree, cluster: _Cluster, message: str, *, learn: bool) -> _Cluster | None:
        """Lines of a pattern split at a position go to one child pattern per value there."""
        positions = [p for p in sorted(cluster.locked) if cluster.tokens[p] == WILDCARD]
        if not positions:
            return cluster
        m = cluster.regex().match(message)
        if m is None:
            return cluster
        groups = m.groups()
        tokens = list(cluster.tokens)
        for p in positions:
            index = sum(t.count(WILDCARD) for t in cluster.tokens[:p])
            if index < len(groups):
                tokens[p] = groups[index]
        key = (cluster.id, tuple(tokens[p] for p in positions))
        child_id = tree.splits.get(key)
        child = tree.clusters.get(self._resolve(child_id)) if child_id is not None else None
        if child is None:
            if not learn:
                return None
            child = self._create(tree, tokens)
            child.locked = set(positions)
            tree.splits[key] = child.id
        return child

    # --- state ------------------------------------------------------------------------------------
    def export_state(self) -> dict[str, Any]:
        trees = []
        for (tenant, service), tree in self._trees.items():
            trees.append(
                {
                    "tenant": tenant,
                    "service": service,
                    "seq": tree.seq,
                    "clusters": [
                        {
                            "id": format(c.id, "016x"),
                            "tokens": c.tokens,
                            "count": c.count,
                            "first_seen_us": c.first_seen_us,
                            "last_seen_us": c.last_seen_us,
                            "last_seq": c.last_seq,
                            "samples": c.samples,
                            "locked": sorted(c.locked),
                            "multi": sorted(c.multi),
                        }
                        for c in tree.clusters.values()
                    ],
                    "splits": [
                        [format(cid, "016x"), list(values), format(child, "016x")]
                        for (cid, values), child in tree.splits.items()
                    ],
                    "variants": [
                        [format(cid, "016x"), pos, {w: format(v, "016x") for w, v in words.items()}]
                        for (cid, pos), words in tree.variants.items()
                    ],
                }
            )
        return {
            "version": STATE_VERSION,
            "config": {k: getattr(self.config, k) for k in MinerConfig.__dataclass_fields__},
            "aliases": {format(k, "016x"): format(v, "016x") for k, v in self._aliases.items()},
            "names": {format(k, "016x"): v for k, v in self._names.items()},
            "trees": trees,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PatternMiner:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported miner state version {state.get('version')!r}")
        known = MinerConfig.__dataclass_fields__
        miner = cls(MinerConfig(**{k: v for k, v in state.get("config", {}).items() if k in known}))
        miner._aliases = {int(k, 16): int(v, 16) for k, v in state.get("aliases", {}).items()}
        miner._names = {int(k, 16): str(v) for k, v in state.get("names", {}).items()}
        for t in state.get("trees", []):
            tree = miner._tree(str(t["tenant"]), str(t["service"]))
            tree.seq = int(t.get("seq", 0))
            for c in t["clusters"]:
                cluster = _Cluster(
                    id=int(c["id"], 16),
                    tokens=[str(x) for x in c["tokens"]],
                    count=int(c["count"]),
                    first_seen_us=int(c["first_seen_us"]),
                    last_seen_us=int(c["last_seen_us"]),
                    last_seq=int(c.get("last_seq", 0)),
                    samples=[str(x) for x in c["samples"]],
                    locked={int(x) for x in c.get("locked", [])},
                    multi={int(x) for x in c.get("multi", [])},
                )
                cluster.name = miner._names.get(cluster.id, "")
                tree.clusters[cluster.id] = cluster
                tree.by_len.setdefault(len(cluster.tokens), []).append(cluster)
            for cid, values, child in t.get("splits", []):
                tree.splits[(int(cid, 16), tuple(str(v) for v in values))] = int(child, 16)
            for cid, pos, words in t.get("variants", []):
                key = (int(cid, 16), int(pos))
                tree.variants[key] = {str(w): int(v, 16) for w, v in words.items()}
                for w in tree.variants[key]:
                    tree.word_index.setdefault(w, set()).add(key)
        return miner

    # --- internals ----------------------------------------------------------------------------------
    def _tree(self, tenant: str, service: str) -> _Tree:
        key = (tenant, service)
        tree = self._trees.get(key)
        if tree is None:
            if len(self._trees) >= self.config.max_trees:
                # the tree touched longest ago goes (dicts keep insertion order; re-insert on use)
                oldest = next(iter(self._trees))
                del self._trees[oldest]
                self._stats["trees_evicted"] += 1
            tree = _Tree(tenant, service)
            self._trees[key] = tree
        return tree

    def _tokens(self, masked: str) -> tuple[str, list[str]]:
        tokens = masked.split()
        limit = self.config.max_tokens
        if len(tokens) > limit:
            tokens = [*tokens[: limit - 1], WILDCARD]
            masked = " ".join(tokens)
        elif not tokens:
            tokens = [""]
        return masked, tokens

    def _resolve(self, cid: int | None) -> int:
        if cid is None:
            return 0
        if cid not in self._aliases:
            return cid
        seen = 0
        while cid in self._aliases and seen < 64:
            cid = self._aliases[cid]
            seen += 1
        return cid

    def _locate(self, pattern_id: int) -> tuple[_Cluster, _Tree]:
        pid = self._resolve(pattern_id)
        for tree in self._trees.values():
            cluster = tree.clusters.get(pid)
            if cluster is not None:
                return cluster, tree
        raise KeyError(f"unknown pattern {pattern_id:016x}")

    def _compare(self, cluster: _Cluster, tokens: list[str]) -> tuple[int, int, list[int]] | None:
        """(constant matches, constants in template, word-difference positions), or None if unfit."""
        matches = 0
        constants = 0
        words: list[int] = []
        locked = cluster.locked
        for i, (a, b) in enumerate(zip(cluster.tokens, tokens, strict=True)):
            if a == WILDCARD:
                if i in locked and b != WILDCARD:
                    return None
                continue
            constants += 1
            if a == b:
                matches += 1
            elif _token_merge(a, b) is None:
                words.append(i)
                if len(words) > 1:
                    return None
            elif i in locked:
                return None
        return matches, constants, words

    def _find(self, tree: _Tree, tokens: list[str], *, learn: bool) -> _Cluster | None:
        best: _Cluster | None = None
        best_key = (-1, 0)
        near: tuple[_Cluster, int] | None = None
        n = len(tokens)
        candidates = tree.by_len.get(n, ())
        if n == 1 and _DIGIT.search(tokens[0]) and not _PIECES.search(tokens[0]):
            # A lone token with digits (and no punctuation that would make it a compound) fits only
            # the same token or a bare <*>: against any other one-token template it merges to <*>,
            # which keeps none of the template's one constant, and a line must match half of them; nor
            # can it be a word variant (it always merges). Without this shortcut a stream of unique
            # one-token lines (``req-8f3a01``) compared each line with every one of them: quadratic,
            # 27 s for 4,000 lines; now 0.4 s.
            token = tokens[0]
            candidates = [c for c in candidates if c.tokens[0] == token or c.tokens[0] == WILDCARD]
        for cluster in candidates:
            res = self._compare(cluster, tokens)
            if res is None:
                continue
            matches, constants, words = res
            if constants and matches < self.config.min_constant_share * constants:
                continue
            if n > 1 and constants and matches == 0:
                continue
            if words:
                # one plain word differs and everything else fits: a candidate enumeration
                if matches + 1 >= constants and (near is None or (cluster.id, words[0]) in tree.variants):
                    near = (cluster, words[0])
                continue
            key = (matches, -cluster.id)
            if key > best_key:
                best, best_key = cluster, key
        if best is not None:
            if learn:
                self._generalise(tree, best, tokens)
            return best
        if near is not None:
            cluster, pos = near
            if not learn:
                return None
            return self._word_variant(tree, cluster, pos, tokens)
        return self._find_span(tree, tokens, learn=learn)

    def _find_span(self, tree: _Tree, tokens: list[str], *, learn: bool) -> _Cluster | None:
        """Clusters of another length that differ by one variable span of several tokens."""
        n = len(tokens)
        for length, clusters in tree.by_len.items():
            if length == n or abs(length - n) > 8:
                continue
            for cluster in clusters:
                t = cluster.tokens
                p = 0
                limit = min(length, n)
                while p < limit and (t[p] == tokens[p] or (t[p] == WILDCARD and p not in cluster.multi)):
                    p += 1
                s = 0
                while (
                    s < limit - p and (t[length - 1 - s] == tokens[n - 1 - s]) and (length - 1 - s) not in cluster.multi
                ):
                    s += 1
                while p and t[p - 1] == WILDCARD and tokens[p - 1] == WILDCARD:
                    p -= 1
                while s and t[length - s] == WILDCARD and tokens[n - s] == WILDCARD:
                    s -= 1
                span_t = t[p : length - s]
                span_l = tokens[p : n - s]
                constants = sum(1 for x in t[:p] if x != WILDCARD) + sum(1 for x in t[length - s :] if x != WILDCARD)
                if not span_t or not span_l or constants < 2:
                    continue
                if not (span_t == [WILDCARD] or all(_variable_like(x) for x in span_t)):
                    continue
                if not all(_variable_like(x) for x in span_l):
                    continue
                if not learn:
                    return cluster
                new_tokens = [*t[:p], WILDCARD, *t[length - s :]]
                self._retokenise(tree, cluster, new_tokens, multi_at=p)
                return cluster
        return None

    def _retokenise(self, tree: _Tree, cluster: _Cluster, new_tokens: list[str], *, multi_at: int) -> None:
        old_len = len(cluster.tokens)
        if len(new_tokens) != old_len:
            tree.by_len[old_len].remove(cluster)
            tree.by_len.setdefault(len(new_tokens), []).append(cluster)
            shift = len(new_tokens) - old_len
            cluster.multi = {i if i < multi_at else i + shift for i in cluster.multi if i != multi_at}
            cluster.locked = {i if i < multi_at else i + shift for i in cluster.locked}
        cluster.multi.add(multi_at)
        cluster.tokens = new_tokens
        cluster.touch()
        self._absorb_subsumed(tree, cluster)

    def _generalise(self, tree: _Tree, cluster: _Cluster, tokens: list[str]) -> None:
        changed = False
        for i, (a, b) in enumerate(zip(cluster.tokens, tokens, strict=True)):
            if a != b and a != WILDCARD:
                merged = _token_merge(a, b) or WILDCARD
                if merged != a:
                    cluster.tokens[i] = merged
                    changed = True
        if changed:
            cluster.touch()
            self._absorb_subsumed(tree, cluster)

    def _word_variant(self, tree: _Tree, cluster: _Cluster, pos: int, tokens: list[str]) -> _Cluster:
        """A line differing from ``cluster`` by one plain word at ``pos``: a new sibling, until the
        position has shown enough different words to be a variable."""
        key = (cluster.id, pos)
        word = tokens[pos]
        words = tree.variants.get(key)
        if words is not None and word in words and words[word] in tree.clusters:
            sibling = tree.clusters[words[word]]
            self._generalise(tree, sibling, tokens)
            return sibling
        sibling = self._create(tree, tokens)
        # The first token names the event's subject ("cupsd startup succeeded"): never a variable.
        if pos == 0 and len(tokens) > 1:
            return sibling
        if words is None:
            words = tree.variants[key] = {cluster.tokens[pos]: cluster.id}
            tree.word_index.setdefault(cluster.tokens[pos], set()).add(key)
        words[word] = sibling.id
        tree.word_index.setdefault(word, set()).add(key)
        if len(words) >= self.config.min_word_variants:
            return self._collapse_variants(tree, key) or sibling
        # The same words varying in two different events (user names in "session opened for user X"
        # and "session closed for user X") are values, not a small enumeration of events.
        for other_key in list(tree.word_index.get(word, ())):
            if other_key == key or other_key not in tree.variants:
                continue
            shared = words.keys() & tree.variants[other_key].keys()
            if len(shared) >= self.config.min_shared_variants:
                self._collapse_variants(tree, other_key)
                return self._collapse_variants(tree, key) or sibling
        return sibling

    def _collapse_variants(self, tree: _Tree, key: tuple[int, int]) -> _Cluster | None:
        words = tree.variants.pop(key)
        for word in words:
            keys = tree.word_index.get(word)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del tree.word_index[word]
        cid, pos = key
        cluster = tree.clusters.get(self._resolve(cid))
        if cluster is None or pos in cluster.locked:
            return None
        cluster.tokens[pos] = _common_shape(list(words))
        cluster.touch()
        for sibling_id in words.values():
            sibling = tree.clusters.get(self._resolve(sibling_id))
            if sibling is not None and sibling is not cluster and len(sibling.tokens) == len(cluster.tokens):
                self._absorb(tree, cluster, sibling, generalise=True)
        self._absorb_subsumed(tree, cluster)
        return cluster

    def _absorb_subsumed(self, tree: _Tree, cluster: _Cluster) -> None:
        """After a template generalised, other clusters it now covers join it."""
        for other in list(tree.by_len.get(len(cluster.tokens), ())):
            if other is cluster:
                continue
            if all(a in (b, WILDCARD) for a, b in zip(cluster.tokens, other.tokens, strict=True)):
                self._absorb(tree, cluster, other, generalise=False)

    def _absorb(self, tree: _Tree, survivor: _Cluster, other: _Cluster, *, generalise: bool) -> None:
        if generalise:
            if len(other.tokens) == len(survivor.tokens):
                survivor.tokens = [
                    a if a == b else (_token_merge(a, b) or WILDCARD)
                    for a, b in zip(survivor.tokens, other.tokens, strict=True)
                ]
            else:
                a, b = survivor.tokens, other.tokens
                p = 0
                while p < min(len(a), len(b)) and a[p] == b[p]:
                    p += 1
                s = 0
                while s < min(len(a), len(b)) - p and a[-1 - s] == b[-1 - s]:
                    s += 1
                new_tokens = [*a[:p], WILDCARD, *a[len(a) - s :]]
                tree.by_len[len(a)].remove(survivor)
                tree.by_len.setdefault(len(new_tokens), []).append(survivor)
                survivor.tokens = new_tokens
                survivor.multi = {p}
            survivor.touch()
        survivor.count += other.count
        if other.first_seen_us and (not survivor.first_seen_us or other.first_seen_us < survivor.first_seen_us):
            survivor.first_seen_us = other.first_seen_us
        survivor.last_seen_us = max(survivor.last_seen_us, other.last_seen_us)
        survivor.last_seq = max(survivor.last_seq, other.last_seq)
        for sample in other.samples:
            if len(survivor.samples) < self.config.max_samples and sample not in survivor.samples:
                survivor.samples.append(sample)
        self._alias(other.id, survivor.id)
        del tree.clusters[other.id]
        tree.by_len[len(other.tokens)].remove(other)

    def _create(self, tree: _Tree, tokens: list[str]) -> _Cluster:
        if len(tree.clusters) >= self.config.max_clusters:
            self._evict(tree)
        cid = _stable_id(tree.tenant, tree.service, " ".join(tokens))
        salt = 0
        while cid in tree.clusters or cid in self._aliases:
            salt += 1
            cid = _stable_id(tree.tenant, tree.service, " ".join(tokens), str(salt))
        cluster = _Cluster(id=cid, tokens=list(tokens), last_seq=tree.seq)
        tree.clusters[cid] = cluster
        tree.by_len.setdefault(len(tokens), []).append(cluster)
        self._stats["clusters_created"] += 1
        return cluster

    def _alias(self, old: int, new: int) -> None:
        if old not in self._aliases and len(self._aliases) >= self.config.max_aliases:
            self._evict_aliases()
        self._aliases[old] = new

    def _evict_aliases(self) -> None:
        """Make room: first aliases leading to no live pattern, then the oldest tenth (insertion order).
        A line of a forgotten merge then makes its own pattern again, under its old stable id."""
        live = {cid for tree in self._trees.values() for cid in tree.clusters}
        dead = [k for k in self._aliases if self._resolve(k) not in live]
        if len(self._aliases) - len(dead) >= self.config.max_aliases:
            gone = set(dead)
            keep = [k for k in self._aliases if k not in gone]
            dead.extend(keep[: max(1, len(self._aliases) // 10)])
        for k in dead:
            self._aliases.pop(k, None)
        self._stats["aliases_evicted"] += len(dead)

    def _evict(self, tree: _Tree) -> None:
        # Drop the least recently seen tenth in one go so eviction cost is amortised.
        victims = sorted(tree.clusters.values(), key=lambda c: c.last_seq)
        for victim in victims[: max(1, len(victims) // 10)]:
            del tree.clusters[victim.id]
            tree.by_len[len(victim.tokens)].remove(victim)
            self._stats["clusters_evicted"] += 1
        live = tree.clusters
        for sig in [s for s, cid in tree.signatures.items() if self._resolve(cid) not in live]:
            del tree.signatures[sig]
        for split_key in [k for k, child in tree.splits.items() if k[0] not in live or child not in live]:
            del tree.splits[split_key]
        for key in [k for k in tree.variants if k[0] not in live]:
            for word in tree.variants.pop(key):
                tree.word_index.get(word, set()).discard(key)

    def _result(self, tree: _Tree, cluster: _Cluster, message: str, is_new: bool, key: bytes | None) -> PatternMatch:
        spans: list[tuple[int, int]] = []
        template = cluster.template
        # Very long lines or templates with very many variables are not split: the lazy groups could
        # backtrack for long; the pattern id and template are still exact.
        if WILDCARD in template and len(message) <= _MAX_EXTRACT_CHARS and template.count(WILDCARD) <= 128:
            m = cluster.regex().match(message)
            if m is not None:
                limit = self.config.max_variable_chars
                spans = [(a, min(b, a + limit)) for a, b in (m.span(i) for i in range(1, m.re.groups + 1))]
        variables = [message[a:b] for a, b in spans]
        types = [value_type(v) for v in variables]
        if key is not None:
            if len(tree.fast) >= self.config.max_signatures:
                tree.fast.clear()
            getter = operator.itemgetter(*(slice(a, b) for a, b in spans)) if spans else _no_variables
            tree.fast[key] = (cluster.id, cluster.version, spans, types, template, getter, len(spans))
        return PatternMatch(cluster.id, template, variables, list(types), is_new)
