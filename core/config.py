"""Configuration: ``railbook.toml``, overridable by environment variables.

Where the file comes from, first match wins: ``--config`` / ``RAILBOOK_CONFIG``; ``./railbook.toml``;
no file at all (built-in defaults: no environments known, so every resource is ``unknown``).
``--ledger`` / ``RAILBOOK_LEDGER`` override ``[ledger] path``.

Identity and environment classification live here because every adapter needs them and they
must agree everywhere: *configuration wins* over what a producer claims (DESIGN.md).
Patterns are globs where only ``*`` and ``?`` are wildcards, so ``*[bot]`` means a literal
``[bot]`` suffix, as GitHub spells bot accounts.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import ConfigError
from core.event import UNKNOWN, ActorKind

__all__ = [
    "Config",
    "EnvironmentConfig",
    "IdentitiesConfig",
    "LedgerConfig",
    "PolicyConfig",
    "load_config",
    "section_settings",
]

CONFIG_ENV = "RAILBOOK_CONFIG"
LEDGER_ENV = "RAILBOOK_LEDGER"
DEFAULT_FILE = "railbook.toml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LedgerConfig(_Section):
    path: str = "railbook-data/ledger.duckdb"
    """The DuckDB ledger file. Also ``--ledger`` / ``RAILBOOK_LEDGER``."""
    origin: str = "railbook.local/ledger"
    """The checkpoint origin line (C2SP tlog-checkpoint): names this log; keep it stable."""
    key: str | None = None
    """Ed25519 signing key file (``railbook keygen``). Default: ``<ledger dir>/signing.key``."""
    checkpoint_every: int = Field(default=1000, ge=1)
    """Sign a checkpoint after this many new entries …"""
    checkpoint_seconds: float = Field(default=10.0, gt=0)
    """… or when the newest checkpoint is older than this and there are new entries."""
    checkpoints_file: str | None = None
    """Append-only copy of every signed checkpoint. Default: ``<ledger dir>/checkpoints.log``."""
    segments_dir: str | None = None
    """Immutable Parquet segments for readers. Default: ``<ledger dir>/segments``."""
    segment_seconds: float = Field(default=1.0, ge=0)
    """Export a segment at most this often: under load one covers every checkpoint signed since the
    last (fewer, larger files, cheaper per entry); 0: one per checkpoint."""
    threads: int | None = Field(default=None, ge=1)
    """DuckDB threads for a ledger connection. Default: DuckDB's, one per core; ``railbook serve``
    with its consumer process (the default) leaves that process a core: one fewer, at least one."""
    memory_limit: str | None = None
    """DuckDB memory for a ledger connection, e.g. ``"2GB"``, fixed. Default: 256 MB, raised when
    an append runs out of it to what the event-id index needs, which must fit in memory: 128 MB
    plus 64 bytes per entry beyond ~2M entries (``Ledger._grow_memory``)."""


class PolicyConfig(_Section):
    dir: str | None = None
    """A policy pack directory to use instead of the built-in default pack."""
    approval_ttl_seconds: int = Field(default=900, ge=1)
    """How long a grant without its own ``expires_at`` stays valid (default 15 minutes)."""
    unknown_destructive_in: list[str] = Field(default_factory=lambda: ["prod"])
    """Environments in which an action missing from the catalog counts as destructive."""
    bypass_window_seconds: int = Field(default=3600, ge=1)
    """How far back a gate request may be and still cover an executed action (bypass detection)."""


class EnvironmentConfig(_Section):
    aws_accounts: list[str] = Field(default_factory=list)
    k8s_clusters: list[str] = Field(default_factory=list)
    db_hosts: list[str] = Field(default_factory=list)
    protected_branches: list[str] = Field(default_factory=list)


class IdentitiesConfig(_Section):
    agents: list[str] = Field(
        default_factory=lambda: ["arn:aws:sts::*:assumed-role/agent-*/*", "agent:*", "*[bot]"]
    )
    pipelines: list[str] = Field(
        default_factory=lambda: ["arn:aws:sts::*:assumed-role/deploy-pipeline/*", "pipeline:*"]
    )
    humans: list[str] = Field(default_factory=lambda: ["arn:aws:iam::*:user/*", "*@*"])
    services: list[str] = Field(default_factory=lambda: ["*.amazonaws.com", "system:*"])
    approvers: list[str] = Field(default_factory=list)


def _glob(patterns: list[str]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    parts = [re.escape(p).replace(r"\*", ".*").replace(r"\?", ".") for p in patterns]
    return re.compile("(?:" + "|".join(parts) + r")\Z", re.DOTALL)


class Config(_Section):
    """The whole configuration. Sections other issues add live beside these (extra keys are errors)."""

    model_config = ConfigDict(extra="forbid", frozen=True, ignored_types=(cached_property,))

    ledger: LedgerConfig = Field(default_factory=LedgerConfig)
    environments: dict[str, EnvironmentConfig] = Field(default_factory=dict)
    identities: IdentitiesConfig = Field(default_factory=IdentitiesConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    # Sections owned by later features; validated by their own packages, kept opaque here.
    gate: dict[str, Any] = Field(default_factory=dict)
    server: dict[str, Any] = Field(default_factory=dict)
    alerts: dict[str, Any] = Field(default_factory=dict)
    kafka: dict[str, Any] = Field(default_factory=dict)
    dashboard: dict[str, Any] = Field(default_factory=dict)
    source_path: str | None = Field(default=None, exclude=True)
    """The file this came from (``None``: built-in defaults)."""

    # --- derived paths ---------------------------------------------------------------------------

    @property
    def ledger_path(self) -> Path:
        return Path(self.ledger.path)

    def _beside_ledger(self, value: str | None, default: str) -> Path:
        return Path(value) if value else self.ledger_path.parent / default

    @property
    def key_path(self) -> Path:
        return self._beside_ledger(self.ledger.key, "signing.key")

    @property
    def checkpoints_file(self) -> Path:
        return self._beside_ledger(self.ledger.checkpoints_file, "checkpoints.log")

    @property
    def segments_dir(self) -> Path:
        return self._beside_ledger(self.ledger.segments_dir, "segments")

    # --- classification (configuration wins over producer claims) ------------------------------

    @cached_property
    def _kind_patterns(self) -> list[tuple[ActorKind, re.Pattern[str]]]:
        ids = self.identities
        out: list[tuple[ActorKind, re.Pattern[str]]] = []
        # Order is precedence: a pipeline role is never mistaken for an agent, an agent whose id
        # happens to contain '@' is still an agent.
        for kind, pats in (
            ("pipeline", ids.pipelines),
            ("agent", ids.agents),
            ("service", ids.services),
            ("human", ids.humans),
        ):
            rx = _glob(pats)
            if rx is not None:
                out.append((kind, rx))  # type: ignore[arg-type]
        return out

    def actor_kind(self, actor_id: str | None) -> ActorKind:
        """agent / pipeline / service / human for ``actor_id`` by the identity globs, else unknown."""
        if not actor_id:
            return "unknown"
        for kind, rx in self._kind_patterns:
            if rx.match(actor_id):
                return kind
        return "unknown"

    @cached_property
    def _approvers(self) -> re.Pattern[str] | None:
        return _glob(self.identities.approvers)

    def is_approver(self, actor_id: str) -> bool:
        rx = self._approvers
        return bool(rx and rx.match(actor_id))

    @cached_property
    def _env_index(self) -> dict[str, list[tuple[str, re.Pattern[str]]]]:
        index: dict[str, list[tuple[str, re.Pattern[str]]]] = {
            "aws_accounts": [],
            "k8s_clusters": [],
            "db_hosts": [],
            "protected_branches": [],
        }
        for name, env in self.environments.items():
            for key in index:
                rx = _glob(getattr(env, key))
                if rx is not None:
                    index[key].append((name, rx))
        return index

    def _env_for(self, key: str, value: str | None) -> str:
        if not value:
            return UNKNOWN
        for name, rx in self._env_index[key]:
            if rx.match(value):
                return name
        return UNKNOWN

    def environment_for_account(self, account: str | None) -> str:
        return self._env_for("aws_accounts", account)

    def environment_for_cluster(self, cluster: str | None) -> str:
        return self._env_for("k8s_clusters", cluster)

    def environment_for_host(self, host: str | None) -> str:
        return self._env_for("db_hosts", host.lower() if host else host)

    def is_protected_branch(self, branch: str | None) -> bool:
        """Whether ``branch`` (``main``, or ``refs/heads/main``) is protected in any environment."""
        if not branch:
            return False
        name = branch.removeprefix("refs/heads/")
        return any(rx.match(name) for _, rx in self._env_index["protected_branches"])


def _problem(exc: ValidationError, path: str) -> str:
    lines = []
    for e in exc.errors()[:8]:
        key = ".".join(str(p) for p in e["loc"])
        got = e.get("input")
        shown = "" if isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"  {path}: [{key}] {e['msg']}{shown}")
    return "\n".join(lines)


def load_config(path: str | os.PathLike[str] | None = None, *, ledger: str | None = None) -> Config:
    """Load configuration; ``path``/``ledger`` are the CLI flags (``None`` falls back to the env vars)."""
    explicit = path or os.environ.get(CONFIG_ENV)
    data: dict[str, Any] = {}
    source: str | None = None
    if explicit:
        p = Path(explicit)
        if not p.is_file():
            raise ConfigError(
                f"config file {str(p)!r} does not exist (from "
                f"{'--config' if path else CONFIG_ENV}); create it or drop the setting to use defaults"
            )
        source = str(p)
    elif Path(DEFAULT_FILE).is_file():
        source = DEFAULT_FILE
    if source is not None:
        try:
            data = tomllib.loads(Path(source).read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {source!r} is not valid TOML: {exc}") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {source!r} cannot be read: {exc}") from exc
    override = ledger or os.environ.get(LEDGER_ENV)
    if override:
        data = {**data, "ledger": {**data.get("ledger", {}), "path": override}}
    try:
        return Config.model_validate({**data, "source_path": source})
    except ValidationError as exc:
        raise ConfigError(
            f"config file {source or '<defaults>'!r} is invalid:\n{_problem(exc, source or '<defaults>')}"
        ) from None


M = TypeVar("M", bound=BaseModel)

#: keys whose values never appear in an error message
_SECRET_WORDS = ("secret", "token", "password", "sha256", "webhook", "key")


def section_settings(
    config: Config, section: str, model: type[M], *, overrides: Mapping[str, str | None] | None = None
) -> M:
    """Validate the opaque ``[section]`` of railbook.toml (``gate``, ``server``, ``alerts``,
    ``dashboard``, ``kafka``) with ``model``, after environment ``overrides`` (non-empty values win).

    Errors name the file, the section, the key and the bad value (never the value of a key that
    looks like a secret).
    """
    data = dict(getattr(config, section))
    data.update({k: v for k, v in (overrides or {}).items() if v})
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for e in exc.errors()[:5]:
            key = ".".join(str(p) for p in e["loc"])
            shown = "" if any(w in key.lower() for w in _SECRET_WORDS) else f" (got {e.get('input')!r})"
            problems.append(f"[{section}] {key}: {e['msg']}{shown}")
        raise ConfigError(
            f"config {config.source_path or '<defaults>'!r}: {'; '.join(problems)} "
            f"(the [{section}] keys are listed in README.md)"
        ) from None
