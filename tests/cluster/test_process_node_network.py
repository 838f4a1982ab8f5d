"""Pod networking on the process node: cluster DNS by hosts file, ClusterIP Services through the
node's proxy (named target ports), host-backed Services, and the `kubernetes` Service with the
pod's own in-cluster credentials; nothing of it touches the host's network namespace."""

from __future__ import annotations

import http.server
import json
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster_objects import headless_service
from kubernetes import client

from optikube_testcluster import HOST_PORT_ANNOTATION, ControlPlane
from optikube_testcluster.processnode.testing import process_pod, processes_with, wait_for_pod
from optikube_testcluster.sockets import parse_listeners

pytestmark = pytest.mark.cluster

WEB = textwrap.dedent(
    """
    import http.server, socket
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"hello from {socket.gethostname()} at {self.path}".encode()
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass
    http.server.ThreadingHTTPServer(("", 8080), Handler).serve_forever()
    """
)

CLIENT = textwrap.dedent(
    """
    import json, os, socket, ssl, urllib.error, urllib.request
    sa = "/var/run/secrets/kubernetes.io/serviceaccount"
    ns = open(f"{sa}/namespace").read()
    def get(url, context=None):
        try:
            with urllib.request.urlopen(url, timeout=10, context=context) as response:
                return [response.status, response.read().decode()]
        except urllib.error.HTTPError as error:
            return [error.code, error.read().decode()]
        except Exception as error:
            return ["error", repr(error)]
    seen = {
        "web_fqdn": get(f"http://web.{ns}.svc.cluster.local/a"),
        "web_svc": get(f"http://web.{ns}.svc/b"),
        "web_short": get("http://web/c"),
        "host": get(f"http://report.{ns}.svc:8080/report"),
        "web_ip": socket.gethostbyname(f"web.{ns}"),
        "kubernetes_ip": socket.gethostbyname("kubernetes.default.svc"),
    }
    # In-cluster configuration, as client libraries build it: the auto-mounted token and CA.
    context = ssl.create_default_context(cafile=f"{sa}/ca.crt")
    headers = {"Authorization": "Bearer " + open(f"{sa}/token").read()}
    host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
    seen["version"] = get(urllib.request.Request(f"https://{host}:{port}/version", headers=headers), context)
    pods = f"https://kubernetes.default.svc/api/v1/namespaces/{ns}/pods"
    seen["pods"] = get(urllib.request.Request(pods, headers=headers), context)
    print(json.dumps(seen), flush=True)
    """
)


@pytest.fixture
def host_server() -> Iterator[tuple[int, list[str]]]:
    """An HTTP server of the test on the host's 127.0.0.1, as the in-process operator runs one."""
    paths: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            paths.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"host says hi")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], paths
    server.shutdown()
    server.server_close()


def _holder_pid(control_plane: ControlPlane) -> int:
    """The process holding the node's network namespace (nsinit.py hold)."""
    [agent] = [c.pid for c in control_plane.components if c.name == "process-node"]
    [holder] = [
        p
        for p in processes_with("nsinit.py hold")
        if f"PPid:\t{agent}\n" in Path(f"/proc/{p}/status").read_text()
    ]
    return holder


def test_services_dns_host_backed_and_the_apiserver(
    control_plane: ControlPlane, core: Any, namespace: str, host_server: tuple[int, list[str]]
) -> None:
    host_port, host_paths = host_server
    web = {
        "name": "web",
        "command": ["python", "-c", WEB],
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
    }
    core.create_namespaced_pod(
        namespace, process_pod("web", [web], restartPolicy="Always", labels={"app": "web"})
    )
    core.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]},
        },
    )
    core.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": "report", "annotations": {HOST_PORT_ANNOTATION: str(host_port)}},
            "spec": {"ports": [{"port": 8080}]},
        },
    )
    wait_for_pod(core, namespace, "web", phases=("Running",))
    discovery: Any = client.DiscoveryV1Api(core.api_client)

    def web_endpoint_ready() -> bool:
        slices = discovery.list_namespaced_endpoint_slice(
            namespace, label_selector="kubernetes.io/service-name=web"
        )
        return any(e.conditions.ready for s in slices.items for e in s.endpoints or [])

    deadline_wait(web_endpoint_ready, "the web endpoint to be ready")
    core.create_namespaced_pod(
        namespace, process_pod("client", [{"name": "main", "command": ["python", "-c", CLIENT]}])
    )
    done = wait_for_pod(core, namespace, "client", timeout=90)
    log = control_plane.container_log(namespace, "client", "main").read_text()
    assert done.status.phase == "Succeeded", log
    seen = json.loads(log.splitlines()[-1])

    web_ip = core.read_namespaced_service("web", namespace).spec.cluster_ip
    assert seen["web_ip"] == web_ip and seen["kubernetes_ip"] == "10.96.0.1"
    assert seen["web_fqdn"] == [200, "hello from web at /a"]
    assert seen["web_svc"] == [200, "hello from web at /b"]
    assert seen["web_short"] == [200, "hello from web at /c"]
    assert seen["host"] == [200, "host says hi"] and host_paths == ["/report"]
    status, body = seen["version"]
    assert status == 200 and json.loads(body)["gitVersion"].startswith("v1.")
    # RBAC refuses the default ServiceAccount, which proves that the apiserver authenticated it.
    status, body = seen["pods"]
    assert status == 403, body
    assert f"system:serviceaccount:{namespace}:default" in json.loads(body)["message"]

    # The proxy listens inside the node's network namespace, not the host's.
    holder = _holder_pid(control_plane)
    inside = {(s.address, s.port) for s in parse_listeners(Path(f"/proc/{holder}/net/tcp").read_text())}
    outside = {(s.address, s.port) for s in parse_listeners(Path("/proc/self/net/tcp").read_text())}
    assert (web_ip, 80) in inside and ("10.96.0.1", 443) in inside
    assert not any(address.startswith("10.") for address, _ in outside)


def test_the_host_network_namespace_is_left_alone(control_plane: ControlPlane) -> None:
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    addresses = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    routes = subprocess.run(["ip", "route"], capture_output=True, text=True, check=True).stdout
    assert "okbr0" not in links and " vp" not in links
    assert "10.244." not in addresses and "10.96." not in addresses
    assert "10.244." not in routes and "10.96." not in routes
    # ... while the node's own namespace has the bridge and the pods' gateways.
    holder = _holder_pid(control_plane)
    inside = subprocess.run(
        ["nsenter", f"--net=/proc/{holder}/ns/net", "ip", "-o", "addr"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "okbr0" in inside and "10.244.128.1/24" in inside


def deadline_wait(condition: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


PEER = textwrap.dedent(
    """
    import json, socket, sys, threading, time
    me, other = socket.gethostname(), sys.argv[1]
    server = socket.socket()
    server.bind(("", 29500))  # every pod has its own address: both can listen on 29500
    server.listen()
    served = threading.Event()
    def serve():
        connection, _ = server.accept()
        connection.sendall(me.encode())
        connection.close()
        served.set()
    threading.Thread(target=serve, daemon=True).start()
    deadline = time.monotonic() + 60
    while True:
        try:  # the peer's name appears in /etc/hosts once it has an address
            with socket.create_connection((f"{other}.peers", 29500), timeout=2) as connection:
                answer = connection.recv(100).decode()
                break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    served.wait(60)
    print(json.dumps({"me": me, "answer": answer, "address": socket.gethostbyname(f"{other}.peers")}))
    """
)


def test_two_pods_listen_on_one_port_and_find_each_other_by_name(
    control_plane: ControlPlane, core: Any, namespace: str
) -> None:
    core.create_namespaced_service(namespace, headless_service("peers", {"app": "peer"}, 29500))

    def peer(name: str, other: str) -> dict[str, Any]:
        container = {"name": "main", "command": ["python", "-c", PEER, other]}
        return process_pod(name, [container], hostname=name, subdomain="peers", labels={"app": "peer"})

    core.create_namespaced_pod(namespace, peer("peer-0", "peer-1"))
    wait_for_pod(core, namespace, "peer-0", phases=("Running",))
    # peer-0 is already running when peer-1 appears: its hosts file is rewritten in place.
    core.create_namespaced_pod(namespace, peer("peer-1", "peer-0"))
    done = {name: wait_for_pod(core, namespace, name, timeout=90) for name in ("peer-0", "peer-1")}
    seen = {}
    for name, pod in done.items():
        log = control_plane.container_log(namespace, name, "main").read_text()
        assert pod.status.phase == "Succeeded", log
        seen[name] = json.loads(log.splitlines()[-1])
    assert seen["peer-0"]["answer"] == "peer-1" and seen["peer-1"]["answer"] == "peer-0"
    assert seen["peer-0"]["address"] == done["peer-1"].status.pod_ip
    assert seen["peer-1"]["address"] == done["peer-0"].status.pod_ip
    assert done["peer-0"].status.pod_ip != done["peer-1"].status.pod_ip
