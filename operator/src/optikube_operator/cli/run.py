"""`optikube run FILE`: the job of a manifest, run on this machine with local torchrun processes."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click
from rich.console import Console

from optikube_operator.api import OptimizationJob, SpecError, load_job
from optikube_operator.api.outcomes import FinishReason
from optikube_operator.api.smoke import SmokeSpec, smoke_spec
from optikube_operator.cli.summary import best_trial_line, print_pipeline_summary
from optikube_operator.core import JobSettings
from optikube_operator.core.study import TuningError, preflight
from optikube_operator.local.backend import LocalBackend, LocalOptions, RunExistsError
from optikube_operator.local.live_view import LiveView
from optikube_operator.local.outputs import STUDY_FILE, write_outputs
from optikube_operator.reports.job_text import resolution_warning

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
@click.option(
    "--smoke",
    is_flag=True,
    help="A quick end-to-end check of the same job, offline: at most 2 trials, 1 epoch, a few hundred"
    " examples, stand-ins for downloads, pretrained weights and cluster placement (default output:"
    " runs/<job name>-smoke).",
)
def run(file: Path, output: Path | None, parallel: int | None, resume: bool, smoke: bool) -> None:
    """Run FILE's OptimizationJob here: tuning trials, then the final pipeline."""
    console = Console(stderr=False)
    smoked: SmokeSpec | None = None
    try:
        job = load_job(file)
        if smoke:
            smoked = smoke_spec(job.spec)
            job = job.model_copy(update={"spec": smoked.spec})
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
    name = job.metadata.name or "optikube"
    out = output or Path("runs") / (f"{name}-smoke" if smoked else name)
    if smoked is not None:
        _announce_smoke(console, job, smoked)
    try:
        backend = LocalBackend(job, LocalOptions(output_dir=out, parallel=parallel, resume=resume))
    except RunExistsError as error:
        click.echo(str(error), err=True)
        sys.exit(EXIT_SPEC_ERROR)
    with LiveView(backend.settings, console) as view:
        backend.view = view
        state = asyncio.run(backend.run())
    if state.finished.get("reason") == FinishReason.PREFLIGHT_FAILED:
        # the spec or its data cannot run: nothing was launched, so there is nothing to report
        click.echo(f"{file}: {state.finished.get('message')}", err=True)
        click.echo(f"{file}: no trial was started (preflight: {out / 'preflight'})", err=True)
        sys.exit(EXIT_SPEC_ERROR)
    marker = {"smoke": {"changes": [c.to_dict() for c in smoked.changes]}} if smoked else None
    results = write_outputs(backend.settings, state, out, extra=marker)
    if backend.interrupted:
        console.print(f"interrupted; continue with: optikube run {file} --output {out} --resume")
        sys.exit(EXIT_INTERRUPTED)
    outcome = state.finished
    if outcome.get("succeeded"):
        print_pipeline_summary(console, results)
    console.print(f"[bold]{outcome.get('reason')}[/bold] {outcome.get('message', '')}".rstrip())
    best = best_trial_line(results)
    if best:
        console.print(best, highlight=False, markup=False)
    too_small = resolution_warning(results)
    if too_small:
        console.print(f"[bold yellow]warning[/bold yellow]: {too_small}", highlight=False)
    console.print(f"results: {out / 'results.json'}  report: {out / 'report.html'}")
    console.print(f"study: optuna-dashboard {out / STUDY_FILE}")
    if smoked is not None:
        console.print(
            "[bold yellow]smoke run[/bold yellow]: the numbers say the job runs, not how good it is"
        )
    sys.exit(0 if outcome.get("succeeded") else 1)


def _announce_smoke(console: Console, job: OptimizationJob, smoked: SmokeSpec) -> None:
    console.print(
        f"[bold yellow]SMOKE RUN[/bold yellow] of {job.metadata.name}: the same spec except"
        f" ({len(smoked.changes)} changes):",
        highlight=False,
    )
    for change in smoked.changes:
        console.print(f"  {change.kind:<8}  {change}", highlight=False, markup=False)
