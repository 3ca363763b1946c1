"""``logloupe tail``: follow files into a server (or straight into the store when none runs)."""

from __future__ import annotations

import hashlib
import signal
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

import click

from logloupe.cli.store_commands import _settings, data_dir_option, running_server
from logloupe.errors import LogLoupeError
from logloupe.ingest.checkpoints import FileCheckpoints
from logloupe.ingest.sinks import HttpSink, Sink, WriterSink
from logloupe.ingest.sources import tail_inputs_of
from logloupe.ingest.tail import FileTailer, TailConfig, TailInput
from logloupe.parse.sources import rules_from


def _labels(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {value!r}", param_hint="--label")
        out[key] = val
    return out


@click.command()
@click.argument("paths", nargs=-1)
@click.option(
    "--inputs",
    "inputs_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="TOML file of [[inputs]] tables (paths, service, host, labels, exclude): each path its own service,"
    " host and labels; with PATHS or instead of them.",
)
@click.option("--server", default=None, help="Server URL (default: the one running on --data-dir, if any).")
@click.option("--api-key", envvar="LOGLOUPE_API_KEY", default=None, help="Sent as `Authorization: ApiKey <key>`.")
@click.option("--service", default="", help="Service name stamped on the lines.")
@click.option("--host", "host_name", default="", help="Host name stamped on the lines (default: this machine).")
@click.option("--label", "labels", multiple=True, help="KEY=VALUE attribute stamped on the lines (repeatable).")
@click.option("--exclude", multiple=True, help="Glob of file names to skip (repeatable).")
@click.option(
    "--start-at",
    type=click.Choice(["end", "beginning"]),
    default="end",
    show_default=True,
    help="Where files found at the very first start begin; files appearing later are read whole.",
)
@click.option("--read-compressed", is_flag=True, help="Read rotated .gz/.bz2/.xz files once.")
@click.option("--multiline/--no-multiline", default=True, show_default=True, help="Join stack traces.")
@click.option("--max-line-bytes", type=int, default=65536, show_default=True, help="Longer lines are cut and flagged.")
@click.option("--name", default=None, help="Checkpoint name (default: derived from the paths).")
@click.option(
    "--checkpoint-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSON checkpoint file (default: <data-dir>/tail-checkpoints.json).",
)
@click.option("--scan-interval", type=float, default=1.0, show_default=True, help="Seconds between glob scans.")
@click.option(
    "--report-interval",
    type=float,
    default=5.0,
    show_default=True,
    help="Seconds between status reports (lag, position, errors) to the server's Sources page and /metrics.",
)
@data_dir_option
def tail(
    paths: tuple[str, ...],
    inputs_file: Path | None,
    server: str | None,
    api_key: str | None,
    service: str,
    host_name: str,
    labels: tuple[str, ...],
    exclude: tuple[str, ...],
    start_at: str,
    read_compressed: bool,
    multiline: bool,
    max_line_bytes: int,
    name: str | None,
    checkpoint_file: Path | None,
    scan_interval: float,
    report_interval: float,
    data_dir: Path | None,
) -> None:
    """Follow files (paths or globs) like Filebeat; checkpoints advance only after the store acknowledges."""
    settings = _settings(data_dir=data_dir)
    url = server or running_server(settings)
    key = [*sorted(paths), *([str(inputs_file.resolve())] if inputs_file else [])]
    name = name or "tail-" + hashlib.sha256("\0".join(key).encode()).hexdigest()[:12]
    # Lines are joined here, before they are sent: the config file's parsing source for this tail
    # (source tail:NAME) says how. Rules a tenant stored through the API apply on the server.
    options = rules_from(settings.parsing_sources, {}).options_for(settings.default_tenant, f"tail:{name}", service)
    inputs = [TailInput(list(paths), service=service, host=host_name, labels=_labels(labels), exclude=list(exclude))]
    inputs = inputs if paths else []
    if inputs_file is not None:
        try:
            tables = tomllib.loads(inputs_file.read_text(encoding="utf-8"))
            inputs += tail_inputs_of({"inputs": tables.get("inputs", [])}, str(inputs_file))
        except (tomllib.TOMLDecodeError, LogLoupeError) as exc:
            raise click.BadParameter(str(exc), param_hint="--inputs") from None
    if not inputs:
        raise click.UsageError("give PATHS or --inputs FILE")
    config = TailConfig(
        inputs=inputs,
        start_at=start_at,
        read_compressed=read_compressed,
        multiline=multiline and options.multiline != "off",
        multiline_start=options.multiline_start,
        max_line_bytes=max_line_bytes,
        scan_s=scan_interval,
    )
    watched = " ".join(p for i in inputs for p in i.paths)
    checkpoints = FileCheckpoints(checkpoint_file or settings.data_dir / "tail-checkpoints.json")
    stopping = threading.Event()

    def _stop(_sig: int, _frame: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    services: Any = None
    sink: Sink
    if url:
        sink = HttpSink(url, api_key)
        click.echo(f"tail {name}: following {watched} into {url}", err=True)
    else:
        from logloupe.serve.services import Services

        services = Services.open(settings)
        sink = WriterSink(services)
        click.echo(f"tail {name}: following {watched} into {settings.data_dir}", err=True)
    tailer = FileTailer(config, sink, checkpoints, source_id=name, stopping=stopping)
    reported = 0.0
    try:
        while not stopping.is_set():
            busy = tailer.step()
            if isinstance(sink, HttpSink) and time.monotonic() - reported >= report_interval:
                sink.report_status(name, tailer.status.to_api())
                reported = time.monotonic()
            if not busy:
                stopping.wait(config.idle_s)
    finally:
        if isinstance(sink, HttpSink):
            tailer.status.state = "stopped"
            sink.report_status(name, tailer.status.to_api())
        tailer.close()
        if services is not None:
            services.close()
    click.echo(f"tail {name}: stopped after {tailer.status.events_total} events", err=True)


commands: list[click.Command] = [tail]
