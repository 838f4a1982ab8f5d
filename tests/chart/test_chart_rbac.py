"""The chart's RBAC is minimal, in both modes: with all its rules the operator, acting as the chart's
ServiceAccount and nothing more, takes a job from creation to its TTL deletion without one
refusal; with any one rule removed, the real apiserver refuses (403) it the resource of that rule.

- namespaced (`watchNamespaces`): a Role in the watched namespace plus the TokenReview ClusterRole;
- cluster-wide: one ClusterRole with the same `optikube.namespacedRules` plus TokenReviews.

The operator runs in this process (kube_harness), pods on kwok nodes, `Trainers` playing the
trainer and the kubelet. Namespaces are `rbac-*`, outside every other test operator's patterns.
"""

from __future__ import annotations

import json
import logging
import re
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from chart_tools import render
from kube_harness import Trainers, manifest, operator_running

from optikube_testcluster import ControlPlane
from optikube_testcluster.ports import free_ports

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
SYSTEM = "optikube-rbac"
ACCOUNT = "optikube"  # the chart's operator account, named after the release
ROLES = ("Role", "ClusterRole")
BINDINGS = ("RoleBinding", "ClusterRoleBinding")
# kopf watches CRDs to notice resources created after it started; without the permission it keeps
# the startup discovery (and says so): the chart grants no cluster-wide read of CRDs for that
OPTIONAL = {"customresourcedefinitions"}
# the apiserver's words for a refusal: `cannot patch resource "optimizationjobs/status"`
REFUSED = re.compile(r'cannot \w+ resource \\?"([a-z/]+)\\?"')


class Refusals(logging.Handler):
    """The resources of refusals that the log tells of (kopf logs its refused watches and patches,
    the operator its refused requests)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.resources: set[str] = set()
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage() + (str(record.exc_info[1]) if record.exc_info else "")
        found = set(REFUSED.findall(text))
        if found - OPTIONAL:
            self.resources |= found
            self.seen.append(text[:300])


@contextmanager
def refusals() -> Iterator[Refusals]:
    handler = Refusals()
    logging.getLogger().addHandler(handler)
    try:
        yield handler
    finally:
        logging.getLogger().removeHandler(handler)


def _rendered(mode: str, namespace: str) -> list[dict[str, Any]]:
    """The chart's ServiceAccount and RBAC objects for one watched namespace (namespaced mode) or
    for the whole cluster."""
    values = {"watchNamespaces": [namespace]} if mode == "namespaced" else {}
    kinds = ("ServiceAccount", *ROLES, *BINDINGS)
    return [d for d in render(values, SYSTEM) if d["kind"] in kinds]


def _rules(mode: str) -> list[tuple[str, int, dict[str, Any]]]:
    """(role kind/name, index, rule) for every rule of the mode's roles."""
    return [
        (f"{d['kind']}/{d['metadata']['name']}", index, rule)
        for d in _rendered(mode, "placeholder")
        if d["kind"] in ROLES
        for index, rule in enumerate(d["rules"])
    ]


def _can(plane: ControlPlane, rule: dict[str, Any], namespace: str) -> bool:
    """Whether the account may do the rule's first verb on its first resource (the authorizer's
    answer, once its informers have the change)."""
    resource, _, sub = rule["resources"][0].partition("/")
    group = rule["apiGroups"][0]
    argv = ["auth", "can-i", rule["verbs"][0], f"{resource}.{group}" if group else resource]
    argv += [f"--subresource={sub}"] if sub else []
    argv += [f"--namespace={namespace}", f"--as=system:serviceaccount:{SYSTEM}:{ACCOUNT}"]
    return plane.kubectl(*argv, check=False).stdout.strip() == "yes"


def _grant(plane: ControlPlane, mode: str, namespace: str, without: tuple[str, int] | None) -> None:
    """The chart's objects for this mode, less one rule; then waits until the authorizer answers
    accordingly for every rule."""
    objects = _rendered(mode, namespace)
    expected = []
    for obj in objects:
        if obj["kind"] not in ROLES:
            continue
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        for index, rule in enumerate(obj["rules"]):
            expected.append((rule, not (without and without == (name, index))))
        if without and without[0] == name:
            obj["rules"] = [r for i, r in enumerate(obj["rules"]) if i != without[1]]
    plane.kubectl("apply", "-f", "-", input="\n---\n".join(json.dumps(o) for o in objects))
    deadline = time.monotonic() + 30
    while (wrong := [r for r, allowed in expected if _can(plane, r, namespace) != allowed]) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.2)
    assert not wrong, f"the authorizer does not answer as granted for {wrong}"


def _forbidden(metrics_url: str) -> set[str]:
    """Resources of the operator's own requests that the apiserver refused (its metrics)."""
    text = urllib.request.urlopen(metrics_url, timeout=5).read().decode()
    return {
        match.group(1)
        for line in text.splitlines()
        if line.startswith("optikube_apiserver_requests_total{")
        and 'code="403"' in line
        and float(line.rsplit(" ", 1)[1]) > 0
        and (match := re.search(r'resource="([^"]*)"', line))
    }


def _job_gone(plane: ControlPlane, namespace: str) -> bool:
    return not plane.kubectl("get", "optjob", "-n", namespace, "-o", "name").stdout.strip()


def _scenario(
    plane: ControlPlane, mode: str, without: tuple[str, int] | None, timeout: float
) -> tuple[str, set[str]]:
    """One operator acting as the chart's account, one job; returns "completed" (finished and
    deleted by its TTL without a refusal) or "refused", with the refused resources."""
    namespace = plane.create_namespace(f"rbac-{uuid.uuid4().hex[:6]}")
    _grant(plane, mode, namespace, without)
    kubeconfig = plane.service_account_kubeconfig(SYSTEM, ACCOUNT)
    report, metrics = free_ports(2)
    job = manifest(
        "quickstart",
        namespace,
        tuning__maxTrials=1,
        tuning__parallelTrials=1,
        training__epochs=1,
        resources__workers=2,  # two workers: the runs get their rendezvous Service too
        cleanup={"keepTrialPods": "none", "ttlSecondsAfterFinished": 1},
    )
    outcome, refused = "timed out", set()
    with (
        refusals() as logged,
        operator_running(
            plane,
            kubeconfig=kubeconfig,
            namespaces=(namespace,) if mode == "namespaced" else (),
            progress_bind=f"127.0.0.1:{report}",
            metrics_bind=f"127.0.0.1:{metrics}",
        ) as running,
    ):
        trainers = Trainers(plane, namespace, running.progress_url, tolerant=True)
        plane.kubectl("apply", "-f", "-", input=json.dumps(job))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            refused = (logged.resources | _forbidden(running.metrics_url)) - OPTIONAL
            if refused:
                outcome = "refused"
                break
            trainers.play_all()
            if _job_gone(plane, namespace):
                outcome = "completed"
                break
            time.sleep(0.3)
    # the operator is gone: kopf's finalizer (its timer's) on the job and the Job controller's on
    # the kwok pods are removed as the admin, so that the namespace goes away
    unfinalized = '{"metadata":{"finalizers":null}}'
    for kind in ("optjob", "pods"):
        for name in plane.kubectl("get", kind, "-n", namespace, "-o", "name").stdout.split():
            plane.kubectl("patch", name, "-n", namespace, "--type=merge", "-p", unfinalized, check=False)
    plane.kubectl("delete", "pods", "--all", "-n", namespace, "--force", "--grace-period=0", "--wait=false")
    plane.kubectl("delete", "namespace", namespace, "--wait=false")
    if mode == "cluster-wide":
        _namespaces_gone(plane)  # the next cluster-wide operator would find this job
    return outcome, refused


def _namespaces_gone(plane: ControlPlane, timeout: float = 120) -> None:
    """Waits until no namespace of an earlier scenario is left (a cluster-wide operator would act
    on what they still hold, and be refused in a namespace being terminated)."""
    deadline = time.monotonic() + timeout
    while True:
        left = [
            n
            for n in plane.kubectl("get", "namespaces", "-o", "name").stdout.split()
            if n.startswith("namespace/rbac-")
        ]
        if not left:
            return
        if time.monotonic() > deadline:
            held = plane.kubectl("get", "optjob,opttrial,jobs,pods", "-A", check=False).stdout
            raise AssertionError(f"namespaces {left} still there after {timeout:.0f}s:\n{held}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def account(crds: ControlPlane) -> Iterator[ControlPlane]:
    crds.kubectl("create", "namespace", SYSTEM, check=False)
    yield crds
    crds.kubectl("delete", "clusterrolebinding", ACCOUNT, f"{ACCOUNT}-tokenreview", "--ignore-not-found")


# Both modes grant the same `optikube.namespacedRules`: the namespaced run proves each of them is
# needed; in make test the cluster-wide mode's full set is proven by the chart's e2e install, and
# its rule-by-rule run (2.5 min) is a long scenario.
@pytest.mark.parametrize("mode", ["namespaced", pytest.param("cluster-wide", marks=pytest.mark.long)])
def test_with_every_rule_the_job_completes_and_without_any_one_it_is_refused_that_resource(
    account: ControlPlane, mode: str
) -> None:
    plane = account
    # the other mode's bindings would grant what this one's roles leave out
    plane.kubectl("delete", "clusterrolebinding", ACCOUNT, f"{ACCOUNT}-tokenreview", "--ignore-not-found")
    if mode == "cluster-wide":
        _namespaces_gone(plane)
    assert _scenario(plane, mode, None, timeout=90) == ("completed", set())
    rules = _rules(mode)
    assert len(rules) == 11  # ten in the watched namespaces, TokenReviews at the cluster scope
    wrong = {}
    for role, index, rule in rules:
        name = f"{role} {'/'.join(rule['resources'])} {rule['verbs']}"
        outcome, refused = _scenario(plane, mode, (role, index), timeout=60)
        print(f"{mode}: without {name}: {outcome} {sorted(refused)}")
        if outcome != "refused" or not refused & set(rule["resources"]):
            wrong[name] = (outcome, sorted(refused))
    assert not wrong, f"rules whose removal showed no refusal of their resource: {wrong}"
