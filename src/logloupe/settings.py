"""Every setting LogLoupe reads, in one place.

Sources, highest priority first: explicit keyword arguments, ``LOGLOUPE_*`` environment
variables, the TOML file named by ``LOGLOUPE_CONFIG`` (or passed as ``config_file``), defaults.
Each field is documented in docs/settings.md; a test keeps the two in step.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "logloupe"


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
    query_timeout_s: float = Field(default=30.0, gt=0, description="Time limit of one store query.")
    regex_max_length: int = Field(default=256, ge=1, description="Longest `/regex/` the query language takes.")
    writer_batch_rows: int = Field(default=20000, ge=1, description="Rows the store writer gathers into one insert.")
    writer_flush_ms: int = Field(default=200, ge=1, description="Longest time the store writer waits to fill a batch.")
    writer_queue_events: int = Field(
        default=500000, ge=1000, description="Events queued for the store writer before producers wait."
    )
    anomaly_threshold: float = Field(
        default=0.7, ge=0.0, le=1.0, description="Anomalies scoring at or above this are stored and published."
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
