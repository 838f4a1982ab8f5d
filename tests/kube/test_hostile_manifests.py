"""Hostile manifests against the real apiserver (issue 13, part 1).

1. Hypothesis derives hundreds of invalid OptimizationJobs from the schema (tests/unit/api/
   hostile_manifests.py). Each is refused by `optikube validate` naming the broken field, and is
   server-side dry-run: the apiserver either refuses it naming the field, or accepts it, and then
   the operator's validation of the object as the apiserver returns it (what `InvalidSpec` runs)
   refuses it naming the field, without raising. Nothing is accepted by both.
2. Specs `optikube validate` accepts, drawn at the edges of what it allows (longest names,
   resource names and quantities, affinity, tolerations, nodeSelector, images), give Jobs, Pods,
   Services and ConfigMaps the apiserver accepts in a dry run: validation refuses everything the
   apiserver would refuse later.
"""

from __future__ import annotations

import collections
import copy
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from kubernetes import client
from kubernetes.client.exceptions import ApiException

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "api"))

import hostile_manifests as hm
from api_corpus_cases import server_spellings

from optikube_operator.api.manifests import parse_documents
from optikube_operator.api.validation import (
    FieldError,
    duplicate_errors,
    load_job,
    validate_manifest,
)
from optikube_operator.kube import names
from optikube_operator.kube.config import OperatorConfig
from optikube_operator.kube.resources import (
    build_config_map,
    build_run_job,
    build_service,
)
from optikube_testcluster import ControlPlane

pytestmark = pytest.mark.cluster

CORE_SAMPLE = 900  # draws; about 600 distinct manifests
RELIABILITY_SAMPLE = 5000
_SETTINGS: dict[str, Any] = {
    "database": None,
    "derandomize": True,
    "deadline": None,
    "phases": [Phase.generate],
    "suppress_health_check": list(HealthCheck),
}


@pytest.fixture(scope="module")
def namespace(crds: ControlPlane) -> str:
    # no operator watches this prefix: dry runs only
    return crds.create_namespace(f"hostile-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def api(crds: ControlPlane) -> Iterator[Any]:
    with crds.api_client() as api_client:
        yield api_client


def _draw_hostile(count: int) -> list[hm.Hostile]:
    drawn: dict[str, hm.Hostile] = {}

    @settings(max_examples=count, **_SETTINGS)
    @given(hm.hostile_manifests())
    def collect(hostile: hm.Hostile) -> None:
        drawn.setdefault(hm.key(hostile), hostile)

    collect()
    return list(drawn.values())


def _offline_errors(hostile: hm.Hostile) -> list[FieldError]:
    if hostile.text is not None:
        (document,) = parse_documents(hostile.text)
        return duplicate_errors(document) + validate_manifest(document.value)
    return validate_manifest(hostile.manifest)


def _server_names(message: str, field: str) -> bool:
    """Whether the apiserver's refusal names the field. For a map entry it names the map and quotes
    the bad key or value (metadata.labels: Invalid value: "bad key"; a CEL rule on searchSpace
    cannot name the key), and a generateName by the name generated from it."""
    if field == "metadata.generateName":
        field = "metadata.name"
    if any(spelling in message for spelling in server_spellings(field)):
        return True
    parent, bracket, _ = field.rpartition('["')
    return bool(bracket) and any(spelling in message for spelling in server_spellings(parent))


def _dry_run(api: Any, namespace: str, manifest: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """(the object as the apiserver would store it, "") or (None, its refusal)."""
    try:
        created = client.CustomObjectsApi(api).create_namespaced_custom_object(
            "optikube.io",
            "v1alpha1",
            namespace,
            "optimizationjobs",
            manifest,
            dry_run="All",
            field_validation="Strict",
        )
        return created, ""
    except ApiException as error:
        if error.status not in (400, 422):
            raise
        return None, str(error.body)


def _check_hostile(api: Any, namespace: str, hostiles: list[hm.Hostile]) -> collections.Counter[str]:
    outcomes: collections.Counter[str] = collections.Counter()
    failures: list[str] = []

    def one(hostile: hm.Hostile) -> tuple[str, str | None]:
        errors = _offline_errors(hostile)
        if not any(hm.names_field(e.path, hostile.field) for e in errors):
            return "validate", f"{hostile.kind} {hostile.field}: validate said {[str(e) for e in errors][:3]}"
        stored, refusal = _dry_run(api, namespace, copy.deepcopy(hostile.manifest))
        if stored is None:
            if not _server_names(refusal, hostile.field):
                return "server", f"{hostile.kind} {hostile.field}: the apiserver said {refusal[:300]}"
            return "refused by the apiserver", None
        # accepted: the operator validates the stored object and fails the job (InvalidSpec)
        operator = validate_manifest(stored)
        if hostile.text is not None and not operator:
            return "validate only (YAML text)", None
        if not any(hm.names_field(e.path, hostile.field) for e in operator):
            return "accepted", f"{hostile.kind} {hostile.field}: accepted; the operator said {operator[:3]}"
        return "refused by the operator (InvalidSpec)", None

    with ThreadPoolExecutor(4) as pool:
        for hostile, (outcome, failure) in zip(hostiles, pool.map(one, hostiles), strict=True):
            outcomes[outcome] += 1
            outcomes[f"class {hostile.kind}"] += 1
            if failure:
                failures.append(failure)
    assert failures == [], "\n".join(failures[:20])
    return outcomes


def test_hundreds_of_hostile_manifests_are_refused_naming_the_field(api: Any, namespace: str) -> None:
    started = time.perf_counter()
    hostiles = _draw_hostile(CORE_SAMPLE)
    assert len(hostiles) >= 500
    outcomes = _check_hostile(api, namespace, hostiles)
    print(f"{len(hostiles)} hostile manifests in {time.perf_counter() - started:.0f}s: {dict(outcomes)}")
    classes = {key for key in outcomes if key.startswith("class ")}
    assert len(classes) >= 25, sorted(classes)
    # both layers take part: the CRD refuses most, validation and the operator the rest
    assert outcomes["refused by the apiserver"] >= 300, outcomes
    assert outcomes["refused by the operator (InvalidSpec)"] >= 15


@pytest.mark.reliability
def test_thousands_of_hostile_manifests_are_refused_naming_the_field(api: Any, namespace: str) -> None:
    hostiles = _draw_hostile(RELIABILITY_SAMPLE)
    assert len(hostiles) >= 2000
    _check_hostile(api, namespace, hostiles)


# --- what validation accepts, the apiserver accepts in every derived object ----------------------

_LONG_NAME = "a" + "b" * 38 + "c"  # the longest job name allowed
_QUALIFIED = st.sampled_from(
    ["zone", "example.com/pool", "a" * 63, ("d" * 63 + ".") * 3 + "e" * 61 + "/" + "n" * 63, "A.b_c-D"]
)
_LABEL_VALUES = st.sampled_from(["", "x", "A-b_c.d", "v" * 63])
_QUANTITIES = st.sampled_from(["1", "500m", "0.5", "1e3", "2Gi", "+1", ".5", "1E2", "9223372036854775807"])


def _affinities() -> st.SearchStrategy[dict[str, Any]]:
    requirement = st.one_of(
        st.fixed_dictionaries(
            {
                "key": _QUALIFIED,
                "operator": st.sampled_from(["In", "NotIn"]),
                "values": st.lists(_LABEL_VALUES, min_size=1, max_size=3),
            }
        ),
        st.fixed_dictionaries({"key": _QUALIFIED, "operator": st.sampled_from(["Exists", "DoesNotExist"])}),
        st.fixed_dictionaries(
            {
                "key": _QUALIFIED,
                "operator": st.sampled_from(["Gt", "Lt"]),
                "values": st.sampled_from([["1"], ["10"], ["0"]]),
            }
        ),
    )
    term = st.fixed_dictionaries({"matchExpressions": st.lists(requirement, min_size=1, max_size=3)})
    selector = st.fixed_dictionaries(
        {"matchLabels": st.dictionaries(_QUALIFIED, _LABEL_VALUES, max_size=2)},
        optional={
            "matchExpressions": st.lists(
                requirement.filter(lambda r: r["operator"] not in ("Gt", "Lt")), max_size=2
            )
        },
    )
    pod_term = st.fixed_dictionaries(
        {"topologyKey": _QUALIFIED, "labelSelector": selector},
        optional={"namespaces": st.lists(st.sampled_from(["default", "x" * 63]), max_size=2)},
    )
    return st.fixed_dictionaries(
        {},
        optional={
            "nodeAffinity": st.fixed_dictionaries(
                {},
                optional={
                    "requiredDuringSchedulingIgnoredDuringExecution": st.fixed_dictionaries(
                        {"nodeSelectorTerms": st.lists(term, min_size=1, max_size=2)}
                    ),
                    "preferredDuringSchedulingIgnoredDuringExecution": st.lists(
                        st.fixed_dictionaries({"weight": st.sampled_from([1, 100]), "preference": term}),
                        max_size=2,
                    ),
                },
            ),
            "podAntiAffinity": st.fixed_dictionaries(
                {},
                optional={
                    "requiredDuringSchedulingIgnoredDuringExecution": st.lists(pod_term, max_size=2),
                    "preferredDuringSchedulingIgnoredDuringExecution": st.lists(
                        st.fixed_dictionaries({"weight": st.integers(1, 100), "podAffinityTerm": pod_term}),
                        max_size=2,
                    ),
                },
            ),
        },
    )


_TOLERATIONS = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {"key": _QUALIFIED, "operator": st.just("Equal"), "value": _LABEL_VALUES},
            optional={"effect": st.sampled_from(["NoSchedule", "PreferNoSchedule"])},
        ),
        st.fixed_dictionaries({"operator": st.just("Exists")}),
        st.fixed_dictionaries(
            {
                "key": _QUALIFIED,
                "operator": st.just("Exists"),
                "effect": st.just("NoExecute"),
                "tolerationSeconds": st.sampled_from([0, 2**62]),
            }
        ),
    ),
    max_size=3,
)
_IMAGES = st.sampled_from(
    [
        "trainer",
        "registry.example.com:5000/team/trainer:1.0",
        "a/b__c/d-e:Tag_1.x",
        "localhost/x@sha256:" + "a" * 64,
    ]
)


@st.composite
def accepted_jobs(draw: st.DrawFn) -> dict[str, Any]:
    job = hm._quickstart()
    job["metadata"]["name"] = draw(st.sampled_from([_LONG_NAME, "q", "job-2"]))
    resources = job["spec"].setdefault("resources", {})
    requests = draw(
        st.dictionaries(st.sampled_from(["cpu", "memory", "ephemeral-storage"]), _QUANTITIES, max_size=3)
    )
    limits = {name: value for name, value in requests.items() if draw(st.booleans())}
    if draw(st.booleans()):
        requests["example.com/fpga"] = limits["example.com/fpga"] = draw(st.sampled_from(["1", "4", "1k"]))
    if draw(st.booleans()):
        requests["hugepages-2Mi"] = limits["hugepages-2Mi"] = "4Mi"
        requests.setdefault("memory", "1Gi")
    resources.update(
        requests=requests,
        limits=limits,
        nodeSelector=draw(st.dictionaries(_QUALIFIED, _LABEL_VALUES, max_size=3)),
        tolerations=draw(_TOLERATIONS),
        affinity=draw(_affinities()),
        image=draw(_IMAGES),
        workers=draw(st.sampled_from([1, 2, 1024])),
        gpusPerProcess=draw(st.sampled_from([0, 1, 8])),
        processesPerWorker=draw(st.sampled_from([1, 64])),
    )
    job["spec"]["tuning"]["trialTimeout"] = draw(st.sampled_from(["1ms", "5m", "2562047h"]))
    return job


def _pod(job: dict[str, Any], index: int) -> dict[str, Any]:
    """A pod as the Job controller makes it: <job>-<index>-<random> named, with hostname and labels."""
    template = job["spec"]["template"]
    name = job["metadata"]["name"]
    labels = {
        **template["metadata"]["labels"],
        "job-name": name,
        "batch.kubernetes.io/job-name": name,
        "batch.kubernetes.io/job-completion-index": str(index),
        "controller-uid": str(uuid.uuid4()),
    }
    spec = {**template["spec"], "hostname": f"{name}-{index}"}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{name}-{index}-abcde",
            "labels": labels,
            "namespace": job["metadata"]["namespace"],
        },
        "spec": spec,
    }


def test_what_validation_accepts_the_apiserver_accepts_in_every_derived_object(
    crds: ControlPlane, api: Any, namespace: str
) -> None:
    config = OperatorConfig()
    crds.kubectl("create", "serviceaccount", config.trainer.service_account, "-n", namespace, check=False)
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    checked: list[str] = []
    refused: list[str] = []

    @settings(max_examples=60, **_SETTINGS)
    @given(accepted_jobs())
    def derived_objects_are_accepted(job: dict[str, Any]) -> None:
        errors = validate_manifest(job)
        assert errors == [], errors  # the strategy draws valid specs only
        spec = load_job(job).spec
        name = job["metadata"]["name"]
        owner = {**job, "metadata": {**job["metadata"], "uid": str(uuid.uuid4()), "namespace": namespace}}
        timeout = 2562047 * 3600.0
        for run in (names.PIPELINE, names.trial_run(9999), names.PREFLIGHT):
            run_job = build_run_job(name, namespace, run, spec, config, owner, timeout)
            objects = [
                ("Job", batch.create_namespaced_job, run_job),
                ("Pod", core.create_namespaced_pod, _pod(run_job, run_job["spec"]["completions"] - 1)),
                (
                    "ConfigMap",
                    core.create_namespaced_config_map,
                    build_config_map(name, namespace, run, {"spec": job["spec"]}, owner),
                ),
            ]
            if run != names.PREFLIGHT:  # the preflight's one process has no rendezvous Service
                objects.append(
                    ("Service", core.create_namespaced_service, build_service(name, namespace, run, owner))
                )
            for kind, create, body in objects:
                try:
                    create(namespace, body, dry_run="All")
                except ApiException as error:
                    refused.append(f"{kind} of {job['spec']['resources']}: {str(error.body)[:400]}")
                checked.append(kind)

    derived_objects_are_accepted()
    assert refused == [], "\n".join(refused[:5])
    counts = collections.Counter(checked)
    assert counts["Pod"] >= 60 and counts["Job"] == counts["Pod"] == counts["ConfigMap"]
    assert counts["Service"] == counts["Job"] * 2 // 3
