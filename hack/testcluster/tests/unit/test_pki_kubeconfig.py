from __future__ import annotations

import base64
import ipaddress
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from optikube_testcluster import pki
from optikube_testcluster.kubeconfig import render_kubeconfig, render_token_kubeconfig, write_kubeconfig
from optikube_testcluster.layout import ADMIN, CONTROLLER_MANAGER


@pytest.fixture(scope="module")
def ca() -> pki.KeyPair:
    return pki.make_ca()


def test_serving_cert_is_issued_by_the_ca_for_loopback_and_in_cluster_names(ca: pki.KeyPair) -> None:
    serving = x509.load_pem_x509_certificate(pki.make_serving_cert(ca, ("127.0.0.1", "10.96.0.1")).cert_pem)
    serving.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.cert_pem))
    names = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert "kubernetes.default.svc" in names.get_values_for_type(x509.DNSName)
    usage = serving.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_client_cert_carries_user_and_groups(ca: pki.KeyPair) -> None:
    cert = x509.load_pem_x509_certificate(pki.make_client_cert(ca, ADMIN).cert_pem)
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.cert_pem))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "optikube-admin"
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [
        "system:masters"
    ]
    controller = x509.load_pem_x509_certificate(pki.make_client_cert(ca, CONTROLLER_MANAGER).cert_pem)
    assert controller.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME) == []


def test_private_keys_are_written_private(tmp_path: Path, ca: pki.KeyPair) -> None:
    cert_path, key_path = pki.write_keypair(tmp_path, "ca", ca)
    assert key_path.stat().st_mode & 0o777 == 0o600
    assert cert_path.read_bytes() == ca.cert_pem
    signing_key, public_key = pki.write_signing_key(tmp_path)
    assert signing_key.stat().st_mode & 0o777 == 0o600
    assert b"PUBLIC KEY" in public_key.read_bytes()


def test_kubeconfig_inlines_credentials_and_selects_its_context(tmp_path: Path, ca: pki.KeyPair) -> None:
    pair = pki.make_client_cert(ca, ADMIN)
    document = render_kubeconfig("https://127.0.0.1:6443", ca.cert_pem, pair.cert_pem, pair.key_pem, "admin")
    path = write_kubeconfig(tmp_path / "kubeconfig", document)
    loaded = yaml.safe_load(path.read_text())
    assert path.stat().st_mode & 0o777 == 0o600
    context = next(c for c in loaded["contexts"] if c["name"] == loaded["current-context"])["context"]
    cluster = next(c for c in loaded["clusters"] if c["name"] == context["cluster"])["cluster"]
    user = next(u for u in loaded["users"] if u["name"] == context["user"])["user"]
    assert cluster["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cluster["certificate-authority-data"]) == ca.cert_pem
    assert base64.b64decode(user["client-key-data"]) == pair.key_pem


def test_kubeconfig_refuses_a_plain_http_server(ca: pki.KeyPair) -> None:
    with pytest.raises(ValueError, match="server"):
        render_kubeconfig("http://127.0.0.1:8080", ca.cert_pem, b"", b"", "admin")


def test_token_kubeconfig_carries_the_token(ca: pki.KeyPair) -> None:
    document = render_token_kubeconfig(
        "https://127.0.0.1:6443", ca.cert_pem, "abc", "system:serviceaccount:n:s"
    )
    assert document["users"] == [{"name": "system:serviceaccount:n:s", "user": {"token": "abc"}}]
    with pytest.raises(ValueError, match="token"):
        render_token_kubeconfig("https://127.0.0.1:6443", ca.cert_pem, "", "u")
