"""The ``railbook`` command line: one click group, one module per area (``_ingest``, ``_ledger``, …).

Each command only parses flags, calls the public API of a package and prints.
"""

from __future__ import annotations

import importlib

import click

from railbook.cli._common import CliContext, setup_logging

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config",
    "config_path",
    envvar="RAILBOOK_CONFIG",
    type=click.Path(dir_okay=False),
    help="railbook.toml to use (env RAILBOOK_CONFIG; default ./railbook.toml, else built-in defaults).",
)
@click.option(
    "--ledger",
    "ledger_path",
    envvar="RAILBOOK_LEDGER",
    type=click.Path(dir_okay=False),
    help="Ledger DuckDB file (env RAILBOOK_LEDGER; overrides [ledger] path).",
)
@click.option("-v", "--verbose", count=True, help="More logging on stderr (or set RAILBOOK_LOGLEVEL).")
@click.version_option(package_name="railbook")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, ledger_path: str | None, verbose: int) -> None:
    """Railbook: the book of record for the rails AI coding agents run on.

    Ingest events from agent runtimes, CI and cloud audit trails; decide with Cedar whether
    each one broke a rail; keep every event and decision in a Merkle-chained, signed ledger
    that auditors can verify offline.

    Example:

        railbook demo
    """
    setup_logging(verbose)
    ctx.obj = CliContext(config_path=config_path, ledger_path=ledger_path)


# One module per area; each adds its commands to ``main``. Listed here, in one place.
_COMMAND_MODULES = (
    "railbook.cli._ingest",
    "railbook.cli._demo",
    "railbook.cli._bench",
    "railbook.cli._ingest_bench",
    "railbook.cli._policy",
    "railbook.cli._ledger",
    "railbook.cli._kafka",
    "railbook.cli._gate",
    "railbook.cli._dashboard",
    "railbook.cli._service",
)
for _name in _COMMAND_MODULES:
    importlib.import_module(_name)
