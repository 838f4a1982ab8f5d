"""What the process node puts in a pod's volumes, and how a container's mounts are planned."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from optikube_testcluster.processnode.downward import NodeFacts
from optikube_testcluster.processnode.envvars import ConfigError
from optikube_testcluster.processnode.paths import PodDirs, StateLayout, claim_path, container_log_path
from optikube_testcluster.processnode.rootplan import identity, launch_spec, volume_mounts
from optikube_testcluster.processnode.tokens import (
    IssuedToken,
    needs_refresh,
    refresh_at,
    token_request,
)
from optikube_testcluster.processnode.volumes import (
    TokenSource,
    VolumeFile,
    memory_volumes,
    render_volume,
    tmpfs_options,
)

FACTS = NodeFacts("10.244.128.7", "10.244.128.1", {"cpu": "8"})
POD: dict[str, Any] = {
    "metadata": {"name": "p", "namespace": "ns", "uid": "u-1", "labels": {"b": "2", "a": "1"}},
    "spec": {"containers": [{"name": "main", "resources": {"requests": {"cpu": "250m"}}}]},
}
MAPS = {
    "settings": {
        "data": {"a.json": "{}", "b": "bee"},
        "binaryData": {"blob": base64.b64encode(b"\0").decode()},
    }
}
SECRETS = {"creds": {"data": {"key": base64.b64encode(b"s3cret").decode()}}}


def render(volume: dict[str, Any]) -> Any:
    return render_volume(volume, POD, FACTS, lambda ns, n: MAPS.get(n), lambda ns, n: SECRETS.get(n))


def test_config_map_and_secret_volumes_with_items_and_modes() -> None:
    everything = render({"name": "v", "configMap": {"name": "settings"}})
    assert everything.files == [
        VolumeFile("a.json", b"{}", 0o644),
        VolumeFile("b", b"bee", 0o644),
        VolumeFile("blob", b"\0", 0o644),
    ]
    items = render(
        {
            "name": "v",
            "configMap": {
                "name": "settings",
                "defaultMode": 0o600,
                "items": [
                    {"key": "b", "path": "nested/b.txt"},
                    {"key": "a.json", "path": "a", "mode": 0o400},
                ],
            },
        }
    )
    assert items.files == [VolumeFile("nested/b.txt", b"bee", 0o600), VolumeFile("a", b"{}", 0o400)]
    assert render({"name": "s", "secret": {"secretName": "creds"}}).files == [
        VolumeFile("key", b"s3cret", 0o644)
    ]
    with pytest.raises(ConfigError, match="absent"):
        render({"name": "v", "configMap": {"name": "absent"}})
    assert render({"name": "v", "configMap": {"name": "absent", "optional": True}}).files == []
    with pytest.raises(ConfigError, match="nope"):
        render({"name": "v", "configMap": {"name": "settings", "items": [{"key": "nope", "path": "x"}]}})


def test_projected_volume_asks_for_a_token_and_renders_the_rest() -> None:
    content = render(
        {
            "name": "kube-api-access",
            "projected": {
                "defaultMode": 0o644,
                "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"serviceAccountToken": {"audience": "optikube.io", "path": "progress-token"}},
                    {"configMap": {"name": "settings", "items": [{"key": "b", "path": "ca.crt"}]}},
                    {
                        "downwardAPI": {
                            "items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]
                        }
                    },
                ],
            },
        }
    )
    assert content.tokens == [
        TokenSource("token", None, 3607, 0o644),
        TokenSource("progress-token", "optikube.io", 3600, 0o644),
    ]
    assert content.files == [VolumeFile("ca.crt", b"bee", 0o644), VolumeFile("namespace", b"ns", 0o644)]


def test_downward_volume_and_directory_kinds() -> None:
    content = render(
        {
            "name": "d",
            "downwardAPI": {
                "items": [
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
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
        }
    )
    assert content.files == [VolumeFile("labels", b'a="1"\nb="2"\n', 0o644), VolumeFile("cpu", b"250", 0o644)]
    assert render({"name": "e", "emptyDir": {}}) is None
    assert render({"name": "c", "persistentVolumeClaim": {"claimName": "x"}}) is None
    with pytest.raises(ConfigError, match="not supported"):
        render({"name": "i", "iscsi": {}})


def test_memory_volumes_are_tmpfs_with_the_pods_group_and_limit() -> None:
    pod = {
        "spec": {
            "volumes": [
                {"name": "disk", "emptyDir": {}},
                {"name": "ram", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
            ]
        }
    }
    assert memory_volumes(pod) == ["ram"]
    ram = pod["spec"]["volumes"][1]
    assert tmpfs_options(ram, None) == f"mode=1777,size={64 * 2**20}"
    assert tmpfs_options(ram, 2000) == f"mode=2777,gid=2000,size={64 * 2**20}"


def test_tokens_are_bound_to_the_pod_and_renewed_at_80_percent() -> None:
    body = token_request(POD, TokenSource("t", "optikube.io", 600, 0o644))
    assert body["spec"] == {
        "expirationSeconds": 600,
        "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u-1"},
        "audiences": ["optikube.io"],
    }
    assert token_request(POD, TokenSource("t", None, 3607, 0o644))["spec"]["audiences"] == []
    issued = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    token = IssuedToken("jwt", issued, issued + dt.timedelta(seconds=1000))
    assert refresh_at(token) == issued + dt.timedelta(seconds=800)
    assert not needs_refresh(token, issued + dt.timedelta(seconds=799))
    assert needs_refresh(token, issued + dt.timedelta(seconds=800))
    year = IssuedToken("jwt", issued, issued + dt.timedelta(days=365))
    assert refresh_at(year) == issued + dt.timedelta(hours=24)


def test_mount_plan_orders_parents_first_and_adds_the_managed_files(tmp_path: Path) -> None:
    dirs = PodDirs(tmp_path / "pods" / "u-1")
    pod = {
        "spec": {
            "volumes": [
                {"name": "data", "persistentVolumeClaim": {"claimName": "c"}},
                {"name": "conf", "configMap": {"name": "settings"}},
                {"name": "ro-claim", "persistentVolumeClaim": {"claimName": "d", "readOnly": True}},
            ]
        }
    }
    container = {
        "name": "main",
        "terminationMessagePath": "/tmp/msg",
        "volumeMounts": [
            {"name": "data", "mountPath": "/artifacts/models", "subPath": "models"},
            {"name": "data", "mountPath": "/artifacts/"},
            {"name": "conf", "mountPath": "/etc/optikube"},
            {"name": "ro-claim", "mountPath": "/in", "subPathExpr": "$(POD)"},
        ],
    }
    paths = {"data": Path("/claims/ns/c"), "conf": dirs.volume("conf"), "ro-claim": Path("/claims/ns/d")}
    mounts = volume_mounts(pod, container, dirs, paths, {"POD": "p"})
    assert [(m["target"], m["source"], m["readonly"]) for m in mounts[:4]] == [
        ("/artifacts", "/claims/ns/c", False),
        ("/in", "/claims/ns/d/p", True),
        ("/artifacts/models", "/claims/ns/c/models", False),
        ("/etc/optikube", str(dirs.volume("conf")), True),
    ]
    assert [m["target"] for m in mounts[4:]] == [
        "/etc/hosts",
        "/etc/hostname",
        "/etc/resolv.conf",
        "/tmp/msg",
    ]
    assert all(m["file"] for m in mounts[4:])
    escaping = {"name": "main", "volumeMounts": [{"name": "data", "mountPath": "/x", "subPath": "../up"}]}
    with pytest.raises(ConfigError, match="relative"):
        volume_mounts(pod, escaping, dirs, paths, {})
    with pytest.raises(ConfigError, match="no volume"):
        volume_mounts(
            pod, {"name": "m", "volumeMounts": [{"name": "nope", "mountPath": "/x"}]}, dirs, paths, {}
        )


def test_identity_and_launch_spec(tmp_path: Path) -> None:
    pod = {"spec": {"securityContext": {"runAsUser": 1000, "fsGroup": 2000, "supplementalGroups": [5]}}}
    container = {
        "name": "main",
        "securityContext": {
            "runAsUser": 1001,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
        },
    }
    who = identity(pod, container)
    assert (who.uid, who.gid, who.groups, who.fs_group) == (1001, 0, (2000, 5), 2000)
    assert who.read_only_root and who.no_new_privs
    assert identity({"spec": {}}, {"name": "c"}).uid == 0
    dirs = PodDirs(tmp_path / "pods" / "u-1")
    spec = launch_spec(
        pod={**pod, "metadata": {}},
        container=container,
        dirs=dirs,
        volume_paths={},
        env={"A": "1"},
        argv=["python"],
        sandbox_pid=42,
        state_dir=tmp_path,
        traversable=["/venv/bin"],
    )
    assert spec["sandbox_pid"] == 42 and spec["uid"] == 1001 and spec["groups"] == [2000, 5]
    assert spec["mask"] == [str(tmp_path)] and spec["readonly_root"] is True
    assert spec["rootfs"] == str(dirs.rootfs("main")) and spec["result"] == str(dirs.result("main"))


def test_stable_paths_of_logs_and_claims(tmp_path: Path) -> None:
    assert container_log_path(tmp_path, "ns", "pod", "c") == tmp_path / "logs/ns/pod/c.log"
    assert claim_path(tmp_path, "ns", "models") == tmp_path / "claims/ns/models"
    layout = StateLayout(tmp_path)
    assert layout.log("ns", "pod", "c") == container_log_path(tmp_path, "ns", "pod", "c")
    assert layout.pod("u").termination_log("c") == tmp_path / "pods/u/containers/c/termination-log"
