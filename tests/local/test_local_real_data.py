"""`optikube run` on data as it comes: a CSV with categorical text columns and missing cells needs no
hand-cleaning, and NaN inputs fail every trial at its first epoch instead of ending Succeeded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.slow

CUSTOMERS = Path(__file__).with_name("data") / "customers.csv"
# the spellings of an empty cell customers.csv uses (tests/local/data/make_customers_csv.py)
MISSING = ["NA", "", "nan", "null", "None", "?"]
CATEGORICAL = ["plan", "region"]


def _job(name: str, file: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "optikube.io/v1alpha1",
        "kind": "OptimizationJob",
        "metadata": {"name": name},
        "spec": {
            "seed": 7,
            "data": {"source": {"file": file}, "validationSplit": 0.2, "testSplit": 0.3},
            "model": {"builtin": {"name": "mlp"}, "params": {"width": 32, "depth": 1}},
            "objectives": [{"metric": "accuracy", "direction": "maximize"}],
            "training": {"epochs": 12, "batchSize": 64, "learningRate": 0.01},
            "export": {"runtime": "eager"},
            **spec,
        },
    }


def _run(tmp_path: Path, job: dict[str, Any]) -> tuple[int, str, dict[str, Any]]:
    """`optikube run` as a user types it; its exit status, its output and its results.json."""
    name = job["metadata"]["name"]
    manifest = tmp_path / f"{name}.yaml"
    manifest.write_text(yaml.safe_dump(job))
    out = tmp_path / name
    command = [str(Path(sys.executable).with_name("optikube")), "run", str(manifest), "--output", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    return done.returncode, done.stdout + done.stderr, json.loads((out / "results.json").read_text())


def _cleaned_by_hand(path: Path) -> Path:
    """What a user would do before: missing cells filled from the whole file, one-hot columns by hand."""
    table = pd.read_csv(CUSTOMERS, keep_default_na=False, na_values=MISSING)
    for column in table.columns:
        if column in CATEGORICAL:
            table[column] = table[column].fillna(table[column].mode()[0])
        elif column != "churned":
            table[column] = table[column].fillna(table[column].median())
    cleaned = pd.get_dummies(table, columns=CATEGORICAL, dtype=float)
    cleaned.to_csv(path, index=False)
    return path


def test_a_csv_as_it_comes_trains_as_well_as_the_same_data_cleaned_by_hand(tmp_path: Path) -> None:
    cleaned = _cleaned_by_hand(tmp_path / "customers-cleaned.csv")
    raw_code, raw_output, raw = _run(
        tmp_path, _job("raw-csv", {"path": str(CUSTOMERS), "format": "csv", "targetColumn": "churned"})
    )
    # every column of the cleaned file is a number: none may be read as categorical
    cleaned_file = {
        "path": str(cleaned),
        "format": "csv",
        "targetColumn": "churned",
        "categoricalColumns": [],
    }
    clean_code, clean_output, clean = _run(tmp_path, _job("cleaned-csv", cleaned_file))
    assert raw_code == 0 and raw["outcome"]["reason"] == "Succeeded", raw_output[-3000:]
    assert clean_code == 0 and clean["outcome"]["reason"] == "Succeeded", clean_output[-3000:]

    raw_accuracy = raw["baseline"]["metrics"]["accuracy"]
    clean_accuracy = clean["baseline"]["metrics"]["accuracy"]
    labels = pd.read_csv(CUSTOMERS, keep_default_na=False)["churned"]
    majority = labels.value_counts(normalize=True).max()
    print(
        f"test accuracy: as it comes {raw_accuracy:.4f}, cleaned by hand {clean_accuracy:.4f},"
        f" majority class {majority:.4f}"
    )
    assert raw_accuracy > majority + 0.2  # it learned from the columns, not the class balance
    assert abs(raw_accuracy - clean_accuracy) <= 0.02

    # results.json says what was found and chosen, as the file really is
    cells = pd.read_csv(CUSTOMERS, dtype=str, keep_default_na=False)
    missing = {c: int(cells[c].str.strip().isin(MISSING).sum()) for c in cells.columns}
    data = raw["data"]
    assert data["table"]["missingCells"] == {c: n for c, n in missing.items() if n}
    assert data["table"]["rowsUsed"] == len(cells) and data["table"]["rowsDropped"] == 0
    assert data["encoding"]["categoricalColumns"] == CATEGORICAL
    for column in CATEGORICAL:
        present = sorted(set(cells[column].str.strip()) - set(MISSING))
        assert data["encoding"]["categories"][column]["values"] == present
        assert data["encoding"]["imputed"][column]["strategy"] == "mostFrequent"
    assert data["encoding"]["imputed"]["age"]["trainingCells"] < missing["age"]  # the training rows' only
    assert "<h2>Data</h2>" in (tmp_path / "raw-csv" / "pipeline" / "report.html").read_text()


def _nan_measurements(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    features = rng.normal(size=(300, 4)).astype(np.float32) + labels[:, None]
    features[rng.random(300) < 0.1, 1] = np.nan  # cells an export wrote as nan
    path = tmp_path / "measurements.npz"
    np.savez(path, x=features, label=labels)
    return path


def test_nan_inputs_stop_the_job_before_any_trial_naming_the_column(tmp_path: Path) -> None:
    job = _job(
        "nan-inputs",
        {"path": str(_nan_measurements(tmp_path)), "format": "npz"},
        tuning={
            "sampler": {"type": "random"},
            "maxTrials": 2,
            "parallelTrials": 2,
            "searchSpace": {
                "training.learningRate": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}
            },
        },
    )
    manifest = tmp_path / "nan-inputs.yaml"
    manifest.write_text(yaml.safe_dump(job))
    out = tmp_path / "nan-inputs"
    command = [str(Path(sys.executable).with_name("optikube")), "run", str(manifest), "--output", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 2, done.stdout + done.stderr  # refused as a spec error, not Succeeded
    assert "spec.data.source" in done.stderr and "in column 'x[:, 1]'," in done.stderr
    assert not (out / "trials").exists() and not (out / "model").exists()


def test_a_trial_on_nan_inputs_fails_at_its_first_epoch_naming_the_column(tmp_path: Path) -> None:
    """What the preflight keeps from happening, had the trial run anyway: the trainer's own guard."""
    spec = _job("nan-trial", {"path": str(_nan_measurements(tmp_path)), "format": "npz"})["spec"]
    spec["training"]["epochs"] = 3
    config = tmp_path / "run.json"
    config.write_text(
        json.dumps(
            {
                "apiVersion": "optikube.io/v1alpha1",
                "kind": "RunConfig",
                "stage": "trial",
                "job": {"name": "nan-trial"},
                "trial": {"number": 0, "params": {}},
                "spec": spec,
                "outputDir": str(tmp_path / "trial-0"),
            }
        )
    )
    command = [sys.executable, "-m", "optikube_trainer", "trial", "--config", str(config), "--cpu"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    failed = [event for event in events if event.get("type") == "failed"]
    assert len(failed) == 1 and not any(event.get("type") == "intermediate" for event in events)
    message = failed[0]["message"]
    assert message.startswith("NonFiniteTrainingError: epoch 1 of 3: training loss is nan")
    assert "column 'x[:, 1]'" in message and "x[:, 0]" not in message
