"""Enrichment before storage: each event gets its pattern id, the pattern's variables, and a class.

One ``Enricher`` per server process: the template miner learns online per (tenant, service),
its state is saved as JSON (never pickled) under the data directory so pattern ids survive a
restart, and new patterns are reported to listeners (the patterns table, alerting).
Classification runs once per (pattern, level), not once per event: a pattern's lines share a class.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from logloupe.analyse.classify import Classifier
from logloupe.model import EventColumns, Level, LogEvent
from logloupe.parse.patterns import PatternMatch, PatternMiner

log = logging.getLogger(__name__)

NewPatternListener = Callable[[LogEvent, PatternMatch], None]
# Called once per enriched batch with every new pattern of it (may be empty: not called then).
NewPatternsListener = Callable[[list[tuple[LogEvent, PatternMatch]]], None]
CLASS_CACHE_MAX = 200_000


class Enricher:
    def __init__(
        self, state_path: Path | None = None, classifier: Classifier | None = None, data_dir: Path | None = None
    ) -> None:
        self.state_path = state_path
        self.miner = self._load(state_path)
        self.classifier = classifier if classifier is not None else Classifier.default()
        # A tenant's own model (``logloupe train-classifier --tenant``) replaces the default for it.
        self.data_dir = data_dir
        self._classifiers: dict[str, Classifier] = {}
        self.listeners: list[NewPatternListener] = []
        self.batch_listeners: list[NewPatternsListener] = []
        self._class_cache: dict[tuple[str, int, int], str] = {}
        # (tenant, pattern id) -> a label that replaces the classifier's (``set_pattern_label``).
        self.pattern_labels: dict[tuple[str, int], str] = {}
        self._lock = threading.Lock()
        self._dirty = 0

    @staticmethod
    def _load(path: Path | None) -> PatternMiner:
        if path is not None and path.exists():
            try:
                return PatternMiner.from_state(json.loads(path.read_text()))
            except (ValueError, KeyError, TypeError):
                # A damaged state file must not stop ingestion: keep it aside and start afresh.
                log.exception("pattern state %s unreadable; kept as .broken, starting afresh", path)
                path.replace(path.with_suffix(".broken"))
        return PatternMiner()

    def enrich(self, events: Sequence[LogEvent]) -> None:
        """Set ``pattern_id``, ``pattern_vars`` and ``classification`` in place; values already set are kept."""
        new: list[tuple[LogEvent, PatternMatch]] = []
        with self._lock:
            todo = [e for e in events if e.message and not e.pattern_id]
            found = self.miner.add_many((e.message, e.tenant, e.service, e.ts_us) for e in todo)
            cache = self._class_cache
            for event, (pattern_id, variables, match) in zip(todo, found, strict=True):
                event.pattern_id = pattern_id
                if match is None:
                    event.pattern_vars = variables  # a fresh list of the fast path, ours alone
                else:
                    event.pattern_vars = list(variables)
                    if match.is_new:
                        new.append((event, match))
                if not event.classification:
                    # Level is an IntEnum: the same key as int(level)
                    label = cache.get((event.tenant, pattern_id, event.level))
                    event.classification = label if label is not None else self._classify(event, pattern_id)
            self._dirty += len(events)
        self._announce(new)

    def _announce(self, new: list[tuple[LogEvent, PatternMatch]]) -> None:
        """Tell the listeners about a batch's new patterns; a failing listener never loses events."""
        for event, match in new:
            for listener in self.listeners:
                try:
                    listener(event, match)
                except Exception:
                    log.exception("new-pattern listener failed")
        if new:
            for batch_listener in self.batch_listeners:
                try:
                    batch_listener(new)
                except Exception:
                    log.exception("new-patterns listener failed")

    def enrich_columns(self, events: EventColumns) -> None:
        """``enrich`` on column lists: the same ids, variables, classes and miner state, and the same
        new-pattern listener calls (with the event built for each new pattern only)."""
        new: list[tuple[int, PatternMatch]] = []
        messages, tenants, levels = events.message, events.tenant, events.level
        ids, variables, classes = events.pattern_id, events.pattern_vars, events.classification
        with self._lock:
            if all(messages) and not any(ids):  # the pipeline's batches: every event
                todo: Sequence[int] = range(len(messages))
                items = zip(messages, tenants, events.service, events.ts_us, strict=True)
            else:
                todo = [i for i, (m, p) in enumerate(zip(messages, ids, strict=True)) if m and not p]
                items = zip(
                    [messages[i] for i in todo],
                    [tenants[i] for i in todo],
                    [events.service[i] for i in todo],
                    [events.ts_us[i] for i in todo],
                    strict=True,
                )
            found = self.miner.add_many(items)
            cache = self._class_cache
            for i, (pattern_id, found_vars, match) in zip(todo, found, strict=True):
                ids[i] = pattern_id
                if match is None:
                    variables[i] = found_vars  # a fresh list of the fast path, ours alone
                else:
                    variables[i] = list(found_vars)
                    if match.is_new:
                        new.append((i, match))
                if not classes[i]:
                    tenant, level = tenants[i], levels[i]
                    label = cache.get((tenant, pattern_id, level))
                    classes[i] = label if label is not None else self._label(tenant, pattern_id, level, messages[i])
            self._dirty += len(events)
        # An event is built only for each new pattern; the batch listeners (the patterns table) too.
        self._announce([(events[i], match) for i, match in new])

    def _classify(self, event: LogEvent, pattern_id: int) -> str:
        return self._label(event.tenant, pattern_id, int(event.level), event.message)

    def _label(self, tenant: str, pattern_id: int, level: int, message: str) -> str:
        key = (tenant, pattern_id, level)
        label = self._class_cache.get(key)
        if label is None:
            label = self.pattern_labels.get((tenant, pattern_id)) or (
                self.classifier_for(tenant).classify(message, Level(level).name).label
            )
            if len(self._class_cache) >= CLASS_CACHE_MAX:
                self._class_cache.clear()
            self._class_cache[key] = label
        return label

    def classifier_for(self, tenant: str) -> Classifier:
        found = self._classifiers.get(tenant)
        if found is None:
            found = self.classifier
            if self.data_dir is not None:
                try:
                    found = Classifier.for_tenant(self.data_dir, tenant)
                except ValueError:  # a tenant id that cannot name a model directory uses the default
                    found = self.classifier
            self._classifiers[tenant] = found
        return found

    def set_pattern_label(self, tenant: str, pattern_id: int, label: str) -> None:
        """A label for every later event of this pattern (an LLM's, ``analyse/llm_patterns.py``),
        in place of the classifier's; the cached classes of the pattern are dropped."""
        with self._lock:
            self.pattern_labels[(tenant, pattern_id)] = label
            for level in Level:
                self._class_cache.pop((tenant, pattern_id, int(level)), None)

    def forget_classifier(self, tenant: str) -> None:
        """After a new model is installed for ``tenant``: load it on next use."""
        with self._lock:
            self._classifiers.pop(tenant, None)
            self._class_cache = {k: v for k, v in self._class_cache.items() if k[0] != tenant}

    def miner_stats(self) -> dict[str, int]:
        """The miner's ``stats()`` (sizes and eviction counts), read under the enrichment lock."""
        with self._lock:
            return self.miner.stats()

    def save(self) -> None:
        """Write the miner's state atomically (temp file + rename)."""
        if self.state_path is None:
            return
        with self._lock:
            state = self.miner.export_state()
            self._dirty = 0
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.state_path)

    def save_if_dirty(self, threshold: int = 10_000) -> None:
        if self._dirty >= threshold:
            self.save()

    # -- user corrections: the miner remembers them (they are part of its saved state) -----------

    def correct(self, tenant: str, known_ids: set[int], action: str, ids: list[int], **args: object) -> list[int]:
        """Apply ``rename`` / ``merge`` / ``split`` to the miner for patterns of ``tenant`` only.

        ``known_ids`` are the tenant's pattern ids (from the patterns table): another tenant's id
        is never touched. Returns the ids the miner reports; nothing when it does not know them
        (a pattern learned before its state was last saved, say).
        """
        if not ids or any(pid not in known_ids for pid in ids):
            return []
        with self._lock:
            try:
                if action == "rename":
                    self.miner.rename(ids[0], str(args.get("name", "")))
                    result = [ids[0]]
                elif action == "merge":
                    result = [self.miner.merge(ids)]
                elif action == "split":
                    position = args.get("position")
                    result = list(self.miner.split(ids[0], int(position))) if isinstance(position, int) else []
                else:
                    raise ValueError(action)
            except (KeyError, ValueError):  # unknown to the miner, or no variable at that position
                return []
            self._dirty += 1
        self.save()
        return result
