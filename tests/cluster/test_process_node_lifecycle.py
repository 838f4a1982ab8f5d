"""How pods on the process node end: killed processes, graceful deletion, probes, restarts."""

from __future__ import annotations

import os
import signal
import textwrap
import time
import uuid
from functools import partial
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from optikube_testcluster import ControlPlane
from optikube_testcluster.probes import wait_for
from optikube_testcluster.processnode.testing import (
    on_process_node,
    process_pod,
    processes_with,
    wait_for_pod,
)

pytestmark = pytest.mark.cluster

# pods on the process node start and stop in well under a second: poll often, give up sooner
wait_until = partial(wait_for, timeout=30.0, interval=0.1)


def sleeper(marker: str, ignore_sigterm: bool = False) -> list[str]:
    """A command that sleeps and whose command line carries marker, to be found on the host."""
    setup = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); " if ignore_sigterm else ""
    return ["python", "-c", f"{setup}import time; time.sleep(600)  # {marker}"]


def ready(core: Any, namespace: str, name: str) -> bool:
    pod = core.read_namespaced_pod(name, namespace)
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def gone(core: Any, namespace: str, name: str) -> bool:
    try:
        core.read_namespaced_pod(name, namespace)
    except ApiException as error:
        return error.status == 404
    return False


def test_a_sigkilled_process_fails_its_pod_with_137(core: Any, namespace: str) -> None:
    marker = f"victim-{uuid.uuid4().hex}"
    core.create_namespaced_pod(
        namespace, process_pod("victim", [{"name": "main", "command": sleeper(marker)}])
    )
    running = wait_for_pod(core, namespace, "victim", phases=("Running",))
    [state] = running.status.container_statuses
    assert state.state.running is not None and state.ready is True
    [pid] = wait_until("the container's process", lambda: processes_with(marker))
    os.kill(pid, signal.SIGKILL)
    failed = wait_for_pod(core, namespace, "victim")
    terminated = failed.status.container_statuses[0].state.terminated
    assert failed.status.phase == "Failed"
    assert (terminated.exit_code, terminated.reason) == (137, "Error")
    ready_condition = {c.type: c.status for c in failed.status.conditions}
    assert ready_condition["Ready"] == "False"


def test_deletion_sigterms_then_sigkills_after_the_grace_period(
    control_plane: ControlPlane, core: Any, namespace: str
) -> None:
    marker = f"stubborn-{uuid.uuid4().hex}"
    polite = {
        "name": "polite",
        "command": [
            "sh",
            "-c",
            "trap 'echo got SIGTERM; exit 0' TERM; echo up; while true; do sleep 0.1; done",
        ],
    }
    stubborn = {"name": "stubborn", "command": sleeper(marker, ignore_sigterm=True)}
    core.create_namespaced_pod(
        namespace, process_pod("stubborn", [polite, stubborn], terminationGracePeriodSeconds=3)
    )
    core.create_namespaced_pod(
        namespace, process_pod("quick", [dict(polite)], terminationGracePeriodSeconds=30)
    )
    for name in ("stubborn", "quick"):
        wait_until(f"{name} to be Ready", lambda n=name: ready(core, namespace, n))
    uid = core.read_namespaced_pod("stubborn", namespace).metadata.uid
    assert len(processes_with(marker)) == 1

    started = time.monotonic()
    core.delete_namespaced_pod("quick", namespace)
    wait_until("quick to be deleted", lambda: gone(core, namespace, "quick"))
    # Its only process exits on SIGTERM: no waiting for the 30 s grace period.
    assert time.monotonic() - started < 10

    started = time.monotonic()
    core.delete_namespaced_pod("stubborn", namespace)
    wait_until("stubborn to be deleted", lambda: gone(core, namespace, "stubborn"), timeout=30)
    elapsed = time.monotonic() - started
    # One process ignores SIGTERM: SIGKILL comes once the 3 s grace period is over.
    assert 2.5 <= elapsed < 10, elapsed
    assert processes_with(marker) == []
    log = control_plane.container_log(namespace, "stubborn", "polite").read_text()
    assert log.splitlines() == ["up", "got SIGTERM"], log
    assert not (control_plane.process_node_dir / "pods" / uid).exists()


HTTP_AFTER_A_WHILE = textwrap.dedent(
    """
    import http.server, time
    time.sleep(3)
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/healthz" else 404)
            self.end_headers()
        def log_message(self, *args):
            pass
    http.server.HTTPServer(("", 8080), Handler).serve_forever()
    """
)


def test_readiness_gates_ready_and_a_failing_liveness_probe_kills(core: Any, namespace: str) -> None:
    server = {
        "name": "server",
        "command": ["python", "-c", HTTP_AFTER_A_WHILE],
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1},
    }
    # An exec probe runs inside the container: its /tmp, its user, its environment.
    flagged = {
        "name": "flagged",
        "command": ["sh", "-c", "sleep 2; touch /tmp/ready-$FLAG; sleep 600"],
        "env": [{"name": "FLAG", "value": "now"}],
        "securityContext": {"runAsUser": 1000},
        "readinessProbe": {
            "exec": {"command": ["sh", "-c", "test -e /tmp/ready-$FLAG && test $(id -u) = 1000"]},
            "periodSeconds": 1,
        },
    }
    core.create_namespaced_pod(namespace, process_pod("probed", [server, flagged]))
    running = wait_for_pod(core, namespace, "probed", phases=("Running",))
    assert [s.ready for s in running.status.container_statuses] == [False, False]
    wait_until("readiness to pass", lambda: ready(core, namespace, "probed"), timeout=30)
    statuses = core.read_namespaced_pod("probed", namespace).status.container_statuses
    assert [s.ready for s in statuses] == [True, True]

    tcp = {
        "name": "tcp",
        "command": ["sleep", "600"],
        "livenessProbe": {"tcpSocket": {"port": 9999}, "periodSeconds": 1, "failureThreshold": 2},
    }
    command = {
        "name": "command",
        "command": ["sleep", "600"],
        "livenessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 2},
    }
    core.create_namespaced_pod(
        namespace, process_pod("unlive", [tcp, command], terminationGracePeriodSeconds=2)
    )
    failed = wait_for_pod(core, namespace, "unlive", timeout=30)
    assert failed.status.phase == "Failed"
    for status in failed.status.container_statuses:
        terminated = status.state.terminated
        assert (terminated.exit_code, terminated.reason) == (143, "Error")  # sleep dies of the SIGTERM


def test_on_failure_restarts_until_success(core: Any, namespace: str) -> None:
    flaky = {
        "name": "flaky",
        "command": [
            "sh",
            "-c",
            "if [ -e /state/tried ]; then echo second; exit 0; fi; touch /state/tried; exit 2",
        ],
        "volumeMounts": [{"name": "state", "mountPath": "/state"}],
    }
    pod = process_pod(
        "flaky", [flaky], restartPolicy="OnFailure", volumes=[{"name": "state", "emptyDir": {}}]
    )
    core.create_namespaced_pod(namespace, pod)
    done = wait_for_pod(core, namespace, "flaky", timeout=60)
    [status] = done.status.container_statuses
    assert done.status.phase == "Succeeded"
    assert status.restart_count == 1
    assert status.last_state.terminated.exit_code == 2
    assert status.state.terminated.exit_code == 0


@pytest.mark.slow
def test_a_deployment_runs_and_its_crashed_container_restarts(core: Any, namespace: str) -> None:
    apps: Any = client.AppsV1Api(core.api_client)
    marker = f"deployed-{uuid.uuid4().hex}"
    template = {
        "metadata": {"labels": {"app": "web"}},
        "spec": on_process_node(
            {
                "containers": [
                    {
                        "name": "web",
                        "image": "process-node",
                        "command": ["python", "-m", "http.server", "8080"],
                        "workingDir": "/",
                        "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
                    },
                    {"name": "sidecar", "image": "process-node", "command": sleeper(marker)},
                ]
            }
        ),
    }
    deployment = {
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": template},
    }
    apps.create_namespaced_deployment(namespace, deployment)

    def available() -> bool:
        status = apps.read_namespaced_deployment("web", namespace).status
        return bool(status.available_replicas == 1)

    wait_until("the Deployment to be available", available, timeout=60)
    [pod] = core.list_namespaced_pod(namespace, label_selector="app=web").items
    [pid] = processes_with(marker)
    os.kill(pid, signal.SIGKILL)

    def restarted() -> bool:
        current = core.read_namespaced_pod(pod.metadata.name, namespace)
        sidecar = next(s for s in current.status.container_statuses if s.name == "sidecar")
        return sidecar.restart_count == 1 and sidecar.state.running is not None

    wait_until("the sidecar to restart", restarted, timeout=40)
    current = core.read_namespaced_pod(pod.metadata.name, namespace)
    sidecar = next(s for s in current.status.container_statuses if s.name == "sidecar")
    assert sidecar.last_state.terminated.exit_code == 137
    assert current.status.phase == "Running"
    assert len(processes_with(marker)) == 1


def test_a_container_that_cannot_start_ends_with_start_error(core: Any, namespace: str) -> None:
    missing = {"name": "missing", "command": ["no-such-program", "--flag"]}
    imageonly = {"name": "imageonly", "args": ["--flag"]}  # would need the image's entrypoint
    core.create_namespaced_pod(namespace, process_pod("unstartable", [missing, imageonly]))
    failed = wait_for_pod(core, namespace, "unstartable")
    statuses = {s.name: s.state.terminated for s in failed.status.container_statuses}
    assert failed.status.phase == "Failed"
    assert {(t.exit_code, t.reason) for t in statuses.values()} == {(128, "StartError")}
    assert "'no-such-program' not found in $PATH" in statuses["missing"].message
    assert "has no command" in statuses["imageonly"].message
