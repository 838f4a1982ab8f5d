"""Pods on the process node run for real: what a container sees (env, downward API, volumes,
users, hostname), how it ends (exit code, termination message, Failed on SIGKILL), and how a
deletion stops it."""

from __future__ import annotations

import base64
import ipaddress
import json
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from cluster_objects import headless_service
from kubernetes import client

from optikube_testcluster import (
    PROCESS_NODE_LABEL,
    PROCESS_NODE_TAINT,
    STORAGE_CLASS,
    ControlPlane,
)
from optikube_testcluster.processnode.spec import PROCESS_POD_RANGE
from optikube_testcluster.processnode.testing import process_pod, wait_for_pod

pytestmark = pytest.mark.cluster
NODE = "process-0"

# Prints, as one JSON line, what the container sees; writes into its volumes; sets its
# termination message; exits 3.
INSPECT = textwrap.dedent(
    """
    import json, os, sys
    PREFIXES = ("T_", "CM_", "SECRET_", "KUBERNETES_SERVICE")
    def read(path):
        try:
            with open(path) as f:
                return f.read()
        except OSError as error:
            return f"error: {error.strerror}"
    mounts = open("/proc/self/mountinfo").read().splitlines()
    def fstype(path):
        return [line.split(" - ")[1].split()[0] for line in mounts if line.split()[4] == path]
    with open("/artifacts/out.txt", "w") as f:
        f.write("written by the pod")
    with open("/models/model.txt", "w") as f:
        f.write("model")
    seen = {
        "argv": sys.argv[1:],
        "env": {k: v for k, v in os.environ.items() if k.startswith(PREFIXES)},
        "path": os.environ["PATH"],
        "python": sys.executable,
        "files": {p: read(p) for p in [
            "/etc/optikube/settings.json", "/etc/optikube/nested/other.txt", "/etc/secret/password",
            "/etc/single.json", "/var/run/projected/ca.crt", "/var/run/projected/labels",
            "/var/run/projected/namespace", "/etc/podinfo/annotations", "/etc/podinfo/cpu",
            "/scratch/from-init.txt", "/var/run/secrets/kubernetes.io/serviceaccount/namespace",
        ]},
        "token": read("/var/run/projected/token").count("."),
        "modes": {p: oct(os.stat(p).st_mode & 0o777) for p in ["/etc/optikube/settings.json", "/scratch"]},
        "fstypes": {p: fstype(p) for p in ["/mem", "/scratch", "/tmp", "/", "/etc/optikube"]},
        "config_writable": os.access("/etc/optikube", os.W_OK),
        "hostname": open("/etc/hostname").read().strip(),
    }
    print(json.dumps(seen), flush=True)
    with open("/dev/termination-log", "w") as f:
        f.write('{"result": "ok"}')
    sys.exit(3)
    """
)


def test_process_node_is_ready_labelled_tainted_and_leased(core: Any) -> None:
    node = core.read_node(NODE)
    assert node.metadata.labels[PROCESS_NODE_LABEL] == "true"
    assert node.metadata.labels["kubernetes.io/hostname"] == NODE
    assert "kwok.x-k8s.io/node" not in (node.metadata.annotations or {})
    assert [(t.key, t.value, t.effect) for t in node.spec.taints] == [
        (PROCESS_NODE_TAINT["key"], PROCESS_NODE_TAINT["value"], PROCESS_NODE_TAINT["effect"])
    ]
    conditions = {c.type: c.status for c in node.status.conditions}
    assert conditions["Ready"] == "True" and conditions["MemoryPressure"] == "False"
    internal = [a.address for a in node.status.addresses if a.type == "InternalIP"]
    assert ipaddress.ip_address(internal[0]) in ipaddress.ip_network(PROCESS_POD_RANGE)
    lease: Any = client.CoordinationV1Api(core.api_client).read_namespaced_lease(NODE, "kube-node-lease")
    assert lease.spec.holder_identity == NODE
    first = lease.spec.renew_time
    deadline = time.monotonic() + 30
    while lease.spec.renew_time == first and time.monotonic() < deadline:
        time.sleep(1)
        lease = client.CoordinationV1Api(core.api_client).read_namespaced_lease(NODE, "kube-node-lease")
    assert lease.spec.renew_time > first, "the lease is renewed"


def _inputs(core: Any, namespace: str) -> None:
    core.create_namespaced_config_map(
        namespace,
        {
            "metadata": {"name": "settings"},
            "data": {"settings.json": '{"lr": 0.1}', "other": "second", "MODE": "fast"},
        },
    )
    password = base64.b64encode(b"s3cret").decode()
    core.create_namespaced_secret(namespace, {"metadata": {"name": "creds"}, "data": {"password": password}})
    core.create_namespaced_persistent_volume_claim(
        namespace,
        {
            "metadata": {"name": "claim"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        },
    )


def _inspect_pod(name: str) -> dict[str, Any]:
    env = [
        {"name": "T_GREETING", "value": "hello"},
        {"name": "T_COMBINED", "value": "$(T_POD_NAME)/$(T_GREETING)/$$(T_GREETING)/$(T_UNDEFINED)"},
        {"name": "T_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "T_COMBINED_AFTER", "value": "$(T_POD_NAME)"},
        {"name": "T_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "T_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
        {"name": "T_APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {"name": "T_NOTE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['note']"}}},
        {"name": "T_POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "T_NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "T_SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
        {
            "name": "T_MEMORY_MI",
            "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}},
        },
        {"name": "T_FROM_CM", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "MODE"}}},
        {"name": "T_FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
    ]
    mounts = [
        {"name": "config", "mountPath": "/etc/optikube"},
        {"name": "config", "mountPath": "/etc/single.json", "subPath": "settings.json"},
        {"name": "secret", "mountPath": "/etc/secret"},
        {"name": "projected", "mountPath": "/var/run/projected"},
        {"name": "podinfo", "mountPath": "/etc/podinfo"},
        {"name": "work", "mountPath": "/scratch"},
        {"name": "mem", "mountPath": "/mem"},
        {"name": "data", "mountPath": "/artifacts"},
        {"name": "data", "mountPath": "/models", "subPath": "models"},
    ]
    volumes = [
        {
            "name": "config",
            "configMap": {
                "name": "settings",
                "defaultMode": 0o640,
                "items": [
                    {"key": "settings.json", "path": "settings.json"},
                    {"key": "other", "path": "nested/other.txt"},
                ],
            },
        },
        {"name": "secret", "secret": {"secretName": "creds"}},
        {
            "name": "projected",
            "projected": {
                "sources": [
                    {
                        "serviceAccountToken": {
                            "audience": "optikube.io",
                            "expirationSeconds": 600,
                            "path": "token",
                        }
                    },
                    {
                        "configMap": {
                            "name": "kube-root-ca.crt",
                            "items": [{"key": "ca.crt", "path": "ca.crt"}],
                        }
                    },
                    {
                        "downwardAPI": {
                            "items": [
                                {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                                {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}},
                            ]
                        }
                    },
                ]
            },
        },
        {
            "name": "podinfo",
            "downwardAPI": {
                "items": [
                    {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
                    {
                        "path": "cpu",
                        "resourceFieldRef": {
                            "containerName": "main",
                            "resource": "requests.cpu",
                            "divisor": "1m",
                        },
                    },
                ]
            },
        },
        {"name": "work", "emptyDir": {}},
        {"name": "mem", "emptyDir": {"medium": "Memory"}},
        {"name": "data", "persistentVolumeClaim": {"claimName": "claim"}},
    ]
    pod = process_pod(
        name,
        [
            {
                "name": "main",
                "command": ["python", "-c", INSPECT],
                "args": ["$(T_GREETING)-expanded", "$$(T_GREETING)"],
                "env": env,
                "envFrom": [
                    {"configMapRef": {"name": "settings"}, "prefix": "CM_"},
                    {"secretRef": {"name": "creds"}, "prefix": "SECRET_"},
                ],
                "volumeMounts": mounts,
                "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
            }
        ],
        initContainers=[
            {
                "name": "prepare",
                "command": ["sh", "-c", "echo from-init > /scratch/from-init.txt"],
                "volumeMounts": [{"name": "work", "mountPath": "/scratch"}],
            }
        ],
        volumes=volumes,
        labels={"app": "inspect"},
    )
    pod["metadata"]["annotations"] = {"note": "hello"}
    return pod


def test_pod_sees_env_volumes_and_reports_its_exit_code(
    control_plane: ControlPlane, core: Any, namespace: str
) -> None:
    _inputs(core, namespace)
    core.create_namespaced_pod(namespace, _inspect_pod("inspect"))
    pod = wait_for_pod(core, namespace, "inspect", timeout=90)

    assert pod.status.phase == "Failed" and pod.spec.node_name == NODE
    assert ipaddress.ip_address(pod.status.pod_ip) in ipaddress.ip_network(PROCESS_POD_RANGE)
    assert pod.status.host_ip and pod.status.start_time
    [init] = pod.status.init_container_statuses
    assert (init.state.terminated.exit_code, init.state.terminated.reason) == (0, "Completed")
    [main] = pod.status.container_statuses
    terminated = main.state.terminated
    assert (terminated.exit_code, terminated.reason) == (3, "Error")
    assert terminated.message == '{"result": "ok"}'

    seen = json.loads(control_plane.container_log(namespace, "inspect", "main").read_text().splitlines()[-1])
    env = seen["env"]
    assert seen["argv"] == ["hello-expanded", "$(T_GREETING)"]
    assert (
        env["T_COMBINED"] == "$(T_POD_NAME)/hello/$(T_GREETING)/$(T_UNDEFINED)"
    )  # defined later: not expanded
    assert env["T_COMBINED_AFTER"] == "inspect"
    assert env["T_NAMESPACE"] == namespace and env["T_UID"] == pod.metadata.uid
    assert (env["T_APP"], env["T_NOTE"], env["T_NODE"], env["T_SA"]) == ("inspect", "hello", NODE, "default")
    assert env["T_POD_IP"] == pod.status.pod_ip
    assert env["T_MEMORY_MI"] == "128"
    assert (env["T_FROM_CM"], env["T_FROM_SECRET"]) == ("fast", "s3cret")
    assert (env["CM_MODE"], env["SECRET_password"]) == ("fast", "s3cret")
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1" and env["KUBERNETES_SERVICE_PORT"] == "443"
    venv_bin = Path(sys.prefix) / "bin"  # the project's venv stands in for the image
    assert seen["path"].split(":")[0] == str(venv_bin) and seen["python"] == str(venv_bin / "python")
    files = seen["files"]
    assert files["/etc/optikube/settings.json"] == '{"lr": 0.1}'
    assert files["/etc/optikube/nested/other.txt"] == "second"
    assert files["/etc/single.json"] == '{"lr": 0.1}'
    assert files["/etc/secret/password"] == "s3cret"
    assert files["/var/run/projected/ca.crt"] == control_plane.layout.ca_cert.read_text()
    assert files["/var/run/projected/labels"] == 'app="inspect"\n'
    assert files["/var/run/projected/namespace"] == namespace
    assert 'note="hello"' in files["/etc/podinfo/annotations"]
    assert files["/etc/podinfo/cpu"] == "250"
    assert files["/scratch/from-init.txt"] == "from-init\n"
    assert files["/var/run/secrets/kubernetes.io/serviceaccount/namespace"] == namespace
    assert seen["token"] == 2, "a JWT: header.payload.signature"
    assert seen["modes"] == {"/etc/optikube/settings.json": "0o640", "/scratch": "0o777"}
    assert seen["fstypes"]["/mem"] == ["tmpfs"] and seen["fstypes"]["/tmp"] == ["tmpfs"]
    assert seen["fstypes"]["/"] == ["overlay"]
    assert seen["config_writable"] is False
    assert seen["hostname"] == "inspect"

    claim = core.read_namespaced_persistent_volume_claim("claim", namespace)
    assert claim.status.phase == "Bound" and claim.spec.storage_class_name == STORAGE_CLASS
    directory = control_plane.claim_dir(namespace, "claim")
    assert (directory / "out.txt").read_text() == "written by the pod"
    assert (directory / "models" / "model.txt").read_text() == "model"
    # Nothing the pod mounted exists on the host.
    assert not Path("/etc/optikube").exists() and not Path("/artifacts").exists()


SECURE = textwrap.dedent(
    """
    import json, os, socket
    seen = {"uid": os.getuid(), "gid": os.getgid(), "groups": sorted(os.getgroups())}
    seen["hostname"] = socket.gethostname()
    seen["fqdn"] = socket.getfqdn()
    seen["own_ip"] = socket.gethostbyname(socket.gethostname())
    seen["by_subdomain"] = socket.gethostbyname("secure.workers")
    try:
        open("/etc/blocked", "w")
        seen["root_writable"] = True
    except OSError as error:
        seen["root_writable"] = error.strerror
    with open("/data/file", "w") as f:
        f.write("x")
    seen["data_gid"] = os.stat("/data/file").st_gid
    with open("/claim/file", "w") as f:
        f.write("x")
    print(json.dumps(seen), flush=True)
    """
)


def test_security_context_hostname_and_fallback_message(
    control_plane: ControlPlane, core: Any, namespace: str
) -> None:
    core.create_namespaced_service(namespace, headless_service("workers", {"app": "secure"}, 80))
    core.create_namespaced_persistent_volume_claim(
        namespace,
        {
            "metadata": {"name": "shared"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        },
    )
    secure = {
        "name": "secure",
        "command": ["python", "-c", SECURE],
        "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False},
        "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "claim", "mountPath": "/claim"}],
    }
    fails = {
        "name": "fails",
        "command": ["sh", "-c", "echo starting; echo last words; exit 1"],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    pod = process_pod(
        "secure",
        [secure, fails],
        hostname="secure",
        subdomain="workers",
        securityContext={"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000},
        volumes=[
            {"name": "data", "emptyDir": {}},
            {"name": "claim", "persistentVolumeClaim": {"claimName": "shared"}},
        ],
        labels={"app": "secure"},
    )
    core.create_namespaced_pod(namespace, pod)
    done = wait_for_pod(core, namespace, "secure", timeout=90)

    statuses = {s.name: s.state.terminated for s in done.status.container_statuses}
    assert done.status.phase == "Failed"
    assert (statuses["secure"].exit_code, statuses["secure"].reason) == (0, "Completed")
    assert (statuses["fails"].exit_code, statuses["fails"].reason) == (1, "Error")
    assert statuses["fails"].message == "starting\nlast words"
    seen = json.loads(control_plane.container_log(namespace, "secure", "secure").read_text())
    assert (seen["uid"], seen["gid"], seen["groups"]) == (1000, 3000, [2000])
    assert seen["hostname"] == "secure"
    assert seen["fqdn"] == f"secure.workers.{namespace}.svc.cluster.local"
    assert seen["own_ip"] == seen["by_subdomain"] == done.status.pod_ip
    assert seen["root_writable"] == "Read-only file system"
    assert seen["data_gid"] == 2000
    file = control_plane.claim_dir(namespace, "shared") / "file"
    assert file.stat().st_gid == 2000 and file.stat().st_uid == 1000


def test_projected_token_is_bound_to_the_pod_and_passes_a_token_review(core: Any, namespace: str) -> None:
    volume = {
        "name": "token",
        "projected": {
            "sources": [
                {"serviceAccountToken": {"audience": "optikube.io", "expirationSeconds": 600, "path": "t"}}
            ]
        },
    }
    pod = process_pod(
        "tokened",
        [
            {
                "name": "main",
                "command": ["sh", "-c", "cat /var/run/optikube/t > /dev/termination-log"],
                "volumeMounts": [{"name": "token", "mountPath": "/var/run/optikube"}],
            }
        ],
        volumes=[volume],
    )
    core.create_namespaced_pod(namespace, pod)
    done = wait_for_pod(core, namespace, "tokened")
    assert done.status.phase == "Succeeded"
    token = done.status.container_statuses[0].state.terminated.message
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["aud"] == ["optikube.io"] and claims["exp"] - claims["iat"] == 600
    authentication: Any = client.AuthenticationV1Api(core.api_client)
    review = authentication.create_token_review({"spec": {"token": token, "audiences": ["optikube.io"]}})
    assert review.status.authenticated is True
    assert review.status.audiences == ["optikube.io"]
    user = review.status.user
    assert user.username == f"system:serviceaccount:{namespace}:default"
    assert user.extra["authentication.kubernetes.io/pod-name"] == ["tokened"]
    assert user.extra["authentication.kubernetes.io/pod-uid"] == [done.metadata.uid]
    assert user.extra["authentication.kubernetes.io/node-name"] == [NODE]
    # The audience is checked: the same token is no good for another one.
    other = authentication.create_token_review({"spec": {"token": token, "audiences": ["someone-else"]}})
    assert other.status.authenticated is not True
