"""`optikube validate FILE...`: offline validation with the same rules the apiserver and operator apply."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import yaml
from rich.console import Console

from optikube_operator.api import GROUP
from optikube_operator.api.manifests import read_documents
from optikube_operator.api.validation import FieldError, duplicate_errors, validate_manifest


def _ours(document: object) -> bool:
    return not isinstance(document, dict) or str(document.get("apiVersion", "")).startswith(GROUP + "/")


def validate_file(path: Path) -> tuple[int, list[FieldError]]:
    """(number of documents, errors) of one file; in a multi-document file messages name the document."""
    try:
        documents = read_documents(path)
    except (OSError, yaml.YAMLError) as exc:
        return 0, [FieldError("", f"cannot read: {exc}")]
    if not documents:
        return 0, [FieldError("", "no YAML document found")]
    errors: list[FieldError] = []
    ours = [d for d in documents if _ours(d.value)]
    if not ours:
        return 0, [FieldError("", "no OptimizationJob or OptimizationTrial document found")]
    for index, document in enumerate(documents):
        if not _ours(document.value):
            continue  # a claim or a namespace next to the job: the apiserver validates those
        suffix = f" (document {index + 1})" if len(documents) > 1 else ""
        found = duplicate_errors(document) + validate_manifest(document.value)
        errors += [FieldError(e.path, e.message + suffix) for e in found]
    return len(ours), errors


def expand(paths: tuple[Path, ...]) -> list[Path]:
    """Files as given; a folder stands for its YAML files, in name order."""
    expanded: list[Path] = []
    for path in paths:
        if path.is_dir():
            expanded += sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
        else:
            expanded.append(path)
    return expanded


def data_errors(path: Path) -> tuple[list[FieldError], list[str]]:
    """(problems, what was found) of the preflight of each OptimizationJob in a valid file: its data
    loaded and its models built on this machine, as `optikube run` does before the first trial."""
    import asyncio
    import os
    import tempfile

    from optikube_operator.api import load_job
    from optikube_operator.api.runconfig import JobIdentity
    from optikube_operator.local.preflight import run_preflight
    from optikube_operator.local.processes import trainer_command

    errors: list[FieldError] = []
    found: list[str] = []
    documents = [d.value for d in read_documents(path)]
    for document in documents:
        if not isinstance(document, dict) or document.get("kind") != "OptimizationJob":
            continue
        job = load_job(document)
        with tempfile.TemporaryDirectory(prefix="optikube-preflight-") as scratch:
            outcome = asyncio.run(
                run_preflight(
                    JobIdentity.of(job), job.spec.to_dict(), Path(scratch), trainer_command, dict(os.environ)
                )
            )
        assert outcome is not None  # nothing stops it
        if outcome.passed:
            findings = outcome.findings
            found.append(
                f"{job.metadata.name}: {findings.get('samples')} examples, {findings.get('classes')} classes,"
                f" inputs {findings.get('inputShape')}, a model of {findings.get('parameters')} parameters"
            )
        else:
            field, _, message = outcome.message.partition(": ")
            errors.append(FieldError(field, message) if message else FieldError("", outcome.message))
    return errors, found


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
@click.option(
    "--data",
    is_flag=True,
    help="Also run the preflight of each valid job here: load its data and build its models once"
    " (needs the trainer: pip install optikube[trainer]).",
)
def validate(files: tuple[Path, ...], quiet: bool, data: bool) -> None:
    """Validate OptimizationJob and OptimizationTrial manifests (multi-document YAML allowed).

    FILES may include folders, whose *.yaml and *.yml files are checked. Prints one
    `FILE: <field path>: <message>` line per problem; exits 1 if any file is invalid.
    With --data, a valid job's data file, columns, classes and model are checked too.
    """
    console = Console(highlight=False, soft_wrap=True)
    files = tuple(expand(files))
    invalid = 0
    for path in files:
        count, errors = validate_file(path)
        found: list[str] = []
        if data and not errors:
            errors, found = data_errors(path)
        for line in found if not quiet else []:
            console.print(f"[green]data ok[/green] {path}: {line}")
        for error in errors:
            # Plain click.echo: these lines are for grep and editors, not for styling.
            click.echo(f"{path}: {error}")
        if errors:
            invalid += 1
        elif not quiet:
            noun = "document" if count == 1 else "documents"
            console.print(f"[green]ok[/green] {path} ({count} {noun})")
    if not quiet and len(files) > 1:
        console.print(f"{len(files) - invalid}/{len(files)} files valid")
    sys.exit(1 if invalid else 0)
