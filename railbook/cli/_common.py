"""Shared CLI plumbing: the context object, shared flags, and RailbookError → ClickException."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import click
from rich.console import Console

from core.config import Config, load_config
from core.errors import RailbookError
from core.event import parse_time

F = TypeVar("F", bound=Callable[..., Any])

#: human output goes to stderr when --json owns stdout
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


@dataclass
class CliContext:
    """What every command can reach: the global flags, and the config loaded on first use."""

    config_path: str | None = None
    ledger_path: str | None = None
    _config: Config | None = field(default=None, repr=False)

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path, ledger=self.ledger_path)
        return self._config


pass_ctx = click.make_pass_decorator(CliContext, ensure=True)


def handle_errors(fn: F) -> F:
    """Turn a RailbookError into a ClickException (exit 1) with its diagnostics. Only the CLI does this."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RailbookError as exc:
            raise click.ClickException(exc.diagnostics()) from exc

    return wrapper  # type: ignore[return-value]


def json_option(fn: F) -> F:
    """``--json``: one JSON document on stdout, nothing else."""
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON document for scripts.")(fn)


def print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")


def setup_logging(verbose: int) -> None:
    level_name = os.environ.get("RAILBOOK_LOGLEVEL")
    level = logging.WARNING - 10 * verbose if not level_name else getattr(logging, level_name.upper(), 30)
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr
    )


class _TimeParam(click.ParamType[datetime]):
    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return parse_time(str(value))
        except ValueError as exc:
            self.fail(f"{value!r} is not an RFC 3339 time such as 2026-01-31T00:00:00Z ({exc})", param, ctx)


#: an RFC 3339 timestamp flag (``--since``/``--until``), parsed to an aware UTC datetime
TIME = _TimeParam()


def read_input(name: str) -> bytes:
    """The bytes of FILE, or of stdin for ``-``; an unreadable file is a usage-level error naming it."""
    if name == "-":
        return sys.stdin.buffer.read()
    try:
        with open(name, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise click.ClickException(f"cannot read {name!r}: {exc.strerror}") from exc
