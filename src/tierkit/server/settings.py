"""One settings object, built by entry points (CLI, ASGI factory) and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./tierkit.db"


class Settings(BaseSettings):
    """Read from `TIERKIT_*` environment variables; the CLI's flags override them."""

    model_config = SettingsConfigDict(env_prefix="TIERKIT_", extra="ignore")

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL: sqlite:///path.db or postgresql://user@host/db.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="The key(s) sealing webhook signing secrets at rest: base64url of 32 bytes "
        "(`tierkit secret-key`), comma-separated to rotate (the first seals, all open). "
        "Required with PostgreSQL; with SQLite, a key file beside the database is used (and "
        "created) when neither this nor `secret_key_file` is set.",
    )
    secret_key_file: Path | None = Field(
        default=None,
        description="A file holding the key(s) instead, one a line (the first seals).",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="The least severe log lines written."
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="`json`: one JSON object per line, each with the `request_id` of the "
        "request it was written for.",
    )
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Larger request bodies get a 413."
    )
    cache_seconds: float = Field(
        default=10.0,
        ge=0,
        le=3600,
        description="How long a process trusts the catalog and customer state it has read "
        "when no note of a change reaches it (SQLite, or the notification channel down); "
        "on PostgreSQL or Redis, other processes' writes reach it as they commit.",
    )
    cors_origins: list[str] = Field(
        default=["*"], description="Origins allowed to call from a browser (publishable keys)."
    )
    stream_keepalive_seconds: float = Field(
        default=15.0,
        gt=0,
        le=300,
        description="How often an idle SDK stream (`/v1/sdk/stream`) sends a keep-alive comment.",
    )
    shutdown_grace_seconds: int = Field(
        default=10,
        ge=0,
        description="On shutdown, how long in-flight requests and open streams may take "
        "before they are cut.",
    )
    webhook_dispatch: bool = Field(
        default=True,
        description="Deliver webhooks from this process (any number of processes may: each "
        "delivery is leased to one).",
    )
    webhook_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How often the webhook dispatcher looks for new events and due retries.",
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, le=60, description="How long a receiver may take to answer."
    )
    webhook_retry_seconds: list[float] = Field(
        default=[5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 28800],
        min_length=1,
        description="The wait before each retry of a failed delivery (about 24 hours in all); "
        "after the last, the delivery is given up (`failed`).",
    )
    jobs: bool = Field(
        default=True,
        description="Run time-driven jobs in this process (override expiry and trial-ending "
        "events, grant expiries): once across processes, whichever is first.",
    )
    job_interval_seconds: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="How often each time-driven job runs (across all processes): the most a "
        "time-driven webhook is late.",
    )
    redis_url: str | None = Field(
        default=None,
        description="`redis://host:6379/0`. When set, processes tell each other of changes "
        "through Redis pub/sub instead of PostgreSQL's LISTEN/NOTIFY (SQLite alone: through "
        "nothing), and rate limits are counted in Redis, shared by every process and machine; "
        "else each process counts its own (with N processes, a key may make up to N times "
        "its limit).",
    )
    rate_limit_per_second: float = Field(
        default=0,
        ge=0,
        description="Requests per second each API key may make, on average (0: no limit). "
        "Counted per key on every route a key authenticates; over it, a 429 with `Retry-After`.",
    )
    rate_limit_publishable_per_second: float | None = Field(
        default=None,
        ge=0,
        description="The limit of publishable keys, when it differs from secret keys' "
        "(0: no limit; unset: `rate_limit_per_second`).",
    )
    rate_limit_burst: int | None = Field(
        default=None,
        ge=1,
        description="How many requests a key that was idle may make at once before the "
        "per-second rate applies (unset: one second's worth).",
    )
    metrics: bool = Field(default=True, description="Serve Prometheus metrics at `/metrics`.")
    metrics_token: SecretStr | None = Field(
        default=None,
        description="When set, `/metrics` answers only `Authorization: Bearer <token>`; "
        "else anyone who reaches the port may read it.",
    )
