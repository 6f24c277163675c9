"""One settings object, built by entry points (CLI, ASGI factory) and passed down."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./tierkit.db"


class Settings(BaseSettings):
    """Read from `TIERKIT_*` environment variables; the CLI's flags override them."""

    model_config = SettingsConfigDict(env_prefix="TIERKIT_", extra="ignore")

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL: sqlite:///path.db or postgresql://user@host/db.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Larger request bodies get a 413."
    )
    cache_seconds: float = Field(
        default=10.0,
        ge=0,
        le=3600,
        description="How long a process trusts the catalog and customer state it has read: "
        "writes made by other processes reach it within this time.",
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
