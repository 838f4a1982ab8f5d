"""What submit takes, validated as `optikube validate` does before anything is sent."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from optikube_operator.api import load_job
from optikube_operator.client import ClientError, ErrorReason
from optikube_operator.client.specs import prepare

ROOT = Path(__file__).resolve().parents[3]
QUICKSTART = ROOT / "examples" / "quickstart.yaml"
JOB_TEXT = QUICKSTART.read_text().split("\n---\n")[0]


def test_a_path_yaml_text_a_dict_and_the_model_are_the_same_submission() -> None:
    as_dict = yaml.safe_load(JOB_TEXT)
    forms = [QUICKSTART, str(QUICKSTART), JOB_TEXT, as_dict, load_job(as_dict)]
    submissions = [prepare(form) for form in forms]
    assert {s.name for s in submissions} == {"quickstart"}
    assert all(s.job.spec == submissions[0].job.spec for s in submissions)
    sent = submissions[0].sent_manifest("team-a")
    assert sent["metadata"]["namespace"] == "team-a" and sent["kind"] == "OptimizationJob"


def test_smoke_is_the_shrinking_of_optikube_run_smoke() -> None:
    smoked = prepare(QUICKSTART, smoke=True)
    assert smoked.smoked is not None and smoked.job.spec.tuning is not None
    assert smoked.job.spec.tuning.max_trials == 2 and smoked.job.spec.training.epochs == 1
    # the local backend keeps what was written (its runner shrinks it as `optikube run --smoke`);
    # a cluster gets the smoke form
    assert smoked.manifest["spec"]["tuning"]["maxTrials"] == 6
    assert smoked.sent_manifest("default")["spec"]["tuning"]["maxTrials"] == 2


@pytest.mark.parametrize(
    ("field", "value"),
    [("goal", math.nan), ("goal", math.inf), ("gradientClipNorm", -math.inf)],
)
def test_a_non_finite_number_is_refused_naming_the_field(field: str, value: float) -> None:
    job = yaml.safe_load(JOB_TEXT)
    block = "tuning" if field == "goal" else "training"
    job["spec"][block][field] = value
    with pytest.raises(ClientError) as refused:
        prepare(job)
    assert refused.value.reason is ErrorReason.INVALID_SPEC
    assert [str(e) for e in refused.value.errors] == [f"spec.{block}.{field}: must be a finite number"]
    assert "nothing was submitted" in str(refused.value) and "optikube validate" in refused.value.hint


def test_unreadable_and_unparsable_sources_say_so(tmp_path: Path) -> None:
    with pytest.raises(ClientError) as missing:
        prepare(tmp_path / "missing.yaml")
    assert missing.value.reason is ErrorReason.INVALID_SPEC and "cannot read" in str(missing.value)
    with pytest.raises(ClientError) as broken:
        prepare("kind: [unclosed\nspec: 1\n")
    assert "not valid YAML" in str(broken.value)
    with pytest.raises(ClientError) as claim_only:
        prepare(QUICKSTART.read_text().split("\n---\n")[1])
    assert "expected one OptimizationJob document, found none" in str(claim_only.value)
    twice = tmp_path / "twice.yaml"
    twice.write_text(JOB_TEXT.replace("  seed: 42\n", "  seed: 42\n  seed: 43\n"))
    with pytest.raises(ClientError) as duplicate:
        prepare(twice)
    assert "spec.seed: written twice" in str(duplicate.value)
