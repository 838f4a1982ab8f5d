from __future__ import annotations

from pathlib import Path

import pytest

from optikube_testcluster import flags
from optikube_testcluster.layout import Layout
from optikube_testcluster.ports import Ports

LAYOUT = Layout(Path("/cp"))
PORTS = Ports(
    etcd_client=2001, etcd_peer=2002, apiserver=2003, controller_manager=2004, scheduler=2005, kwok=2006
)
BUILDERS = {
    "etcd": flags.etcd_flags,
    "kube-apiserver": flags.apiserver_flags,
    "kube-controller-manager": flags.controller_manager_flags,
    "kube-scheduler": flags.scheduler_flags,
    "kwok": flags.kwok_flags,
}


def as_dict(argv: list[str]) -> dict[str, str]:
    return dict(arg.removeprefix("--").split("=", 1) for arg in argv)


@pytest.mark.parametrize("component", sorted(BUILDERS))
def test_no_component_listens_beyond_loopback(component: str) -> None:
    argv = BUILDERS[component](LAYOUT, PORTS)
    assert all(arg.startswith("--") and "=" in arg for arg in argv)
    assert "0.0.0.0" not in " ".join(argv)
    listen_flags = {"listen-client-urls", "listen-peer-urls", "bind-address", "server-address"}
    values = [v for k, v in as_dict(argv).items() if k in listen_flags]
    assert values, f"{component} must name its listen address explicitly"
    assert all("127.0.0.1" in value for value in values)


def test_each_component_listens_on_its_own_port() -> None:
    etcd = as_dict(flags.etcd_flags(LAYOUT, PORTS))
    assert etcd["listen-client-urls"] == "http://127.0.0.1:2001"
    assert etcd["initial-cluster"] == "optikube=http://127.0.0.1:2002"
    assert as_dict(flags.apiserver_flags(LAYOUT, PORTS))["secure-port"] == "2003"
    assert as_dict(flags.controller_manager_flags(LAYOUT, PORTS))["secure-port"] == "2004"
    assert as_dict(flags.scheduler_flags(LAYOUT, PORTS))["secure-port"] == "2005"
    assert as_dict(flags.kwok_flags(LAYOUT, PORTS))["server-address"] == "127.0.0.1:2006"


def test_apiserver_has_rbac_tls_and_token_signing() -> None:
    apiserver = as_dict(flags.apiserver_flags(LAYOUT, PORTS))
    assert apiserver["authorization-mode"] == "Node,RBAC"
    assert apiserver["etcd-servers"] == "http://127.0.0.1:2001"
    assert apiserver["tls-cert-file"] == "/cp/pki/apiserver.crt"
    assert apiserver["client-ca-file"] == "/cp/pki/ca.crt"
    assert apiserver["service-account-signing-key-file"] == "/cp/pki/service-account.key"
    assert apiserver["service-account-key-file"] == "/cp/pki/service-account.pub"
    assert apiserver["service-account-issuer"].startswith("https://")


def test_controllers_use_their_own_identities_and_the_signing_key() -> None:
    manager = as_dict(flags.controller_manager_flags(LAYOUT, PORTS))
    assert manager["use-service-account-credentials"] == "true"
    assert manager["service-account-private-key-file"] == "/cp/pki/service-account.key"
    assert manager["root-ca-file"] == "/cp/pki/ca.crt"
    assert manager["kubeconfig"] == "/cp/kube-controller-manager.kubeconfig"
    assert as_dict(flags.scheduler_flags(LAYOUT, PORTS))["kubeconfig"] == "/cp/kube-scheduler.kubeconfig"


def test_kwok_manages_only_annotated_nodes_with_our_stages() -> None:
    kwok = as_dict(flags.kwok_flags(LAYOUT, PORTS))
    assert kwok["manage-nodes-with-annotation-selector"] == "kwok.x-k8s.io/node=fake"
    assert kwok["config"] == "/cp/kwok.yaml"
    assert kwok["kubeconfig"] == "/cp/kwok.kubeconfig"
