"""The hostile-manifest generator offline (its cluster run is tests/kube/test_hostile_manifests.py):
every manifest is refused by `optikube validate` naming the broken field, and the limits on size
keep time and memory bounded."""

from __future__ import annotations

import copy
import time
import tracemalloc
from pathlib import Path

import hostile_manifests as hm
import yaml
from hypothesis import HealthCheck, Phase, given, settings

from optikube_operator.api.manifests import MAX_MANIFEST_BYTES, parse_documents
from optikube_operator.api.validation import MAX_SPEC_BYTES, duplicate_errors, validate_manifest
from optikube_operator.cli.validate import validate_file


@settings(
    max_examples=150,
    database=None,
    derandomize=True,
    deadline=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)
@given(hm.hostile_manifests())
def test_every_hostile_manifest_is_refused_naming_its_field(hostile: hm.Hostile) -> None:
    if hostile.text is not None:
        (document,) = parse_documents(hostile.text)
        errors = duplicate_errors(document) + validate_manifest(document.value)
    else:
        errors = validate_manifest(hostile.manifest)
    assert any(hm.names_field(e.path, hostile.field) for e in errors), (hostile.kind, hostile.field, errors)


def _measured(path: Path) -> tuple[list[str], float, float]:
    started = time.perf_counter()
    tracemalloc.start()
    try:
        _, errors = validate_file(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return [str(e) for e in errors], time.perf_counter() - started, peak / 2**20


def test_a_one_mebibyte_spec_is_refused_quickly_naming_the_big_field(tmp_path: Path) -> None:
    job = hm._quickstart()
    job["spec"]["model"]["params"]["blob"] = "x" * 2**20
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(job))
    errors, seconds, mebibytes = _measured(path)
    assert errors == [
        f"spec.model.params.blob: is {2**20 + 2} bytes of JSON; the whole spec may have at most"
        f" {MAX_SPEC_BYTES}"
    ]
    assert seconds < 5 and mebibytes < 64, (seconds, mebibytes)


def test_ten_thousand_choices_and_a_thousand_parameters_are_refused_by_the_limits(tmp_path: Path) -> None:
    job = hm._quickstart()
    choices = copy.deepcopy(job)
    choices["spec"]["tuning"]["searchSpace"]["model.params.width"] = {
        "type": "categorical",
        "choices": list(range(10_000)),
    }
    parameters = copy.deepcopy(job)
    parameters["spec"]["tuning"]["searchSpace"] = {
        f"model.params.p{i}": {"type": "float", "low": 0, "high": 1} for i in range(1000)
    }
    expected = {
        "choices": 'spec.tuning.searchSpace["model.params.width"].choices: must have at most 256 items',
        "parameters": "spec.tuning.searchSpace: must have at most 32 items",
    }
    for name, manifest in (("choices", choices), ("parameters", parameters)):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(manifest))
        errors, seconds, mebibytes = _measured(path)
        assert len(errors) == 1 and errors[0].startswith(expected[name]), errors
        assert seconds < 5 and mebibytes < 64, (name, seconds, mebibytes)


def test_thousands_of_unknown_fields_give_a_bounded_list_of_errors(tmp_path: Path) -> None:
    job = hm._quickstart()
    job["spec"]["training"].update({f"field{i}": i for i in range(5000)})
    path = tmp_path / "unknown.yaml"
    path.write_text(yaml.safe_dump(job))
    errors, _, _ = _measured(path)
    assert len(errors) == 31 and errors[-1] == "... and 4970 more problems"
    assert all(e.endswith(": unknown field") for e in errors[:-1])


def test_aliases_and_oversized_files_are_refused_unread(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(8)]
    bomb.write_text("\n".join(lines) + "\n")
    errors, seconds, _ = _measured(bomb)
    assert len(errors) == 1 and "aliases are not supported" in errors[0] and seconds < 1
    huge = tmp_path / "huge.yaml"
    huge.write_text("a: " + "x" * (MAX_MANIFEST_BYTES + 10))
    errors, _, mebibytes = _measured(huge)
    assert errors == [
        f"cannot read: larger than {MAX_MANIFEST_BYTES} bytes; the apiserver would refuse it too"
    ]
    assert mebibytes < 8


def test_a_key_written_twice_is_refused_and_the_quantity_message_shows_the_value(tmp_path: Path) -> None:
    text = yaml.safe_dump(hm._quickstart(), sort_keys=False)
    text = text.replace(
        "      model.params.width:\n",
        "      training.learningRate: {type: float, low: 0.1, high: 0.2}\n      model.params.width:\n",
    )
    path = tmp_path / "twice.yaml"
    path.write_text(text)
    errors, _, _ = _measured(path)
    assert len(errors) == 1 and errors[0].startswith(
        'spec.tuning.searchSpace["training.learningRate"]: written twice'
    )
    job = hm._quickstart()
    job["spec"]["resources"]["requests"]["cpu"] = "lots"
    assert [str(e) for e in validate_manifest(job)] == [
        "spec.resources.requests[\"cpu\"]: must be a quantity such as 500m, 2Gi or 4, got 'lots'"
    ]
