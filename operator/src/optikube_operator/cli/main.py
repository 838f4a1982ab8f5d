"""Entry point of the `optikube` command.

Sub-commands live in their own modules and are imported only when invoked, so that
`optikube validate` starts fast and never pays for importing the local runner.
"""

from __future__ import annotations

import importlib

import click

from optikube_operator import __version__

# name -> "module:attribute" of a click command
SUBCOMMANDS: dict[str, str] = {
    "validate": "optikube_operator.cli.validate:validate",
    "run": "optikube_operator.cli.run:run",
    "operator": "optikube_operator.cli.operator:operator",
    # the client's commands, for jobs on this machine (--local) or in a cluster
    "submit": "optikube_operator.cli.submit:submit",
    "watch": "optikube_operator.cli.submit:watch",
    "get": "optikube_operator.cli.jobs:get",
    "describe": "optikube_operator.cli.jobs:describe",
    "results": "optikube_operator.cli.jobs:results",
    "logs": "optikube_operator.cli.jobs:logs",
    "delete": "optikube_operator.cli.jobs:delete",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="optikube")
def cli() -> None:
    """optikube: make models smaller, faster and better, on Kubernetes or on this machine."""


def main() -> None:
    cli()
