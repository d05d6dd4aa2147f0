"""The one settings class of the service (environment variables with the ``MONITOR_`` prefix).

Read it through :func:`get_settings`, never by instantiating it at import time: tests and the CLI
change the environment and call ``get_settings.cache_clear()``. The SDK does not use this class
(``pydantic`` is a server dependency); it takes its configuration as ``init()`` arguments.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import platformdirs
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_home() -> Path:
    return Path(platformdirs.user_data_dir("monitor", appauthor=False))


class Settings(BaseSettings):
    """Service configuration. Every field maps to ``MONITOR_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="MONITOR_", env_file=None, extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL. Unset: an embedded Postgres is started under MONITOR_HOME.",
    )
    home: Path = Field(default_factory=_default_home, description="Data directory.")
    secret_key: str | None = Field(
        default=None,
        description="Key for encrypting channel secrets and signing sessions; generated and kept "
        "in MONITOR_HOME when unset.",
    )
    base_url: str = Field(default="http://127.0.0.1:8000", description="Public URL of the UI.")

    # web
    host: str = "127.0.0.1"
    port: int = 8000
    web_workers: int = Field(
        default_factory=lambda: min(4, os.cpu_count() or 1),
        ge=1,
        le=64,
        description="Web server processes (`monitor serve --workers`); default min(4, CPUs).",
    )
    web_max_stale_seconds: float = Field(
        default=10.0,
        ge=0,
        description="How long a cached dashboard view may be answered after a newer results "
        "version was first seen, while it is recomputed in the background (0: never stale, "
        "a write shows on the very next request).",
    )
    session_max_age_seconds: int = 7 * 24 * 3600
    max_ingest_body_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1024,
        description="Largest ingest request body (after gzip decompression); larger: 413.",
    )
    ingest_max_inflight_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=0,
        description="Ingest body bytes one web worker process holds at once (never less than "
        "one maximum body); past it a request gets 429 with Retry-After. A request in flight "
        "costs about 1.5x its body in memory.",
    )
    max_features_per_model: int = Field(
        default=2_000,
        ge=1,
        description="Feature names a model may have (collector writes; the SDK's own option is "
        "Monitor(max_features=)). Values of features past the cap are counted "
        "(cleaned.features_over_cap) and not stored; baselines are not limited.",
    )
    ingest_tokens_create_models: bool = Field(
        default=True,
        description="Whether ingest tokens may create models on first use (admin tokens "
        "always may). false: a model must exist (created by an admin token, a baseline or "
        "the CLI) before ingest tokens can write to it.",
    )
    login_code_ttl_seconds: int = Field(
        default=600, ge=1, le=86400, description="Lifetime of a one-time login link's code."
    )
    cookie_secure: bool = Field(
        default=False,
        description="Always mark cookies Secure (behind a TLS-terminating proxy that talks plain "
        "HTTP to the service). Off: Secure when the request's scheme is https.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or CIDRs of reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto headers are believed (JSON list). Empty: no proxy is trusted.",
    )
    auth_failure_burst: int = Field(
        default=10, ge=1, description="Wrong tokens or login codes a client may send at once."
    )
    auth_failure_per_second: float = Field(
        default=1.0,
        gt=0,
        description="Sustained rate of wrong tokens a client may send; past the burst, its "
        "authentication attempts get 429 with Retry-After until it falls under this rate.",
    )
    metrics_max_features_per_model: int = Field(
        default=100,
        ge=1,
        description="Features per model exported by /metrics' per-feature families (the most "
        "drifted first); the rest are counted in monitor_metrics_omitted_features.",
    )

    # jobs
    window_seconds: int = Field(default=3600, description="Default window length per model.")
    allowed_lateness_seconds: int = 300
    tick_seconds: int = 30
    lease_seconds: int = 300
    catchup_max_age_days: int = 14
    retention_days: int = 30
    partitions_ahead_days: int = 7
    min_segment_rows: int = 200
    multivariate_methods: list[str] = Field(
        default_factory=lambda: ["pca_reconstruction", "domain_classifier"],
        description="Multivariate detectors run per window (the domain classifier costs "
        "seconds a window; [] turns multivariate drift off).",
    )

    # performance (labels, estimation, operational signals)
    min_labels: int = Field(
        default=30, description="Labelled rows a window needs before its performance is shown."
    )
    label_horizon_days: int = Field(
        default=30, description="How long after a window its late labels still recompute it."
    )
    label_sweep_seconds: int = Field(
        default=60, description="How often the worker looks for newly arrived labels."
    )
    cold_start_seconds: float = Field(
        default=120.0, description="Requests this soon after a deploy or an idle gap are cold."
    )
    idle_seconds: float = Field(
        default=900.0, description="A gap in traffic this long makes the next requests cold."
    )

    # alerts
    webhook_allow_private: list[str] = Field(
        default_factory=list,
        description="Hosts or CIDRs that webhooks may target although private (e.g. 127.0.0.1).",
    )
    delivery_connect_timeout: float = 5.0
    delivery_total_timeout: float = 15.0
    alert_no_data_windows: int = Field(
        default=3,
        ge=0,
        description="An open alert whose series has no result in this many finished windows "
        "after its last one resolves with reason no_data (0: never).",
    )
    default_rules: bool = Field(
        default=True,
        description="Give every new model the default alert rules (routed to the channels "
        "marked default); off: models start without rules.",
    )

    @property
    def embedded_dir(self) -> Path:
        return self.home / "pgdata"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
