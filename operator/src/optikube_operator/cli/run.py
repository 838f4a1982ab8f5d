"""`optikube run FILE`: the job of a manifest, run on this machine with local torchrun processes."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click
from rich.console import Console

from optikube_operator.api import SpecError, load_job
from optikube_operator.core import JobSettings
from optikube_operator.core.study import TuningError, preflight
from optikube_operator.local.backend import LocalBackend, LocalOptions, RunExistsError
from optikube_operator.local.outputs import STUDY_FILE, write_outputs
from optikube_operator.local.progress import RichProgress

EXIT_SPEC_ERROR = 2
EXIT_INTERRUPTED = 130


@click.command("run")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output directory (default: runs/<job name>).",
)
@click.option(
    "--parallel",
    type=click.IntRange(1, 64),
    default=None,
    help="Trials at once; overrides spec.tuning.parallelTrials.",
)
@click.option("--resume", is_flag=True, help="Continue the run in the output directory.")
def run(file: Path, output: Path | None, parallel: int | None, resume: bool) -> None:
    """Run FILE's OptimizationJob here: tuning trials, then the final pipeline."""
    console = Console(stderr=False)
    try:
        job = load_job(file)
        settings = JobSettings.from_spec(job.spec, job.metadata.name or "optikube")
        preflight(settings)
    except SpecError as error:
        for problem in error.errors:
            click.echo(f"{file}: {problem}", err=True)
        sys.exit(EXIT_SPEC_ERROR)
    except TuningError as error:
        click.echo(f"{file}: {error}", err=True)
        sys.exit(EXIT_SPEC_ERROR)
    if job.spec.suspend:
        click.echo(f"{file}: spec.suspend is true, so there is nothing to run; set it to false", err=True)
        sys.exit(EXIT_SPEC_ERROR)
    out = output or Path("runs") / (job.metadata.name or "optikube")
    try:
        backend = LocalBackend(job, LocalOptions(output_dir=out, parallel=parallel, resume=resume))
    except RunExistsError as error:
        click.echo(str(error), err=True)
        sys.exit(EXIT_SPEC_ERROR)
    with RichProgress(backend.settings, console) as progress:
        backend.progress = progress
        state = asyncio.run(backend.run())
    results = write_outputs(backend.settings, state, out)
    if backend.interrupted:
        console.print(f"interrupted; continue with: optikube run {file} --output {out} --resume")
        sys.exit(EXIT_INTERRUPTED)
    outcome = state.finished
    best = results.get("bestTrial") or {}
    console.print(f"[bold]{outcome.get('reason')}[/bold] {outcome.get('message', '')}".rstrip())
    if best:
        console.print(f"best trial {best.get('number')}: {best.get('values')} with {best.get('params')}")
    console.print(f"results: {out / 'results.json'}  report: {out / 'report.html'}")
    console.print(f"study: optuna-dashboard {out / STUDY_FILE}")
    sys.exit(0 if outcome.get("succeeded") else 1)
