"""The process node's host listeners (a `kubectl port-forward` of sorts): a Service annotated
host-listen is reachable from the host's 127.0.0.1, at a pod that the host cannot reach itself.
This is how the chart tests query the Prometheus and read the /metrics of pods on the process node."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid

import pytest
from kubernetes import client

from optikube_testcluster import ControlPlane
from optikube_testcluster.ports import free_ports
from optikube_testcluster.processnode import HOST_LISTEN_ANNOTATION
from optikube_testcluster.processnode.testing import process_pod, wait_for_pod

pytestmark = pytest.mark.cluster

SERVER = (
    "import http.server as h;"
    " h.ThreadingHTTPServer(('0.0.0.0', 8000), h.SimpleHTTPRequestHandler).serve_forever()"
)


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except (urllib.error.URLError, OSError) as error:
        return 0, str(error).encode()


def test_a_host_listen_service_forwards_the_hosts_loopback_to_its_pod(control_plane: ControlPlane) -> None:
    namespace = control_plane.create_namespace(f"listen-{uuid.uuid4().hex[:6]}")
    pod = process_pod(
        "web",
        [
            {
                "name": "web",
                "command": ["python", "-c", SERVER],
                "workingDir": "/etc",
                "ports": [{"containerPort": 8000, "name": "http"}],
            }
        ],
        labels={"app": "web"},
    )
    (host_port,) = free_ports(1)
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "web",
            "namespace": namespace,
            "annotations": {HOST_LISTEN_ANNOTATION: str(host_port)},
        },
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }
    with control_plane.api_client() as api:
        core = client.CoreV1Api(api)
        core.create_namespaced_pod(namespace, pod)
        wait_for_pod(core, namespace, "web", phases=("Running",))
        pod_ip = core.read_namespaced_pod("web", namespace).status.pod_ip
    assert _get(f"http://{pod_ip}:8000/hostname")[0] == 0  # the host cannot reach the pod itself
    control_plane.kubectl("apply", "-f", "-", input=json.dumps(service))
    url = f"http://127.0.0.1:{host_port}/hostname"
    deadline = time.monotonic() + 30
    while (answer := _get(url))[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert answer == (200, b"web\n"), answer  # the pod's own /etc/hostname, through the forward
    control_plane.kubectl("delete", "namespace", namespace, "--wait=false")
