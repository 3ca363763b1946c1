"""``serve``, ``demo``, ``ingest`` and ``search``.

The server process owns the store. ``ingest`` and ``search`` find a running server through
``<data_dir>/server.json`` and go through its API; without one they open the store directly.
"""

from __future__ import annotations

import contextlib
import gc
import gzip
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click
import httpx
import orjson

from logloupe.errors import Unavailable
from logloupe.ingest.bodies import split_json, split_lines
from logloupe.model import FLAG_INVALID_UTF8, input_key
from logloupe.parse.multiline import continues
from logloupe.parse.records import Limits, add_flags, record_fields, text_fields
from logloupe.parse.sources import apply_to_record, rules_from
from logloupe.pipeline.assemble import assemble
from logloupe.settings import Settings
from logloupe.store.events import ALL_FIELDS, DEFAULT_FIELDS
from logloupe.store.search import Scope, now_us, search
from logloupe.store.timerange import parse_duration_us

if TYPE_CHECKING:
    from logloupe.ingest.demo import DemoTraffic

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
CHUNK_LINES = 5000

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data directory (default: LOGLOUPE_DATA_DIR or ~/.local/share/logloupe).",
)


def _settings(**overrides: Any) -> Settings:
    return Settings.load(**overrides)


# -- finding a running server ------------------------------------------------------------


def _server_file(settings: Settings) -> Path:
    return settings.data_dir / "server.json"


def running_server(settings: Settings) -> str | None:
    """The URL of a live server owning this data directory, if there is one."""
    path = _server_file(settings)
    try:
        info = orjson.loads(path.read_bytes())
        os.kill(int(info["pid"]), 0)
        url = str(info["url"])
        if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
            return url
    except (OSError, ValueError, KeyError, httpx.HTTPError, orjson.JSONDecodeError):
        return None
    return None


def client_headers(settings: Settings) -> dict[str, str]:
    """Credentials for a server run with --auth: an API key (``llk_...``) or a bearer token."""
    if not settings.api_key:
        return {}
    if settings.api_key.startswith("llk_"):
        return {"X-API-Key": settings.api_key}
    return {"Authorization": f"Bearer {settings.api_key}"}


# -- serve / demo ----------------------------------------------------------------------------


def _check_bind(settings: Settings) -> None:
    if not settings.auth_enabled and settings.host not in LOOPBACK:
        raise click.UsageError(
            f"refusing to bind {settings.host} without authentication: use --auth, or bind 127.0.0.1"
        )


def _serve(settings: Settings, on_ready: Any = None) -> None:
    import uvicorn

    from logloupe.serve.app import create_app
    from logloupe.serve.services import Services

    _check_bind(settings)
    services = Services.open(settings)
    app = create_app(settings, services)
    url = f"http://{settings.host}:{settings.port}"
    mode = (
        "authentication required"
        if settings.auth_enabled
        else "single-user local mode: no authentication, one implicit tenant, bound to loopback"
    )
    click.echo(f"LogLoupe {url} ({mode}); data in {settings.data_dir}", err=True)
    _server_file(settings).write_bytes(orjson.dumps({"url": url, "pid": os.getpid()}))
    if on_ready is not None:
        on_ready(services)
    # What start-up loaded (models, miner state, modules) lives as long as the server: keep it out of
    # the collector's full passes, and collect less often — ingest makes many short-lived objects.
    # The young generation counts allocations minus deallocations; batches of events in flight
    # (several 100,000 objects) raise it and lower it again. At 50,000 a collection came every
    # ~10,000 events and walked the events in flight (50 ms each, ~5 µs per event ingested, held
    # under the GIL); at 500,000 only lasting growth (caches, learned state, cyclic garbage) starts one.
    gc.freeze()
    gc.set_threshold(500_000, 20, 20)
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
    finally:
        with contextlib.suppress(OSError):
            _server_file(settings).unlink()
        services.close()


@click.command()
@click.option("--host", default=None, help="Interface to bind (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 8080).")
@click.option("--auth/--no-auth", "auth", default=None, help="Require credentials (allows other interfaces).")
@click.option("--syslog-udp-port", type=int, default=None, help="Listen for syslog on this UDP port (0 = off).")
@click.option("--syslog-tcp-port", type=int, default=None, help="Listen for syslog on this TCP port (0 = off).")
@data_dir_option
def serve(
    host: str | None,
    port: int | None,
    auth: bool | None,
    syslog_udp_port: int | None,
    syslog_tcp_port: int | None,
    data_dir: Path | None,
) -> None:
    """Run the API (and UI) server."""
    _serve(
        _settings(
            host=host,
            port=port,
            auth_enabled=auth,
            syslog_udp_port=syslog_udp_port,
            syslog_tcp_port=syslog_tcp_port,
            data_dir=data_dir,
        )
    )


@click.command()
@click.option("--host", default=None, help="Interface to bind (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 8080).")
@click.option("--rate", type=float, default=40.0, show_default=True, help="Live events per second.")
@click.option("--history", default="2h", show_default=True, help="History generated at start-up.")
@data_dir_option
def demo(host: str | None, port: int | None, rate: float, history: str, data_dir: Path | None) -> None:
    """Serve with realistic generated traffic from five services, incidents included."""
    if data_dir is None:
        base = _settings().data_dir
        data_dir = base.parent / (base.name + "-demo")
    settings = _settings(host=host, port=port, data_dir=data_dir)
    history_us = parse_duration_us(history)

    def start(services: Any) -> None:
        traffic = demo_traffic(now_us(), history_us)
        # History at the live rate, so that going live is no change the detectors would report;
        # capped, so that a high --rate does not make the start-up long.
        hist_rate = max(1.0, min(rate, HISTORY_MAX_EVENTS / max(1.0, history_us / 1e6)))
        limits = Limits()

        def feed() -> None:
            cursor = traffic.start_us
            # History first, in big batches; then live at ``rate``.
            while cursor < now_us() - 1_000_000:
                end = min(cursor + 600_000_000, now_us())
                write_demo(services, list(traffic.events(cursor, end, hist_rate)), limits, position=f"demo:{cursor}")
                cursor = end
            click.echo("demo: history loaded; live traffic flowing", err=True)
            while True:
                time.sleep(1)
                end = now_us()
                write_demo(services, list(traffic.events(cursor, end, rate)), limits, position=f"demo:{cursor}")
                cursor = end

        threading.Thread(target=feed, name="demo-traffic", daemon=True).start()

    _serve(settings, on_ready=start)


HISTORY_MAX_EVENTS = 400_000


def demo_traffic(live_us: int, history_us: int) -> DemoTraffic:
    """The demo's story: ``history_us`` of history before live traffic starts at ``live_us``. The new
    error pattern comes a minute into live traffic or, after a history shorter than the new-pattern
    detector's warm-up, a minute after the warm-up ends (nothing is new to a service before)."""
    from logloupe.analyse.anomaly.online import OnlineSettings
    from logloupe.ingest.demo import NEW_PATTERN_AFTER_S, DemoTraffic

    begin = live_us - history_us
    warmed_us = begin + OnlineSettings().warmup_s * 1_000_000
    new_pattern_us = max(live_us, warmed_us) + NEW_PATTERN_AFTER_S * 1_000_000
    return DemoTraffic(start_us=begin, live_us=live_us, new_pattern_us=new_pattern_us)


def write_demo(services: Any, records: list[dict[str, Any]], limits: Limits, position: str) -> None:
    """Writes generated records as ``logloupe demo`` does: through the store writer, whose stage
    (the pattern miner) and hooks (the detectors) see them as any ingested event."""
    fields = [record_fields(r, limits) for r in records]
    events = assemble(
        fields, tenant=services.settings.default_tenant, now_us=now_us(), source="demo", position=position
    )
    if events:
        services.writer.write(events)


# -- ingest ------------------------------------------------------------------------------------


def _open_input(path: str) -> IO[bytes]:
    if path == "-":
        return sys.stdin.buffer
    if path.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def _chunks(stream: IO[bytes]) -> Iterator[list[bytes]]:
    """Lines in chunks of about ``CHUNK_LINES``, never cut before a continuation line (a stack
    frame, "Caused by:"): each chunk is acknowledged once searchable, so a trace split across two
    would wait out the server's multiline flush timeout and be stored as two events."""
    chunk: list[bytes] = []
    for line in stream:
        if len(chunk) >= CHUNK_LINES and (
            len(chunk) >= 4 * CHUNK_LINES or not continues(line.decode("utf-8", "replace").rstrip("\r\n"), "", False)
        ):
            yield chunk
            chunk = []
        chunk.append(line)
    if chunk:
        yield chunk


def _looks_json(lines: list[bytes]) -> bool:
    sample = [ln.strip() for ln in lines[:20] if ln.strip()]
    return bool(sample) and all(ln.startswith(b"{") for ln in sample)


@click.command()
@click.argument("file", type=str)
@click.option("--service", default="", help="Service name for lines that do not name one.")
@click.option("--server", default=None, help="Server URL (default: the one running on --data-dir, if any).")
@data_dir_option
def ingest(file: str, service: str, server: str | None, data_dir: Path | None) -> None:
    """Ingest a file (plain, .gz, NDJSON or text lines), or - for standard input."""
    settings = _settings(data_dir=data_dir)
    url = server or running_server(settings)
    accepted = rejected = 0
    stream = _open_input(file)
    source = "file:" + (Path(file).name if file != "-" else "stdin")
    try:
        if url:
            with httpx.Client(base_url=url, timeout=120, headers=client_headers(settings)) as client:
                for chunk in _chunks(stream):
                    body = b"".join(chunk)
                    is_json = _looks_json(chunk)
                    ctype = "application/x-ndjson" if is_json else "text/plain"
                    # sync: "ingested N events" means searchable, as without a server. Text goes as
                    # text, named by ?service=, so the server detects its format and joins traces.
                    params = {"sync": "true", **({"service": service} if service else {})}
                    resp = client.post("/api/v1/logs", content=body, headers={"content-type": ctype}, params=params)
                    report = resp.json()
                    if resp.status_code in (401, 403, 429):
                        hint = " (set LOGLOUPE_API_KEY)" if resp.status_code == 401 else ""
                        raise Unavailable(report.get("error", {}).get("message", resp.text) + hint)
                    report = report.get("error", report)
                    accepted += int(report.get("accepted", 0))
                    rejected += int(report.get("rejected", 0))
        else:
            from logloupe.serve.services import Services

            services = Services.open(settings)
            limits = Limits(
                settings.max_message_bytes,
                settings.max_attributes,
                settings.max_attribute_value_bytes,
                settings.max_nesting_depth,
            )
            # The settings file's parsing sources apply here too (time zone, patterns, format hint).
            options = rules_from(settings.parsing_sources, {}).options_for(settings.default_tenant, source, service)
            try:
                for n, chunk in enumerate(_chunks(stream)):
                    body = b"".join(chunk)
                    items = split_json(body) if _looks_json(chunk) else split_lines(body, limits.max_message_bytes)
                    good = [it for it in items if not it.error]
                    if all(it.has_record for it in good):
                        fields = [record_fields(it.record or {}, limits) for it in good]
                        for it, f in zip(good, fields, strict=True):
                            if it.invalid_utf8:  # read with U+FFFD (bodies.split_json)
                                add_flags(f, [FLAG_INVALID_UTF8])
                        if not options.is_default:
                            for it, f in zip(good, fields, strict=True):
                                apply_to_record(it.record or {}, f, options, now_us())
                    else:  # raw lines: formats detected, stack traces joined
                        fields = text_fields(
                            [it.line or b"" for it in good],
                            limits,
                            now_us(),
                            default_tz=options.timezone,
                            custom=options.patterns,
                            hint=options.format,
                        )
                    bad = [(it.error or "", it.raw) for it in items if it.error]
                    services.meta.quarantine(settings.default_tenant, source, bad)
                    events = assemble(
                        fields,
                        tenant=settings.default_tenant,
                        now_us=now_us(),
                        source=source,
                        service=service,
                        # the chunk's content and place: the same file ingested again gets the same
                        # ids, and the store keeps its events once
                        position=input_key("file", source, service, str(n), body),
                    )
                    services.writer.write(events)
                    accepted += len(events)
                    rejected += len(bad)
            finally:
                services.close()
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    click.echo(f"ingested {accepted} events, rejected {rejected}" + (f" (via {url})" if url else ""))


# -- search ------------------------------------------------------------------------------------


def _print_event(e: dict[str, Any]) -> None:
    first = e["message"].split("\n", 1)[0]
    click.echo(f"{e['ts']} {e['level']:<5} {e['service'] or '-'} {first}")


@click.command(name="search")
@click.argument("query", default="")
@click.option("--since", default=None, help="Only events newer than this, e.g. 15m, 1h, 7d (or now-1h).")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object: total and events.")
@click.option("--server", default=None, help="Server URL (default: the one running on --data-dir, if any).")
@data_dir_option
def search_command(
    query: str, since: str | None, limit: int, as_json: bool, server: str | None, data_dir: Path | None
) -> None:
    """Search events with the query language (newest first)."""
    settings = _settings(data_dir=data_dir)
    url = server or running_server(settings)
    if since and since.strip().lower().startswith("now-"):
        since = since.strip()[4:]  # `--since now-1h` means what `--since 1h` does
    try:
        since_us = parse_duration_us(since) if since else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    from_ = f"now-{since}" if since else None
    # --json prints the whole events, the lines only what they show: the API's default page.
    fields = ALL_FIELDS if as_json else DEFAULT_FIELDS
    if url:
        params: dict[str, str | int] = {"q": query, "limit": limit}
        if as_json:
            params["fields"] = "all"
        if from_:
            params["from"] = from_
        resp = httpx.get(f"{url}/api/v1/search", params=params, timeout=60, headers=client_headers(settings))
        body = resp.json()
        if resp.status_code != 200:
            raise Unavailable(body.get("error", {}).get("message", resp.text))
        total, events = body["total"], body["events"]
    else:
        from logloupe.store.events import EventStore

        with EventStore(
            settings.data_dir, query_timeout_s=settings.query_timeout_s, block_cache_mb=settings.store_block_cache_mb
        ) as store:
            now = now_us()
            scope = Scope(
                tenant=settings.default_tenant,
                q=query,
                from_us=now - since_us if since_us is not None else None,
                now_us=now,
            )
            result = search(store, scope, limit=limit, fields=fields)
            total, events = result.total, [e.to_api(fields) for e in result.events]
    if as_json:
        click.echo(orjson.dumps({"total": total, "events": events}).decode())
        return
    for e in events:
        _print_event(e)
    click.echo(f"-- {len(events)} of {total} matching events", err=True)


commands: list[click.Command] = [serve, demo, ingest, search_command]
