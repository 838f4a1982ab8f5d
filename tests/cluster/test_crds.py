"""The generated CRDs on the real apiserver: examples accepted, the invalid corpus rejected with the
field named, `kubectl explain`/`get` output, categories, and coexistence with Kubeflow Trainer's
OptimizationJob kind."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from optikube_operator.api import OptimizationJobStatus
from optikube_testcluster import ControlPlane

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
CRD_DIR = REPO / "crds"
OUR_CRDS = ["optimizationjobs.optikube.io", "optimizationtrials.optikube.io"]
KUBEFLOW_CRD = "optimizationjobs.trainer.kubeflow.org"


def _load_corpus_helpers() -> ModuleType:
    # The corpus reader lives with the unit tests; load it by path (test folders are not packages).
    path = REPO / "tests" / "unit" / "api" / "api_corpus_cases.py"
    spec = importlib.util.spec_from_file_location("api_corpus_cases", path)
    assert spec is not None and spec.loader is not None
    if "api_corpus_cases" in sys.modules:
        return sys.modules["api_corpus_cases"]
    module = importlib.util.module_from_spec(spec)
    sys.modules["api_corpus_cases"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


corpus = _load_corpus_helpers()
CASES = corpus.corpus_cases()
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))


class Kubectl:
    """kubectl against the test control plane with a private discovery cache, so that CRDs
    installed a moment ago are never hidden by a cached discovery document."""

    def __init__(self, plane: ControlPlane, cache_dir: Path) -> None:
        self.plane = plane
        self.cache_dir = cache_dir

    def __call__(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.plane.kubectl(f"--cache-dir={self.cache_dir}", *args, input=input, check=check)


@pytest.fixture(scope="module")
def kubectl(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    run = Kubectl(control_plane, tmp_path_factory.mktemp("kubectl-cache"))
    run("apply", "-f", str(CRD_DIR))
    run("wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{name}" for name in OUR_CRDS))
    return run


@pytest.fixture(scope="module")
def namespace(control_plane: ControlPlane, kubectl: Kubectl) -> str:
    return control_plane.create_namespace(f"crds-{uuid.uuid4().hex[:8]}")


def test_crds_are_established(kubectl: Kubectl) -> None:
    for name in OUR_CRDS:
        condition = kubectl(
            "get", f"crd/{name}", "-o", "jsonpath={.status.conditions[?(@.type=='Established')].status}"
        )
        assert condition.stdout == "True"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.stem)
def test_example_is_accepted_by_the_apiserver(kubectl: Kubectl, namespace: str, example: Path) -> None:
    result = kubectl("apply", "--dry-run=server", "-n", namespace, "-f", str(example), check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("case", [c for c in CASES if c.server], ids=lambda case: case.name)
def test_apiserver_rejects_corpus_file_naming_the_field(kubectl: Kubectl, namespace: str, case: Any) -> None:
    result = kubectl("apply", "--dry-run=server", "-n", namespace, "-f", str(case.path), check=False)
    assert result.returncode != 0, f"{case.name} was accepted by the apiserver"
    spellings = corpus.server_spellings(case.server_expect)
    assert any(spelling in result.stderr for spelling in spellings), (spellings, result.stderr)


@pytest.mark.parametrize(
    "case", [c for c in CASES if not c.server and c.expect != "apiVersion"], ids=lambda case: case.name
)
def test_mistakes_marked_offline_only_really_pass_the_apiserver(
    kubectl: Kubectl, namespace: str, case: Any
) -> None:
    # Keeps the corpus headers honest: `server: no` means only `optikube validate` catches it.
    result = kubectl("apply", "--dry-run=server", "-n", namespace, "-f", str(case.path), check=False)
    assert result.returncode == 0, result.stderr


def test_explain_prints_the_model_descriptions(kubectl: Kubectl) -> None:
    tuning = kubectl("explain", "optimizationjob.spec.tuning").stdout
    assert "The hyperparameter search (Optuna)" in tuning
    assert "parallelTrials" in tuning and "Trials running at the same time." in tuning
    space = kubectl("explain", "optimizationjob.spec.tuning.searchSpace").stdout
    assert "keyed by a dotted path into this spec" in space
    sparsity = kubectl("explain", "optimizationjob.spec.compression.pruning.sparsity").stdout
    assert "Fraction of weights (or channels) to remove." in sparsity
    recursive = kubectl("explain", "oj.spec.quantization", "--recursive").stdout
    assert "qatEpochs" in recursive and "calibrationBatches" in recursive


def _create_job_with_status(kubectl: Kubectl, namespace: str, name: str) -> None:
    manifest = next(yaml.safe_load_all((REPO / "examples" / "quickstart.yaml").read_text()))
    manifest["metadata"] = {"name": name, "namespace": namespace}
    kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))
    status = OptimizationJobStatus.model_validate(
        {
            "phase": "Compressing",
            "stage": "pruning",
            "trialCounts": {"succeeded": 5, "pruned": 1, "completed": 6},
            "bestTrial": {
                "number": 4,
                "params": {"training.learningRate": 0.004},
                "values": {"accuracy": 0.9722},
                "objectiveValue": 0.9722,
            },
            "results": {
                "sizeRatio": 0.26,
                "speedup": 1.8,
                "runtime": "onnx",
                "runtimes": [
                    {
                        "runtime": "onnx",
                        "quantization": "onnxruntime int8 static QDQ",
                        "optimized": {"batch1P50": 0.11},
                        "baseline": {"batch1P50": 0.2},
                        "withinBudget": True,
                    },
                    {"runtime": "compiled", "error": "BackendCompilerFailed: no int8 lowering"},
                ],
                "accuracyDrop": 0.37,
            },
            "conditions": [
                {
                    "type": "Tuned",
                    "status": "True",
                    "reason": "MaxTrialsReached",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ],
        },
        by_alias=True,
        by_name=False,
    )
    # The status the Python model writes must be accepted by the CRD's status schema.
    kubectl(
        "patch",
        "optjob",
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        yaml.safe_dump({"status": status.to_dict()}),
    )


def test_get_optjob_shows_the_printer_columns(kubectl: Kubectl, namespace: str) -> None:
    _create_job_with_status(kubectl, namespace, "columns")
    lines = kubectl("get", "optjob", "columns", "-n", namespace).stdout.splitlines()
    header = lines[0].split()
    assert header[:9] == ["NAME", "PHASE", "STAGE", "TRIALS", "BEST", "SIZE", "RATIO", "SPEEDUP", "RUNTIME"]
    assert header[-1] == "AGE"
    row = lines[1].split()
    assert row[:8] == ["columns", "Compressing", "pruning", "6", "0.9722", "0.26", "1.8", "onnx"]
    # the apiserver kept every runtime's record (nothing pruned by the status schema)
    stored = json.loads(kubectl("get", "optjob", "columns", "-n", namespace, "-o", "json").stdout)
    assert [r["runtime"] for r in stored["status"]["results"]["runtimes"]] == ["onnx", "compiled"]
    assert stored["status"]["results"]["runtimes"][1]["error"].startswith("BackendCompilerFailed")


def test_category_lists_jobs_and_trials(kubectl: Kubectl, namespace: str) -> None:
    _create_job_with_status(kubectl, namespace, "category")
    trial = {
        "apiVersion": "optikube.io/v1alpha1",
        "kind": "OptimizationTrial",
        "metadata": {"name": "category-0", "namespace": namespace},
        "spec": {"jobRef": {"name": "category"}, "number": 0, "params": {"training.learningRate": 0.01}},
    }
    kubectl("apply", "-f", "-", input=yaml.safe_dump(trial))
    for category in ("optikube", "ml"):
        names = kubectl("get", category, "-n", namespace, "-o", "name").stdout.split()
        assert "optimizationjob.optikube.io/category" in names
        assert "optimizationtrial.optikube.io/category-0" in names
    trials = kubectl("get", "opttrial", "-n", namespace).stdout
    assert "category-0" in trials and "JOB" in trials and "NUMBER" in trials


def _kubeflow_crd() -> dict[str, Any]:
    """A minimal stand-in for Kubeflow Trainer's OptimizationJob CRD (same kind, another group)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": KUBEFLOW_CRD},
        "spec": {
            "group": "trainer.kubeflow.org",
            "scope": "Namespaced",
            "names": {
                "kind": "OptimizationJob",
                "plural": "optimizationjobs",
                "singular": "optimizationjob",
                "listKind": "OptimizationJobList",
            },
            "versions": [
                {
                    "name": "v1alpha1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }


@pytest.fixture
def kubeflow_installed(kubectl: Kubectl) -> Iterator[None]:
    kubectl("apply", "-f", "-", input=yaml.safe_dump(_kubeflow_crd()))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{KUBEFLOW_CRD}")
    yield
    kubectl("delete", f"crd/{KUBEFLOW_CRD}", "--wait=true")


def test_short_names_and_categories_resolve_to_ours_beside_kubeflow(
    kubectl: Kubectl, namespace: str, kubeflow_installed: None
) -> None:
    _create_job_with_status(kubectl, namespace, "ours")
    theirs = {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "OptimizationJob",
        "metadata": {"name": "theirs", "namespace": namespace},
        "spec": {},
    }
    kubectl("apply", "-f", "-", input=yaml.safe_dump(theirs))
    assert (
        "optimizationjob.trainer.kubeflow.org/theirs"
        in kubectl("get", "optimizationjobs.trainer.kubeflow.org", "-n", namespace, "-o", "name").stdout
    )
    for alias in ("optjob", "oj", "optikube", "optimizationjobs.optikube.io"):
        names = kubectl("get", alias, "-n", namespace, "-o", "name").stdout.split()
        assert "optimizationjob.optikube.io/ours" in names, alias
        assert not any("kubeflow" in name for name in names), (alias, names)
    # Our printer columns, not the other kind's, behind the short name.
    assert "SPEEDUP" in kubectl("get", "optjob", "ours", "-n", namespace).stdout
