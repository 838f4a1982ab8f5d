"""The cluster backend's errors a user causes before any job exists: no configuration, and a
configuration whose cluster does not answer."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from optikube_operator.client import Client, ClientError, ErrorReason


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_no_kubeconfig_is_unreachable_saying_where_one_is_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ClientError) as refused:
        Client.cluster()
    assert refused.value.reason is ErrorReason.UNREACHABLE
    assert "KUBECONFIG" in refused.value.hint and "kubeconfig=" in refused.value.hint


def test_a_cluster_that_does_not_answer_is_unreachable_naming_the_server(tmp_path: Path) -> None:
    server = f"https://127.0.0.1:{_closed_port()}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "gone", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "me", "user": {"token": "x"}}],
        "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "me", "namespace": "team-a"}}],
        "current-context": "gone",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    client = Client.cluster(kubeconfig=path)
    assert client.where == f"namespace team-a of {server}"  # the context's namespace
    with pytest.raises(ClientError) as unreachable:
        client.list()
    assert unreachable.value.reason is ErrorReason.UNREACHABLE
    assert server in str(unreachable.value) and "kubectl cluster-info" in unreachable.value.hint
    with pytest.raises(ClientError) as on_get:
        client.get("quickstart")
    assert on_get.value.reason is ErrorReason.UNREACHABLE


def test_in_a_pod_the_client_takes_the_pods_config_and_namespace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kubernetes.config.incluster_config as incluster

    from optikube_operator.client import cluster

    port = _closed_port()
    secrets = tmp_path / "serviceaccount"
    secrets.mkdir()
    (secrets / "token").write_text("a-token")
    (secrets / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    (secrets / "namespace").write_text("ml-team\n")
    monkeypatch.setattr(incluster, "SERVICE_TOKEN_FILENAME", str(secrets / "token"))
    monkeypatch.setattr(incluster, "SERVICE_CERT_FILENAME", str(secrets / "ca.crt"))
    monkeypatch.setattr(cluster, "SERVICE_ACCOUNT_NAMESPACE", secrets / "namespace")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(port))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))  # not read in a pod
    assert Client.cluster().where == f"namespace ml-team of https://127.0.0.1:{port}"
    assert Client.cluster(namespace="other").where.startswith("namespace other of")
