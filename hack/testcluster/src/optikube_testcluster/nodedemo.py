"""`make node-demo`: the quickstart as a user deploys it, in real containers on a real kubelet.

1. the cluster of `make cluster-up` plus the real node real-0 (a real kubelet, containerd, CoreDNS),
   its runtime holding the chart's two images built here without Docker (`make images-local`);
2. `helm install` of the chart with its defaults, but for where its pods go (the real node's
   selector and toleration, for the operator and the trainers), into a namespace that enforces
   the restricted Pod Security profile: the operator runs as the chart's Deployment, in a container;
3. `helm test`, then `kubectl apply -f examples/quickstart.yaml` (in `default`, restricted too),
   progress until the job ends, the `kubectl get optjob` row and where the model is. The cluster
   stays up until `make cluster-down`; the last line is `export KUBECONFIG=...`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml

from optikube_testcluster import daemon
from optikube_testcluster.assets import find_assets
from optikube_testcluster.demo import OPERATOR_PROCESS, ROOT, Kubectl, Say, follow, say_outcome
from optikube_testcluster.helm import run_helm
from optikube_testcluster.realnode.artifacts import chart_image_archives
from optikube_testcluster.realnode.spec import REAL_NODE_SELECTOR, REAL_NODE_TOLERATION, RealNodeSpec

CHART = ROOT / "charts" / "optikube"
RELEASE = "optikube"
SYSTEM = "optikube-system"
RESTRICTED = "pod-security.kubernetes.io/enforce=restricted"
CRDS = ("optimizationjobs.optikube.io", "optimizationtrials.optikube.io")


def real_node_values() -> dict[str, Any]:
    """The chart's values that send its pods to the real node; everything else is its default."""
    placement = {"nodeSelector": dict(REAL_NODE_SELECTOR), "tolerations": [dict(REAL_NODE_TOLERATION)]}
    return {"operator": placement, "trainer": placement}


def daemon_real_node() -> RealNodeSpec:
    return RealNodeSpec(daemon.DAEMON_REAL_NODE, images=chart_image_archives())


def restricted_namespace(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", "namespace", namespace, check=False)
    kubectl("label", "namespace", namespace, RESTRICTED, "--overwrite")


def adopt_crds(kubectl: Kubectl, namespace: str) -> None:
    """CRDs applied from crds/ (by `make cluster-demo`, say) handed to the release, as `helm install`
    requires of objects it would create."""
    for crd in CRDS:
        if kubectl("get", "crd", crd, "--ignore-not-found", "-o", "name").strip():
            kubectl("label", "crd", crd, "app.kubernetes.io/managed-by=Helm", "--overwrite")
            kubectl(
                "annotate", "crd", crd, f"meta.helm.sh/release-name={RELEASE}",
                f"meta.helm.sh/release-namespace={namespace}", "--overwrite",
            )  # fmt: skip


def install_chart(kubectl: Kubectl, bin_dir: Path, kubeconfig: str, namespace: str, say: Say) -> None:
    restricted_namespace(kubectl, namespace)
    adopt_crds(kubectl, namespace)
    deployed = run_helm(bin_dir / "helm", kubeconfig, "list", f"--namespace={namespace}", "-q")
    if RELEASE in deployed.split():
        say(f"# the chart is installed already (helm release {RELEASE} in {namespace})")
        return
    began = time.monotonic()
    install = ("install", RELEASE, str(CHART), f"--namespace={namespace}", "--wait", "--timeout=5m")
    run_helm(bin_dir / "helm", kubeconfig, *install, values=real_node_values())
    say(f"# helm install {RELEASE} into {namespace} ({RESTRICTED}): ready in {time.monotonic() - began:.0f}s")


def container_ids(kubectl: Kubectl, namespace: str) -> list[str]:
    pods = json.loads(kubectl("get", "pods", "-n", namespace, "-o", "json"))["items"]
    return [
        f"{pod['metadata']['name']} on {pod['spec'].get('nodeName')}: {status.get('containerID', '-')[:24]}…"
        for pod in pods
        for status in (pod.get("status") or {}).get("containerStatuses") or []
    ]


def run(example: Path, say: Say = print) -> int:
    began = time.monotonic()
    say("# building or finding the node's binaries and the chart's images (cached after the first run)")
    state = daemon.up(daemon.state_dir(), [daemon_real_node()])
    if any(record.name == OPERATOR_PROCESS for record in state.processes):
        say(f"# this cluster runs `make cluster-demo`'s operator ({OPERATOR_PROCESS}): two operators")
        say("# would act on one job; start afresh with: make cluster-down && make node-demo")
        return 1
    bin_dir = find_assets()
    kubectl = Kubectl(bin_dir, state.kubeconfig)
    say(f"# cluster at {state.server}, up after {time.monotonic() - began:.0f}s")
    say(kubectl("get", "node", daemon.DAEMON_REAL_NODE, "-o", "wide").rstrip())
    install_chart(kubectl, bin_dir, state.kubeconfig, SYSTEM, say)
    say(
        run_helm(
            bin_dir / "helm", state.kubeconfig, "test", RELEASE, f"--namespace={SYSTEM}", "--timeout=3m"
        ).splitlines()[-1]
    )
    job = next(d for d in yaml.safe_load_all(example.read_text()) if d and d.get("kind") == "OptimizationJob")
    name, namespace = job["metadata"]["name"], job["metadata"].get("namespace", "default")
    restricted_namespace(kubectl, namespace)
    kubectl("delete", "optjob", name, "-n", namespace, "--ignore-not-found", "--wait=true")
    kubectl("apply", "-n", namespace, "-f", str(example))
    say(f"# applied {example.name}: following optjob/{name} (kubectl get optjob {name} -w)")
    status = follow(kubectl, name, namespace, say)
    say_outcome(kubectl, state, name, namespace, status, say)
    for line in container_ids(kubectl, SYSTEM) + container_ids(kubectl, namespace):
        say(f"# container {line}")
    say(f"# {status.get('phase')} after {time.monotonic() - began:.0f}s; stop it all with: make cluster-down")
    say(daemon.export_line(state.kubeconfig))
    return 0 if status.get("phase") == "Succeeded" else 1


def main(argv: list[str]) -> int:
    return run(Path(argv[0]) if argv else ROOT / "examples" / "quickstart.yaml")
