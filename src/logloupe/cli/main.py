"""The ``logloupe`` command: a click group; each stage contributes commands from its own module."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from logloupe import __version__
from logloupe.errors import LogLoupeError

# One line per module that contributes commands (each exposes ``commands: list[click.Command]``).
COMMAND_MODULES = [
    "logloupe.cli.store_commands",
    "logloupe.cli.anomaly_commands",
    "logloupe.cli.auth_commands",
    "logloupe.cli.ai_commands",
    "logloupe.cli.sources_commands",
    "logloupe.cli.parse_commands",
]


class _Group(click.Group):
    """Turns domain errors into one clear line and exit code 2, in one place."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LogLoupeError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(2)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="logloupe")
def main() -> None:
    """LogLoupe: ingest, parse, search, analyse and alert on logs."""


for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as exc:  # a module not written yet must not break the others
        if exc.name != _name:
            raise
        continue
    for _command in _module.commands:
        main.add_command(_command)
