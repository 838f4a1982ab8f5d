"""`optikube get`, `describe`, `results`, `logs` and `delete`: thin commands over the client, for
jobs on this machine (`--local`) or in a cluster. Where kubectl does the same well, the help says
how."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console

from optikube_operator.cli.client_options import client_errors, client_of, where_options
from optikube_operator.cli.job_view import (
    COLUMNS,
    RUNTIME_HEADER,
    best_line,
    budget_lines,
    columns,
    objective_metrics,
    printer_row,
    runtime_rows,
    table,
    trials_table,
)
from optikube_operator.reports.pipeline_text import COMPARISON_HEADER, comparison_rows


def _console() -> Console:
    return Console(highlight=False, soft_wrap=False)


@click.command("get")
@click.argument("name", required=False)
@click.option("--trials", "-t", "with_trials", is_flag=True, help="Also list each job's trials.")
@where_options
@client_errors
def get(
    name: str | None,
    with_trials: bool,
    local: bool,
    output: Path,
    namespace: str | None,
    kubeconfig: Path | None,
) -> None:
    """The jobs (or job NAME) with the columns of `kubectl get optjob`; -t adds the trials.

    On a cluster `kubectl get optjob [NAME] -w` shows the same columns and follows them."""
    client = client_of(local, output, namespace, kubeconfig)
    handles = [client.get(name)] if name else client.list()
    console = _console()
    if not handles:
        console.print(f"no OptimizationJobs in {client.where}")
        return
    click.echo(columns(COLUMNS, [printer_row(handle.snapshot) for handle in handles]))
    for handle in handles if with_trials else []:
        metrics = objective_metrics(handle.snapshot)
        console.print(trials_table(handle.snapshot.trials, metrics, title=f"Trials of {handle.name}"))


@click.command("describe")
@click.argument("name")
@where_options
@client_errors
def describe(name: str, local: bool, output: Path, namespace: str | None, kubeconfig: Path | None) -> None:
    """Job NAME: conditions, budget, best trial, baseline vs optimized and the runtimes tried.

    On a cluster `kubectl describe optjob NAME` adds the job's Kubernetes Events."""
    snapshot = client_of(local, output, namespace, kubeconfig).get(name).snapshot
    status = snapshot.status
    console = _console()
    console.print(f"[bold]{snapshot.name}[/bold] in {snapshot.where}")
    console.print(f"phase: {snapshot.phase}" + (f", stage {snapshot.stage}" if snapshot.stage else ""))
    if status.message:
        console.print(f"message: {status.message}", markup=False)
    conditions = [[c.type, c.status, c.reason, c.message] for c in status.conditions]
    if conditions:
        console.print(table(("condition", "status", "reason", "message"), conditions, "Conditions"))
    for line in budget_lines(snapshot):
        console.print(line, markup=False)
    console.print(best_line(snapshot.best_trial), markup=False)
    results = status.results
    if results is not None:
        dumped = results.model_dump(mode="json", by_alias=True, exclude_none=True)
        rows = comparison_rows(dumped.get("baseline") or {}, dumped.get("optimized") or {})
        console.print(table(COMPARISON_HEADER, rows, "Baseline vs optimized"))
        console.print(table(RUNTIME_HEADER, runtime_rows(snapshot), "Runtimes tried"))
    if status.artifacts and status.artifacts.results:
        console.print(f"results: {status.artifacts.results}", markup=False)


@click.command("results")
@click.argument("name")
@click.option("-o", "--output-format", "format_", type=click.Choice(["table", "json"]), default="table")
@where_options
@client_errors
def results(
    name: str, format_: str, local: bool, output: Path, namespace: str | None, kubeconfig: Path | None
) -> None:
    """Baseline vs optimized, the runtimes and the best trial of job NAME, once it succeeded
    (-o json: the same document from both backends)."""
    found = client_of(local, output, namespace, kubeconfig).get(name).results()
    if format_ == "json":
        click.echo(json.dumps(found.to_dict(), indent=2))
        return
    document = found.to_dict()
    console = _console()
    rows = comparison_rows(document.get("baseline") or {}, document.get("optimized") or {})
    console.print(table(COMPARISON_HEADER, rows, f"{name}: baseline vs optimized"))
    if found.runtime:
        console.print(f"ships for the {found.runtime} runtime", markup=False)
    console.print(best_line(found.best_trial), markup=False)
    if found.location:
        console.print(f"results.json: {found.location}", markup=False)


@click.command("logs")
@click.argument("name")
@click.option("--trial", "-k", type=int, default=None, help="Trial K's log (default: the final pipeline's).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing lines as they come, until the run ends.")
@where_options
@client_errors
def logs(
    name: str,
    trial: int | None,
    follow: bool,
    local: bool,
    output: Path,
    namespace: str | None,
    kubeconfig: Path | None,
) -> None:
    """The trainer log (rank 0) of job NAME's final pipeline, or of trial K.

    On a cluster this is `kubectl logs -n NS -l optikube.io/job=NAME,optikube.io/trial=K [-f]`
    (`optikube.io/run=pipeline` for the pipeline); kubectl also shows other ranks and containers."""
    handle = client_of(local, output, namespace, kubeconfig).get(name)
    if follow:
        for line in handle.logs(trial, follow=True):
            click.echo(line)
    else:
        click.echo(handle.logs(trial), nl=False)


@click.command("delete")
@click.argument("name")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Until its trials and runs are gone.")
@where_options
@client_errors
def delete(
    name: str, wait: bool, local: bool, output: Path, namespace: str | None, kubeconfig: Path | None
) -> None:
    """Delete job NAME with its trials, runs and (locally) its folder.

    On a cluster `kubectl delete optjob NAME` does the same (the trials go with the job)."""
    client_of(local, output, namespace, kubeconfig).get(name).delete(wait=wait)
    click.echo(f"deleted {name}")
