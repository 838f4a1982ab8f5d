"""`optikube submit FILE` and `optikube watch NAME`: a job submitted through the client, locally or
to a cluster, and followed live (a trials table on a terminal, one line per update otherwise)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.live import Live

from optikube_operator.cli.client_options import EXIT_FAILED, client_errors, client_of, where_options
from optikube_operator.cli.job_view import best_line, live_view
from optikube_operator.client import JobHandle


def follow(handle: JobHandle, console: Console) -> int:
    """Show the job until it ends; the exit code says how it ended."""
    if console.is_terminal:
        with Live(live_view(handle.snapshot), console=console, refresh_per_second=4) as live:
            for _ in handle.watch():
                live.update(live_view(handle.snapshot))
    else:
        for update in handle.watch():
            console.print(str(update), markup=False, highlight=False)
    console.print(best_line(handle.snapshot.best_trial), markup=False, highlight=False)
    if handle.phase != "Succeeded":
        console.print(
            f"{handle.name} ended {handle.phase}: {handle.snapshot.status.message or ''}", markup=False
        )
        return EXIT_FAILED
    return 0


@click.command("submit")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--watch", "-w", "then_watch", is_flag=True, help="Follow the job until it ends.")
@click.option("--smoke", is_flag=True, help="Submit the smoke form of the job (as optikube run --smoke).")
@where_options
@client_errors
def submit(
    file: Path,
    then_watch: bool,
    smoke: bool,
    local: bool,
    output: Path,
    namespace: str | None,
    kubeconfig: Path | None,
) -> None:
    """Validate FILE's OptimizationJob as `optikube validate` does, then submit it: to the cluster
    (`kubectl apply -f FILE` does the same without the offline check), or with --local to a process
    of this machine that runs it as `optikube run` does."""
    client = client_of(local, output, namespace, kubeconfig)
    handle = client.submit(file, smoke=smoke)
    click.echo(f"submitted {handle.name} to {client.where}")
    if then_watch:
        sys.exit(follow(handle, Console(highlight=False, soft_wrap=True)))


@click.command("watch")
@click.argument("name")
@where_options
@client_errors
def watch(name: str, local: bool, output: Path, namespace: str | None, kubeconfig: Path | None) -> None:
    """Follow job NAME live: its trials, the best so far, the phase and the pipeline's stage, until
    it ends (`kubectl get optjob NAME -w` follows the printer columns)."""
    handle = client_of(local, output, namespace, kubeconfig).get(name)
    sys.exit(follow(handle, Console(highlight=False, soft_wrap=True)))
