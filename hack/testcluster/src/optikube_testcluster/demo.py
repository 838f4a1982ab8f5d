"""`make cluster-demo`: the quickstart through the operator, on a local cluster whose process node
runs the trainer pods for real.

1. the cluster of `make cluster-up` (control plane, kwok nodes, a process node);
2. the CRDs, and the operator's ServiceAccount and RBAC rendered from the Helm chart (the same
   templates `helm install` applies), with a token for that account from the TokenRequest API;
3. the operator as a background process acting as that account, its progress endpoint reachable by
   pods through the Service `optikube.optikube-system.svc` (forwarded by the process node), and
   trainer defaults that send pods to the process node;
4. `kubectl apply -f examples/quickstart.yaml`, progress until the job ends, then where the
   results, the report and the model are. The cluster stays up until `make cluster-down`.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from optikube_testcluster import daemon
from optikube_testcluster.assets import find_assets
from optikube_testcluster.kubeconfig import render_token_kubeconfig, write_kubeconfig
from optikube_testcluster.layout import Layout
from optikube_testcluster.operator_command import operator_argv
from optikube_testcluster.ports import free_ports
from optikube_testcluster.processnode.paths import claim_path
from optikube_testcluster.processnode.spec import (
    HOST_PORT_ANNOTATION,
    PROCESS_NODE_SELECTOR,
    PROCESS_NODE_TOLERATION,
)

ROOT = Path(__file__).resolve().parents[4]
SYSTEM = "optikube-system"
RELEASE = "optikube"
TOKEN_SECONDS = 24 * 3600
TERMINAL = ("Succeeded", "Failed")
# the operator this demo runs as a process of the cluster (`make cluster-down` stops it)
OPERATOR_PROCESS = "optikube-operator"

Say = Callable[[str], None]


class Kubectl:
    def __init__(self, bin_dir: Path, kubeconfig: str) -> None:
        self.binary = bin_dir / "kubectl"
        self.kubeconfig = kubeconfig

    def __call__(self, *args: str, input: str | None = None, check: bool = True) -> str:
        result = subprocess.run(
            [str(self.binary), f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout


def chart_rbac(bin_dir: Path) -> str:
    """The operator's ServiceAccount and RBAC exactly as the chart renders them."""
    return subprocess.run(
        [
            str(bin_dir / "helm"),
            "template",
            RELEASE,
            str(ROOT / "charts" / "optikube"),
            f"--namespace={SYSTEM}",
            "--show-only=templates/serviceaccount.yaml",
            "--show-only=templates/rbac.yaml",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def progress_service(host_port: int) -> dict[str, Any]:
    """The Service trainer pods send progress to (the chart's, `optikube.optikube-system.svc`); the
    process node forwards it to the operator's progress endpoint at ``host_port`` on the host."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "optikube",
            "namespace": SYSTEM,
            "annotations": {HOST_PORT_ANNOTATION: str(host_port)},
        },
        "spec": {"ports": [{"name": "progress", "port": 8443, "targetPort": 8443}]},
    }


def operator_token(kubectl: Kubectl, account: str) -> str:
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": TOKEN_SECONDS},
    }
    created = kubectl(
        "create",
        "--raw",
        f"/api/v1/namespaces/{SYSTEM}/serviceaccounts/{account}/token",
        "-f",
        "-",
        input=json.dumps(request),
    )
    return str(json.loads(created)["status"]["token"])


def start_operator(state: daemon.ClusterState, kubectl: Kubectl, say: Say) -> tuple[int, Path]:
    """The operator as a recorded background process of the cluster, acting as the chart's account."""
    root = Layout(Path(state.root))
    account = RELEASE  # the chart's operator ServiceAccount is named after the release
    token = operator_token(kubectl, account)
    kubeconfig = write_kubeconfig(
        root.root / "operator.kubeconfig",
        render_token_kubeconfig(
            state.server, root.ca_cert.read_bytes(), token, f"system:serviceaccount:{SYSTEM}:{account}"
        ),
    )
    report, metrics = free_ports(2)
    kubectl("apply", "-f", "-", input=json.dumps(progress_service(report)))
    defaults = root.root / "trainer-defaults.yaml"
    defaults.write_text(
        yaml.safe_dump(
            {"nodeSelector": dict(PROCESS_NODE_SELECTOR), "tolerations": [dict(PROCESS_NODE_TOLERATION)]}
        )
    )
    log = root.logs / "operator.log"
    argv = operator_argv(
        kubeconfig,
        report,
        metrics,
        f"--progress-url=http://optikube.{SYSTEM}.svc:8443/v1/progress",
        f"--trainer-defaults={defaults}",
    )
    pid = daemon.attach(Path(daemon.state_dir()), OPERATOR_PROCESS, argv, log)
    say(f"# operator pid {pid}, acting as system:serviceaccount:{SYSTEM}:{account}")
    say(f"# operator metrics http://127.0.0.1:{metrics}/metrics, log {log}")
    return pid, log


def _summary(status: dict[str, Any]) -> str:
    counts = status.get("trialCounts") or {}
    best = (status.get("bestTrial") or {}).get("objectiveValue")
    parts = [str(status.get("phase", "Pending"))]
    if status.get("stage"):
        parts.append(f"stage {status['stage']}")
    parts.append(f"trials {counts.get('completed', 0)} done, {counts.get('running', 0)} running")
    if best is not None:
        parts.append(f"best {best:.4f}")
    return " | ".join(parts)


def follow(kubectl: Kubectl, name: str, namespace: str, say: Say, timeout: float = 3600.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    shown = ""
    started = time.monotonic()
    while time.monotonic() < deadline:
        raw = kubectl("get", "optjob", name, "-n", namespace, "-o", "json", check=False)
        status = (json.loads(raw) if raw else {}).get("status") or {}
        line = _summary(status)
        if line != shown:
            say(f"# {time.monotonic() - started:6.0f}s {line}")
            shown = line
        if status.get("phase") in TERMINAL:
            return dict(status)
        time.sleep(2.0)
    raise TimeoutError(f"{name} did not finish within {timeout:.0f}s")


def say_outcome(
    kubectl: Kubectl, state: daemon.ClusterState, name: str, namespace: str, status: dict[str, Any], say: Say
) -> None:
    """The job's `kubectl get optjob` row, its results, and where its files are on this machine."""
    say(kubectl("get", "optjob", name, "-n", namespace).rstrip())
    results = status.get("results") or {}
    if results:
        baseline, optimized = results.get("baseline") or {}, results.get("optimized") or {}
        accuracy = [side.get("metrics", {}).get("accuracy") for side in (baseline, optimized)]
        size = [side.get("sizeBytes") for side in (baseline, optimized)]
        say(f"# test accuracy {accuracy[0]} -> {accuracy[1]}")
        ratio, speedup = results.get("sizeRatio"), results.get("speedup")
        say(f"# size {size[0]} -> {size[1]} bytes (ratio {ratio}), speedup {speedup}")
        # Each runtime is tried with a quantized and a float form: the form tells them apart.
        tried = "; ".join(
            f"{r.get('runtime')} {r.get('quantization', '-')}: "
            f"{(r.get('optimized') or {}).get('batch1P50', r.get('error', '-'))}"
            for r in results.get("runtimes") or []
        )
        if results.get("runtime"):
            say(f"# ships for {results['runtime']}; batch-1 ms per runtime tried: {tried}")
    location = (status.get("artifacts") or {}).get("location", "")
    if location.startswith("pvc://"):
        claim, _, folder = location.removeprefix("pvc://").partition("/")
        host = claim_path(Layout(Path(state.root)).process_nodes, namespace, claim) / folder / "pipeline"
        say(f"# results: {host / 'results.json'}")
        say(f"# report:  {host / 'report.html'}")
        say(f"# model:   {host / 'model'}")


def run(example: Path, say: Say = print) -> int:
    directory = daemon.state_dir()
    began = time.monotonic()
    state = daemon.up(directory)
    bin_dir = find_assets()
    kubectl = Kubectl(bin_dir, state.kubeconfig)
    say(f"# cluster at {state.server}")
    kubectl("apply", "-f", str(ROOT / "crds"))
    kubectl(
        "wait",
        "--for=condition=Established",
        "crd/optimizationjobs.optikube.io",
        "crd/optimizationtrials.optikube.io",
    )
    kubectl("create", "namespace", SYSTEM, check=False)
    kubectl("apply", "-f", "-", input=chart_rbac(bin_dir))
    if not any(record.name == OPERATOR_PROCESS for record in daemon.load_state(directory).processes):  # type: ignore[union-attr]
        start_operator(state, kubectl, say)
    manifest = yaml.safe_load_all(example.read_text())
    job = next(doc for doc in manifest if isinstance(doc, dict) and doc.get("kind") == "OptimizationJob")
    name = job["metadata"]["name"]
    namespace = job["metadata"].get("namespace", "default")
    kubectl("delete", "optjob", name, "-n", namespace, "--ignore-not-found", "--wait=true")
    kubectl("apply", "-f", str(example))
    say(f"# applied {example.name}: following optjob/{name} (kubectl get optjob {name} -w)")
    status = follow(kubectl, name, namespace, say)
    say_outcome(kubectl, state, name, namespace, status, say)
    say(f"# {status.get('phase')} after {time.monotonic() - began:.0f}s; stop it all with: make cluster-down")
    say(daemon.export_line(state.kubeconfig))
    return 0 if status.get("phase") == "Succeeded" else 1


def main(argv: list[str]) -> int:
    example = Path(argv[0]) if argv else ROOT / "examples" / "quickstart.yaml"
    return run(example)
