"""Every setting LogLoupe reads, in one place.

Sources, highest priority first: explicit keyword arguments, ``LOGLOUPE_*`` environment
variables, the TOML file named by ``LOGLOUPE_CONFIG`` (or passed as ``config_file``), defaults.
Each field is documented in docs/settings.md; a test keeps the two in step.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "logloupe"


def half_the_cores() -> int:
    """Decoder processes by default: the server process itself keeps about one core busy (the GIL, the
    store's insert), so on two cores one decoder process parses as fast as two, in less memory and
    CPU (docs/ingest.md, thirteenth session)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 2
    return max(1, cores // 2)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOGLOUPE_", extra="ignore")

    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Directory holding the event store, the metadata database and buffers.",
    )
    host: str = Field(default="127.0.0.1", description="Interface `logloupe serve` binds to.")
    port: int = Field(default=8080, description="TCP port of the HTTP API and UI.")
    auth_enabled: bool = Field(
        default=False,
        description="Require credentials on every endpoint but health. Off: single-user local mode.",
    )
    default_tenant: str = Field(
        default="default", description="Tenant used in single-user local mode and by the offline CLI."
    )
    retention_days: int = Field(
        default=30, ge=1, le=3650, description="Default retention, in days after ingestion, for new tenants."
    )
    max_message_bytes: int = Field(
        default=65536, ge=256, description="Longer messages are truncated and flagged `truncated`."
    )
    max_attributes: int = Field(
        default=256, ge=1, description="Attributes beyond this count are dropped and the event flagged."
    )
    max_attribute_value_bytes: int = Field(
        default=8192, ge=64, description="Longer attribute values are truncated and the event flagged."
    )
    max_nesting_depth: int = Field(
        default=8, ge=1, description="Deeper JSON in attributes is kept as a JSON string and flagged."
    )
    max_body_bytes: int = Field(
        default=32 * 1024 * 1024, ge=1024, description="Largest accepted HTTP request body (decompressed)."
    )
    search_max_limit: int = Field(default=10000, ge=1, description="Largest `limit` a search may ask for.")
    export_max_events: int = Field(
        default=1_000_000, ge=1, description="Largest `limit` an export (`/api/v1/export`) may ask for."
    )
    query_timeout_s: float = Field(default=30.0, gt=0, description="Time limit of one store query.")
    store_block_cache_mb: int = Field(
        default=512,
        ge=0,
        description="Memory for the event store's cache of decompressed data blocks: repeated searches over"
        " recent data read it instead of decompressing again (0 = off). Counts in the server's memory once filled.",
    )
    regex_max_length: int = Field(default=256, ge=1, description="Longest `/regex/` the query language takes.")
    writer_batch_rows: int = Field(default=20000, ge=1, description="Rows the store writer gathers into one insert.")
    writer_flush_ms: int = Field(default=200, ge=1, description="Longest time the store writer waits to fill a batch.")
    writer_queue_events: int = Field(
        default=500000, ge=1000, description="Events queued for the store writer before producers wait."
    )
    anomaly_threshold: float = Field(
        default=0.7,
        # The alerting issue's spelling works too (``ANOMALY_THRESHOLD=0.7``), as do the field name
        # (constructor, TOML) and the usual prefixed variable.
        validation_alias=AliasChoices("LOGLOUPE_ANOMALY_THRESHOLD", "anomaly_threshold"),
        ge=0.0,
        le=1.0,
        description="Anomalies scoring at or above this are stored, published and fire the default anomaly rule.",
    )
    anomaly_tick_s: float = Field(
        default=10.0, gt=0, description="Seconds between the detectors' silence and rate checks when no events come."
    )
    anomaly_repeat_s: float = Field(
        default=600.0,
        ge=0,
        description="An anomaly of the same kind, service and pattern as one stored less than this before "
        "(in event time) is counted, not stored again.",
    )
    anomaly_session_key: str = Field(
        default="trace_id",
        description="Attribute whose value names an event's session (block, request or trace id); "
        "`trace_id` is the trace_id field; empty turns session scoring off.",
    )
    anomaly_window_events: int = Field(
        default=0,
        ge=0,
        le=100_000,
        description="Score every service's last N events as a window (for logs without a session key); 0 turns "
        "windows off.",
    )
    anomaly_window_step: int = Field(
        default=0,
        ge=0,
        description="Events between two scored windows of a service: less than `anomaly_window_events` slides the "
        "window, 0 means fixed windows.",
    )
    anomaly_checkpoint_s: float = Field(
        default=300.0,
        gt=0,
        description="Seconds between saves of the detectors' learned state (baselines, session models) to "
        "<data_dir>/anomaly/state.pickle; it is also saved on shutdown and restored at start.",
    )

    auth_jwt_secret: str = Field(
        default="",
        description="HS256 secret for access and refresh tokens; empty: generated once into"
        " <data_dir>/jwt.secret (0600).",
    )
    auth_access_ttl_s: int = Field(default=900, ge=30, description="Lifetime of an access token (JWT), in seconds.")
    auth_refresh_ttl_s: int = Field(
        default=14 * 86400, ge=60, description="Lifetime of a refresh token, in seconds; each refresh rotates it."
    )
    auth_allow_registration: bool = Field(
        default=True, description="Let anyone register a new organisation; off: only invitations create accounts."
    )
    auth_invitation_ttl_s: int = Field(default=7 * 86400, ge=60, description="Lifetime of an invitation token.")
    auth_lockout_failures: int = Field(
        default=5,
        ge=1,
        description="Failed logins for one account (its username and email share a count) before it is locked.",
    )
    auth_lockout_s: int = Field(
        default=900, ge=1, description="How long a locked account stays locked after its last failed login."
    )
    auth_login_ip_failures: int = Field(
        default=30, ge=1, description="Failed logins from one client address in the window before it gets 429."
    )
    auth_login_window_s: int = Field(default=900, ge=1, description="Window in which failed logins are counted.")
    auth_argon2_time_cost: int = Field(default=3, ge=1, description="argon2id iterations for password hashes.")
    auth_argon2_memory_kib: int = Field(default=65536, ge=1024, description="argon2id memory cost in KiB.")

    retention_sweep_s: int = Field(
        default=3600,
        ge=0,
        description="Seconds between sweeps deleting events and quarantined input past retention; 0: off.",
    )
    quarantine_max_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=65536,
        description="Quarantined input kept per tenant (raw bytes and reasons); past it the oldest items go, counted.",
    )
    api_key: str = Field(
        default="",
        description="Credentials `ingest` and `search` send to a server run with --auth: an API key or access token.",
    )
    llm_provider: str = Field(
        default="offline",
        description="Insight provider: offline (built-in knowledge base), openai, anthropic or huggingface.",
    )
    llm_model: str = Field(default="", description="Model name for the LLM provider; empty: its default.")
    llm_base_url: str = Field(
        default="", description="Base URL of the LLM API (e.g. http://localhost:11434/v1 for Ollama)."
    )
    llm_api_key: str = Field(default="", description="API key of the LLM provider; never logged.")
    llm_timeout_s: float = Field(default=60.0, gt=0, description="Time limit of one LLM request.")
    llm_max_retries: int = Field(default=2, ge=0, le=10, description="Retries on LLM 429/5xx/transport errors.")
    llm_budget_tokens: int = Field(
        default=6000,
        ge=500,
        description="Input tokens one analysis may send to the LLM, all requests together.",
    )
    llm_context_tokens: int = Field(default=8000, ge=1000, description="Largest prompt sent in one LLM request.")
    redact_ip_addresses: bool = Field(
        default=False,
        description="In the mask and hash masking modes, also mask IP and MAC addresses in LLM prompts and alert "
        "notifications (secrets, e-mails, cards and phones are masked unless the tenant's mode is keep).",
    )
    llm_classify_new_patterns: bool = Field(
        default=False,
        description="Let the LLM provider label new patterns found at ingest, in the background, within "
        "each tenant's LLM policy (templates only, masked); a label replaces the offline one when more confident.",
    )
    # -- alerting and metrics (docs/alerts.md) --
    alert_rules_file: Path | None = Field(
        default=None, description="TOML file of alert rules (`[[rule]]` tables) loaded at start-up."
    )
    alert_dedup_window_s: float = Field(
        default=600.0, gt=0, description="One notification per (tenant, rule, group key) inside this window."
    )
    alert_resolve_after_s: float = Field(
        default=600.0, gt=0, description="A streaming alert resolves after this long without a matching signal."
    )
    alert_eval_interval_s: float = Field(
        default=5.0, gt=0, description="Scheduler tick: due query/pattern/silence rules run, quiet alerts resolve."
    )
    alert_channel_max_per_hour: int = Field(
        default=60, ge=1, description="Rate cap: notifications one channel sends per tenant and hour."
    )
    alert_retry_attempts: int = Field(default=4, ge=1, description="Delivery attempts per notification and channel.")
    alert_retry_base_s: float = Field(
        default=1.0, ge=0, description="First retry delay; each further retry doubles it (exponential backoff)."
    )
    alert_history_days: int = Field(
        default=90, ge=1, description="Alert history and delivery records older than this are deleted."
    )
    alert_sample_lines: int = Field(default=5, ge=1, le=50, description="Sample log lines carried by a notification.")
    public_url: str = Field(
        default="", description="External base URL of the UI, for links in notifications (default http://host:port)."
    )
    smtp_host: str = Field(default="", description="SMTP server for email alerts; empty disables email.")
    smtp_port: int = Field(default=587, description="SMTP port (587 STARTTLS, 465 implicit TLS, 25 plain).")
    smtp_security: str = Field(default="starttls", description="`starttls`, `tls` (implicit TLS) or `none`.")
    smtp_username: str = Field(default="", description="SMTP AUTH user name; empty skips AUTH.")
    smtp_password: str = Field(default="", description="SMTP AUTH password.")
    smtp_from: str = Field(default="logloupe@localhost", description="Sender address of alert email.")
    smtp_ca_file: Path | None = Field(
        default=None, description="CA bundle to verify the SMTP server (default: system)."
    )
    alert_email_to: list[str] = Field(default_factory=list, description="Default recipients of alert email.")
    slack_webhook_url: str = Field(default="", description="Default Slack incoming-webhook URL.")
    teams_webhook_url: str = Field(default="", description="Default Microsoft Teams incoming-webhook URL.")
    alert_webhook_url: str = Field(default="", description="Default generic webhook URL.")
    alert_webhook_secret: str = Field(
        default="", description="HMAC-SHA256 key signing generic webhooks (`X-LogLoupe-Signature`)."
    )
    alert_channels_all_tenants: bool = Field(
        default=False,
        description="Settings-level alert destinations serve every tenant, not only `default_tenant`.",
    )
    victoria_metrics_url: str = Field(
        default="", description="VictoriaMetrics base URL; when set, metrics are pushed to /api/v1/import/prometheus."
    )
    metrics_push_interval_s: float = Field(default=15.0, gt=0, description="Interval of the VictoriaMetrics push.")
    # -- ingest pipeline (docs/ingest.md) ---------------------------------------------------
    buffer_max_bytes: int = Field(
        default=512 * 1024 * 1024,
        ge=1024 * 1024,
        description="Write-ahead buffer bound: above it HTTP ingest answers 429 and TCP syslog pushes back.",
    )
    buffer_segment_bytes: int = Field(
        default=64 * 1024 * 1024, ge=64 * 1024, description="Size at which the write-ahead buffer starts a new file."
    )
    buffer_fsync: Literal["always", "interval", "never"] = Field(
        default="always",
        description="When buffered batches reach the disk: `always` = before the acknowledgement (group"
        " commit), `interval` = every `buffer_fsync_interval_ms`, `never` = left to the OS.",
    )
    buffer_fsync_interval_ms: int = Field(
        default=200, ge=1, description="fsync period of the write-ahead buffer when `buffer_fsync` is `interval`."
    )
    pipeline_batch_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024, description="Most buffered bytes the ingest worker stores in one insert."
    )
    pipeline_decode_processes: int = Field(
        default_factory=half_the_cores,
        ge=0,
        le=64,
        description="Processes that parse buffered entries in parallel (0 = a thread in the server; default: half"
        " the cores this process may use, at least 1); they send the events back while an analysis stage needs"
        " them in the server, else the Arrow columns.",
    )
    ingest_wait_stored: bool = Field(
        default=False,
        description="Acknowledge ingest only once events are searchable (as `?sync=true` does per request).",
    )
    ingest_rate_bytes_s: float = Field(
        default=4 * 1024 * 1024, ge=0, description="Per-tenant ingest rate limit in bytes/s (0 = unlimited)."
    )
    ingest_burst_bytes: float = Field(
        default=6 * 1024 * 1024, ge=1, description="Per-tenant ingest burst in bytes above the rate."
    )
    upload_max_bytes: int = Field(
        default=2 * 1024 * 1024 * 1024, ge=1024, description="Largest file `POST /api/v1/upload` accepts."
    )
    syslog_host: str = Field(default="127.0.0.1", description="Interface the syslog listeners bind to.")
    syslog_udp_port: int = Field(default=0, ge=0, le=65535, description="UDP syslog port (0 = off).")
    syslog_tcp_port: int = Field(default=0, ge=0, le=65535, description="TCP syslog port (0 = off).")
    syslog_tenant: str = Field(
        default="",
        description="Tenant of syslog messages (empty = `default_tenant`) that carry no API key, arrive on no"
        " tenant port and come from no `syslog_tenant_map` network.",
    )
    syslog_tenant_map: dict[str, str] = Field(
        default_factory=dict,
        description="Per-sender syslog tenants: sender network (CIDR, IPv4 or IPv6) → tenant. The most specific"
        " network holding the sender's address wins; other senders go to `syslog_tenant`. Env: a JSON object.",
    )
    syslog_tenant_ports: dict[int, str] = Field(
        default_factory=dict,
        description="Per-tenant syslog ports: port → tenant. Each port gets a UDP and a TCP listener on"
        " `syslog_host` whose messages belong to that tenant (a message's API key still wins). Env: a JSON object.",
    )
    syslog_require_key: bool = Field(
        default=False,
        description="On the shared syslog ports, quarantine messages that carry no API key instead of giving"
        " them the sender network's tenant (tenant ports are their own credential).",
    )
    sources: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Pull sources `logloupe serve` runs (file tail, CloudWatch, Azure Monitor): "
        "`[[sources]]` tables in the config TOML; see docs/sources.md.",
    )
    sources_file: Path | None = Field(
        default=None, description="A TOML file of `[[sources]]` tables, run in addition to `sources`."
    )
    parsing_sources: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Per-source parsing settings (time zone, grok patterns, multiline, format): "
        "`[[parsing_sources]]` tables in the config TOML; see docs/parsing.md.",
    )
    multiline_flush_ms: int = Field(
        default=2000,
        ge=1,
        le=600_000,
        description="How long an open multiline record (a stack trace) waits for its next line, across"
        " requests, datagrams and reads, before it is stored as it is.",
    )

    @field_validator("syslog_tenant_map")
    @classmethod
    def _check_tenant_map(cls, value: dict[str, str]) -> dict[str, str]:
        out = {}
        for cidr, tenant in value.items():
            try:
                network = ipaddress.ip_network(cidr.strip(), strict=False)
            except ValueError:
                raise ValueError(f"syslog_tenant_map: {cidr!r} is not a network (CIDR such as 10.1.0.0/16)") from None
            if not str(tenant).strip():
                raise ValueError(f"syslog_tenant_map: no tenant for {cidr!r}")
            out[str(network)] = str(tenant).strip()
        return out

    @field_validator("syslog_tenant_ports")
    @classmethod
    def _check_tenant_ports(cls, value: dict[int, str]) -> dict[int, str]:
        out = {}
        for port, tenant in value.items():
            if not 1 <= int(port) <= 65535:
                raise ValueError(f"syslog_tenant_ports: {port} is not a port (1-65535)")
            if not str(tenant).strip():
                raise ValueError(f"syslog_tenant_ports: no tenant for port {port}")
            out[int(port)] = str(tenant).strip()
        return out

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = os.environ.get("LOGLOUPE_CONFIG")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(toml_path)))
        return tuple(sources)

    @classmethod
    def load(cls, config_file: Path | None = None, **overrides: Any) -> Settings:
        """Settings from the environment, an optional TOML file and explicit overrides."""
        if config_file is not None:
            os.environ["LOGLOUPE_CONFIG"] = str(config_file)
        clean = {k: v for k, v in overrides.items() if v is not None}
        return cls(**clean)
