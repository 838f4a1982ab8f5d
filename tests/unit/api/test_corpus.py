"""The invalid corpus is rejected offline, naming the expected field; every example is valid."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from api_corpus_cases import CORPUS, EXAMPLES, CorpusCase, corpus_cases, names_field
from click.testing import CliRunner

from optikube_operator.api import validate_manifest
from optikube_operator.api.base import ApiModel
from optikube_operator.api.runconfig import RunConfig
from optikube_operator.cli.validate import validate

CASES = corpus_cases()
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))


def test_corpus_is_large_and_covers_both_server_outcomes() -> None:
    assert len(CASES) >= 50
    assert sum(case.server for case in CASES) >= 40
    assert sum(not case.server for case in CASES) >= 8  # what only optikube validate can see


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_validate_manifest_names_the_expected_field(case: CorpusCase) -> None:
    errors = validate_manifest(yaml.safe_load(case.path.read_text()))
    assert errors, f"{case.name} was accepted"
    # One mistake per file: every error must be about the expected field.
    assert all(names_field(e.path, case.expect) for e in errors), [str(e) for e in errors]


def test_cli_rejects_every_corpus_file_with_file_and_field() -> None:
    result = CliRunner().invoke(validate, [str(case.path) for case in CASES])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    for case in CASES:
        mine = [line for line in lines if line.startswith(f"{case.path}: ")]
        assert mine, f"no error line for {case.name}"
        assert any(line.startswith(f"{case.path}: {case.expect}") for line in mine), mine
    assert "ok " not in result.output


def test_cli_accepts_every_example() -> None:
    assert len(EXAMPLE_FILES) >= 5
    result = CliRunner().invoke(validate, [str(path) for path in EXAMPLE_FILES])
    assert result.exit_code == 0, result.output
    assert result.output.count("ok ") == len(EXAMPLE_FILES)


def test_cli_expands_folders() -> None:
    result = CliRunner().invoke(validate, [str(EXAMPLES)])
    assert result.exit_code == 0, result.output
    assert f"{len(EXAMPLE_FILES)}/{len(EXAMPLE_FILES)} files valid" in result.output
    result = CliRunner().invoke(validate, [str(EXAMPLES), str(CORPUS)])
    assert result.exit_code == 1
    assert f"{len(EXAMPLE_FILES)}/{len(EXAMPLE_FILES) + len(CASES)} files valid" in result.output


def test_cli_multi_document_file_fails_if_one_document_does(tmp_path: Path) -> None:
    # the quickstart's first document is the job; its second, a PersistentVolumeClaim, is skipped
    good = (EXAMPLES / "quickstart.yaml").read_text().split("\n---\n")[0]
    bad = (CORPUS / "training-zero-epochs.yaml").read_text()
    both = tmp_path / "both.yaml"
    both.write_text(good + "\n---\n" + bad)
    result = CliRunner().invoke(validate, [str(both)])
    assert result.exit_code == 1
    assert f"{both}: spec.training.epochs: " in result.output
    assert "(document 2)" in result.output

    two_good = tmp_path / "two.yaml"
    two_good.write_text(good + "\n---\n" + good)
    result = CliRunner().invoke(validate, [str(two_good)])
    assert result.exit_code == 0, result.output
    assert "2 documents" in result.output

    with_claim = CliRunner().invoke(validate, [str(EXAMPLES / "quickstart.yaml")])
    assert with_claim.exit_code == 0 and "(1 document)" in with_claim.output
    only_claim = tmp_path / "claim.yaml"
    only_claim.write_text((EXAMPLES / "quickstart.yaml").read_text().split("\n---\n")[1])
    refused = CliRunner().invoke(validate, [str(only_claim)])
    assert refused.exit_code == 1 and "no OptimizationJob or OptimizationTrial document" in refused.output


def test_cli_reports_unreadable_input(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("spec: [unclosed\n")
    result = CliRunner().invoke(validate, [str(broken), str(tmp_path / "missing.yaml")])
    assert result.exit_code == 1
    assert f"{broken}: cannot read" in result.output
    assert "missing.yaml: cannot read" in result.output


def test_corpus_exercises_every_cross_field_rule() -> None:
    reported = {e.message for case in CASES for e in validate_manifest(yaml.safe_load(case.path.read_text()))}
    pending: list[type[ApiModel]] = [ApiModel]
    rules = []
    while pending:
        model = pending.pop()
        pending += model.__subclasses__()
        if model is RunConfig:  # not a manifest: tests/unit/api/test_runconfig.py covers its rule
            continue
        rules += [(model.__name__, rule.message) for rule in model.RULES if rule.check is not None]
    assert len(rules) > 25
    assert [rule for rule in rules if rule[1] not in reported] == []
