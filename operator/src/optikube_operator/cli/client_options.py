"""What the client's commands share: where the jobs are (`--local --output DIR`, or a cluster's
`--namespace` and `--kubeconfig`) and how a ClientError ends a command (its message and what to
do on stderr, exit 1; 2 for an invalid spec, as `optikube run`)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from optikube_operator.client import Client, ClientError, ErrorReason

F = TypeVar("F", bound=Callable[..., Any])
EXIT_FAILED = 1
EXIT_SPEC_ERROR = 2


def where_options(command: F) -> F:
    """--local/--output for jobs on this machine, --namespace/--kubeconfig for a cluster."""
    options = [
        click.option(
            "--local", is_flag=True, help="Jobs run on this machine (as optikube run), in --output."
        ),
        click.option(
            "--output",
            type=click.Path(file_okay=False, path_type=Path),
            default=Path("runs"),
            show_default=True,
            help="With --local: the folder that holds one folder per job.",
        ),
        click.option(
            "--namespace",
            "-n",
            default=None,
            help="The cluster namespace (default: the kubeconfig context's, in a pod its own).",
        ),
        click.option(
            "--kubeconfig",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="Kubeconfig of the cluster (default: $KUBECONFIG or ~/.kube/config; in a pod, its own).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def client_of(local: bool, output: Path, namespace: str | None, kubeconfig: Path | None) -> Client:
    if local:
        if namespace is not None:
            raise click.UsageError("--local and --namespace exclude each other")
        return Client.local(output_dir=output)
    return Client.cluster(namespace=namespace, kubeconfig=kubeconfig)


def client_errors(command: F) -> F:
    """A ClientError ends the command with its message and what to do, not a traceback."""

    @functools.wraps(command)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ClientError as error:
            click.echo(f"error ({error.reason}): {error}", err=True)
            sys.exit(EXIT_SPEC_ERROR if error.reason is ErrorReason.INVALID_SPEC else EXIT_FAILED)

    return wrapped  # type: ignore[return-value]
