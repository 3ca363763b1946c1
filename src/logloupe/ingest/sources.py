"""What every pull source shares: a status the API and metrics read, running it in a thread, and
(``PolledSource``) the cloud pollers' pending-batch checkpointing.

A source is anything with ``id``, ``kind``, ``step() -> bool`` (one unit of work; true when it
delivered something), ``status`` and ``close()``. ``SourceRunner`` calls ``step`` until stopped,
sleeping ``idle_s`` when a step found nothing, and records failures without dying.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import tomllib
import uuid
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from logloupe.errors import InvalidInput
from logloupe.ingest.checkpoints import Checkpoints
from logloupe.ingest.sinks import Batch, Sink, SinkError, send_with_retry
from logloupe.metrics import SOURCE_ERRORS, SOURCE_EVENTS, SOURCE_LAG_SECONDS, SOURCE_POSITION

if TYPE_CHECKING:
    from logloupe.ingest.tail import TailInput

log = logging.getLogger(__name__)


@dataclass
class SourceStatus:
    id: str
    kind: str
    state: str = "starting"  # starting, running, retrying, stopped, failed
    last_read_at: float | None = None
    last_ack_at: float | None = None
    events_total: int = 0
    batches_total: int = 0
    errors_total: int = 0
    last_error: str = ""
    last_error_at: float | None = None
    lag: dict[str, Any] = field(default_factory=dict)
    position: dict[str, Any] = field(default_factory=dict)

    def error(self, kind: str, message: str) -> None:
        self.errors_total += 1
        self.last_error = message[:500]
        self.last_error_at = time.time()
        SOURCE_ERRORS.labels(self.id, kind).inc()

    def caught_up_to(self, high_s: float | None, position: dict[str, Any]) -> None:
        """A time-ordered source read everything up to ``high_s`` (epoch seconds; None: nothing yet)."""
        SOURCE_POSITION.labels(self.id).set(high_s or 0.0)
        lag = max(0.0, time.time() - high_s) if high_s else 0.0
        SOURCE_LAG_SECONDS.labels(self.id).set(lag)
        self.lag = {"seconds": round(lag, 3)}
        self.position = position

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.state,
            "last_read_at": self.last_read_at,
            "last_ack_at": self.last_ack_at,
            "events_total": self.events_total,
            "batches_total": self.batches_total,
            "errors_total": self.errors_total,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "lag": self.lag,
            "position": self.position,
        }


class PolledSource:
    """What the cloud pollers share: a batch is written into the checkpoint as pending before it is
    sent, and the positions move only after the sink acknowledges it. After a crash, ``_recover``
    asks the sink whether the pending batch was stored, and advances past it if so: no duplicates,
    no gaps. Subclasses keep their own positions (``_advance``) and checkpoint (``_save``)."""

    kind = ""
    pending_key = ""  # where the pending batch's positions sit in the checkpoint
    id: str
    sink: Sink
    status: SourceStatus
    stopping: threading.Event
    _pending: dict[str, Any] | None

    def _save(self, pending: dict[str, Any] | None = None) -> None:
        raise NotImplementedError

    def _advance(self, positions: list[Any]) -> None:
        raise NotImplementedError

    def _recover(self) -> bool:
        if not self._pending:
            return True
        try:
            stored = self.sink.has_batch(str(self._pending["id"]))
        except SinkError as exc:
            self.status.error("sink", exc.message)
            self.status.state = "retrying"
            return False
        if stored:
            self._advance(self._pending[self.pending_key])
        self._pending = None
        self._save()
        return True

    def _deliver(self, records: list[dict[str, Any]], positions: list[Any]) -> bool:
        """Sends ``records`` as one batch and advances past ``positions``; False when stopping first."""
        batch = Batch(uuid.uuid4().hex, self.id, records)
        self._save({"id": batch.id, self.pending_key: positions})

        def failed(exc: SinkError) -> None:
            self.status.error("sink", exc.message)
            self.status.state = "retrying"

        if send_with_retry(self.sink, batch, stopping=self.stopping.is_set, on_error=failed) is None:
            return False
        self._advance(positions)
        self.status.events_total += len(records)
        self.status.batches_total += 1
        self.status.last_ack_at = time.time()
        SOURCE_EVENTS.labels(self.id).inc(len(records))
        return True

    def close(self) -> None:
        self.sink.close()


class Source(Protocol):
    id: str
    kind: str
    status: SourceStatus
    idle_s: float
    stopping: threading.Event

    def step(self) -> bool: ...

    def close(self) -> None: ...


class SourceRunner:
    """One daemon thread per source; ``stop`` ends it after the current step."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.stopping = source.stopping
        self._thread = threading.Thread(target=self._run, name=f"source-{source.id}", daemon=True)

    def start(self) -> SourceRunner:
        self._thread.start()
        return self

    def _run(self) -> None:
        src = self.source
        delay = 1.0
        while not self.stopping.is_set():
            try:
                busy = src.step()
                delay = 1.0
            except Exception as exc:  # a source must keep trying, and say why it could not
                log.exception("source %s failed a step", src.id)
                src.status.error("step", f"{type(exc).__name__}: {exc}")
                src.status.state = "retrying"
                self.stopping.wait(delay)
                delay = min(60.0, delay * 2)
                continue
            if not busy:
                self.stopping.wait(src.idle_s)
        src.status.state = "stopped"

    def stop(self, timeout_s: float = 30.0) -> None:
        self.stopping.set()
        self._thread.join(timeout_s)
        self.source.close()


# -- configuration: [[sources]] tables → source objects ------------------------------------

KINDS = ("tail", "cloudwatch", "azure")
_COMMON = {"type", "name", "tenant", "enabled"}


def load_specs(inline: list[dict[str, Any]], file: Path | None) -> list[dict[str, Any]]:
    """The ``sources`` setting plus the tables of ``sources_file``; names must be unique."""
    specs = [dict(s) for s in inline]
    if file is not None:
        try:
            data = tomllib.loads(file.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise InvalidInput(f"cannot read sources file {file}: {exc}") from None
        specs += [dict(s) for s in data.get("sources", [])]
    names = [str(s.get("name", "")) for s in specs]
    for spec, name in zip(specs, names, strict=True):
        if not name:
            raise InvalidInput(f"a source needs a name: {spec}")
        if spec.get("type") not in KINDS:
            raise InvalidInput(f"source {name!r}: type must be one of {', '.join(KINDS)}")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InvalidInput(f"source names must be unique: {dup}")
    return [s for s in specs if s.get("enabled", True)]


def _options(cls: Any, spec: dict[str, Any], skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(spec) - known - _COMMON - skip)
    if unknown:
        raise InvalidInput(f"source {spec.get('name')!r}: unknown options {unknown}")
    return {k: v for k, v in spec.items() if k in known}


TAIL_INPUT_KEYS = frozenset({"paths", "service", "host", "labels", "exclude", "inputs"})
_ONE_INPUT_KEYS = TAIL_INPUT_KEYS - {"inputs"}


def _tail_input(table: dict[str, Any], where: str) -> TailInput:
    from logloupe.ingest.tail import TailInput

    unknown = sorted(set(table) - _ONE_INPUT_KEYS)
    if unknown:
        raise InvalidInput(f"{where}: unknown input options {unknown}")
    paths = table.get("paths")
    if isinstance(paths, str):
        paths = [paths]
    if not paths or not isinstance(paths, list):
        raise InvalidInput(f"{where}: tail needs `paths`")
    labels = table.get("labels", {})
    if not isinstance(labels, dict):
        raise InvalidInput(f"{where}: `labels` must be a table of KEY = VALUE")
    return TailInput(
        [str(p) for p in paths],
        service=str(table.get("service", "")),
        host=str(table.get("host", "")),
        labels={str(k): str(v) for k, v in labels.items()},
        exclude=[str(x) for x in table.get("exclude", [])],
    )


def tail_inputs_of(spec: dict[str, Any], where: str) -> list[TailInput]:
    """A tail's inputs: its own ``paths`` (with ``service``, ``host``, ``labels``, ``exclude``), and/or
    ``[[…inputs]]`` tables with the same keys, so each path can carry its own service, host and labels."""
    out = []
    if spec.get("paths"):
        out.append(_tail_input({k: v for k, v in spec.items() if k in _ONE_INPUT_KEYS}, where))
    tables = spec.get("inputs", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise InvalidInput(f"{where}: `inputs` must be [[inputs]] tables")
    out += [_tail_input(t, f"{where}, input {i + 1}") for i, t in enumerate(tables)]
    if not out:
        raise InvalidInput(f"{where}: tail needs `paths` or [[inputs]] tables")
    return out


def build_source(spec: dict[str, Any], sink: Sink, checkpoints: Checkpoints) -> Source:
    """One configured source; InvalidInput names what is wrong with its table."""
    name = str(spec["name"])
    kind = spec["type"]
    try:
        if kind == "tail":
            from logloupe.ingest.tail import FileTailer, TailConfig

            options = _options(TailConfig, spec, skip=TAIL_INPUT_KEYS)
            options.pop("inputs", None)
            tail_inputs = tail_inputs_of(spec, f"source {name!r}")
            start = options.get("multiline_start")
            if isinstance(start, str):
                try:
                    options["multiline_start"] = re.compile(start)
                except re.error as exc:
                    raise InvalidInput(f"source {name!r}: multiline_start is not a regular expression: {exc}") from None
            return FileTailer(TailConfig(inputs=tail_inputs, **options), sink, checkpoints, source_id=name)
        if kind == "cloudwatch":
            from logloupe.ingest.cloudwatch import CloudWatchConfig, CloudWatchPoller

            return CloudWatchPoller(
                CloudWatchConfig(**_options(CloudWatchConfig, spec)), sink, checkpoints, source_id=name
            )
        from logloupe.ingest.azure import AzureConfig, AzureMonitorPoller

        return AzureMonitorPoller(AzureConfig(**_options(AzureConfig, spec)), sink, checkpoints, source_id=name)
    except TypeError as exc:
        raise InvalidInput(f"source {name!r}: {exc}") from None
