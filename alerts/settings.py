"""The ``[alerts]`` section of railbook.toml, validated strictly (core keeps it opaque).

::

    [alerts]
    group_window_seconds = 300        # same policy + actor + resource within this → one alert with a count
    evidence_url = "http://localhost:8501/?event_id={event_id}"

    [[alerts.sinks]]
    name = "secops"
    type = "webhook"
    url = "https://siem.example.com/hooks/railbook"
    secret_env = "RAILBOOK_WEBHOOK_SECRET"   # or secret = "…" (HMAC-SHA256 key)

    [[alerts.sinks]]
    name = "slack"
    type = "slack"
    url_env = "RAILBOOK_SLACK_WEBHOOK"

    [[alerts.sinks]]
    name = "bus"
    type = "kafka"
    bootstrap = "kafka:9092"
    topic = "railbook.alerts"

With no sinks configured, alerts go to the log sink (never nowhere).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.config import section_settings
from core.errors import ConfigError

if TYPE_CHECKING:
    from core.config import Config

__all__ = ["AlertsSettings", "SinkSettings", "alerts_settings"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SinkSettings(_Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    """How ``railbook alerts test NAME`` and the metrics call it."""
    type: Literal["webhook", "slack", "kafka", "log"]
    url: str | None = None
    """webhook / slack: where to POST."""
    url_env: str | None = None
    """… or the environment variable that holds it (Slack webhook URLs are secrets)."""
    secret: str | None = None
    """webhook: HMAC-SHA256 key for the ``X-Railbook-Signature-256`` header."""
    secret_env: str | None = None
    """… or the environment variable that holds it."""
    bootstrap: str | None = None
    """kafka: ``host:port`` of a broker."""
    topic: str = "railbook.alerts"
    """kafka: the topic alerts are published to (keyed by idempotency key)."""
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    """Per-attempt timeout."""

    @model_validator(mode="after")
    def _needs(self) -> SinkSettings:
        if self.type in ("webhook", "slack") and not (self.url or self.url_env):
            raise ValueError(f"sink {self.name!r} (type {self.type}) needs url or url_env")
        if self.type == "kafka" and not self.bootstrap:
            raise ValueError(f"sink {self.name!r} (type kafka) needs bootstrap = 'host:port'")
        return self

    def resolved_url(self) -> str:
        if self.url_env:
            value = os.environ.get(self.url_env)
            if not value:
                raise ConfigError(
                    f"alert sink {self.name!r}: environment variable {self.url_env} (url_env) is not set"
                )
            return value
        assert self.url is not None
        return self.url

    def resolved_secret(self) -> str | None:
        if self.secret_env:
            value = os.environ.get(self.secret_env)
            if not value:
                raise ConfigError(
                    f"alert sink {self.name!r}: env var {self.secret_env} (secret_env) is not set"
                )
            return value
        return self.secret


class AlertsSettings(_Strict):
    sinks: list[SinkSettings] = Field(default_factory=list)
    group_window_seconds: float = Field(default=300.0, ge=0)
    """Repeats (same first policy, actor and resource) created within this many seconds of the first
    are delivered as one alert with a count. 0 turns grouping off."""
    poll_seconds: float = Field(default=2.0, gt=0)
    """How often the delivery worker looks at the outbox when nothing wakes it."""
    fetch_limit: int = Field(default=1000, ge=1)
    """Outbox rows read per round (oldest first)."""
    backoff_base_seconds: float = Field(default=1.0, gt=0)
    backoff_max_seconds: float = Field(default=300.0, gt=0)
    """Retry delay per sink: base·2^(n-1), capped at this, with ±50% jitter; never given up."""
    evidence_url: str | None = None
    """Link template for the evidence of an alert, ``{event_id}`` and ``{seq}`` substituted."""

    @model_validator(mode="after")
    def _unique(self) -> AlertsSettings:
        names = [s.name for s in self.sinks]
        if len(set(names)) != len(names):
            raise ValueError(f"sink names must be unique, got {names}")
        return self

    def effective_sinks(self) -> list[SinkSettings]:
        return list(self.sinks) or [SinkSettings(name="log", type="log")]


def alerts_settings(config: Config) -> AlertsSettings:
    """Parse ``[alerts]`` strictly; errors name the key."""
    return section_settings(config, "alerts", AlertsSettings)
