"""Where pull sources keep their position: a JSON file (standalone) or the metadata store (serve).

A checkpoint is one JSON-able dict per source id, replaced whole. Writes are atomic: the file
store writes a temporary file, fsyncs it and renames it over the old one, so a ``kill -9``
leaves either the old or the new checkpoint, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson

if TYPE_CHECKING:
    from logloupe.store.meta import MetaStore


class Checkpoints(Protocol):
    def load(self, source_id: str) -> dict[str, Any] | None: ...

    def save(self, source_id: str, state: dict[str, Any]) -> None: ...


class FileCheckpoints:
    """All sources' checkpoints in one JSON file, rewritten atomically on each save."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._data: dict[str, Any] = {}
        with contextlib.suppress(FileNotFoundError):
            loaded = orjson.loads(path.read_bytes())
            if isinstance(loaded, dict):
                self._data = loaded

    def load(self, source_id: str) -> dict[str, Any] | None:
        with self._lock:
            value = self._data.get(source_id)
        return dict(value) if isinstance(value, dict) else None

    def save(self, source_id: str, state: dict[str, Any]) -> None:
        with self._lock:
            self._data[source_id] = state
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as fh:
                fh.write(orjson.dumps(self._data))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


class MetaCheckpoints:
    """Checkpoints in the metadata database (table ``source_checkpoints``)."""

    def __init__(self, meta: MetaStore) -> None:
        self.meta = meta

    def load(self, source_id: str) -> dict[str, Any] | None:
        return self.meta.get_checkpoint(source_id)

    def save(self, source_id: str, state: dict[str, Any]) -> None:
        self.meta.set_checkpoint(source_id, state)
