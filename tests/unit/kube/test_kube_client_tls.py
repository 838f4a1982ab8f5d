"""The operator's TLS context from kubeconfig credentials: inline certificate and key data are
loaded, and no copy of the private key is left on disk afterwards."""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from collections.abc import Callable
from pathlib import Path

import kopf
import pytest

from optikube_operator.kube.client import ssl_context
from optikube_testcluster.pki import ClientIdentity, make_ca, make_client_cert


def _leftovers() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("optikube-*")}


@pytest.fixture(params=["in-memory", "temporary-directory"])
def pem_files(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways inline data reaches ssl: Linux's anonymous memory file, and the portable one."""
    if request.param == "temporary-directory":
        monkeypatch.delattr(os, "memfd_create")
    return str(request.param)


@pytest.mark.parametrize("encode", [base64.b64encode, lambda pem: pem], ids=["base64", "pem"])
def test_inline_client_credentials_are_loaded_and_leave_no_file(
    encode: Callable[[bytes], bytes], pem_files: str
) -> None:
    ca = make_ca()
    pair = make_client_cert(ca, ClientIdentity("alice", "alice", ("team",)))
    before = _leftovers()
    info = kopf.ConnectionInfo(
        server="https://127.0.0.1:6443",
        ca_data=base64.b64encode(ca.cert_pem).decode(),
        certificate_data=encode(pair.cert_pem).decode(),
        private_key_data=encode(pair.key_pem).decode(),
    )
    context = ssl_context(info)
    assert isinstance(context, ssl.SSLContext)
    assert context.get_ca_certs(), "the CA from inline data is trusted"
    assert _leftovers() == before


def test_a_key_that_does_not_match_its_certificate_is_refused_and_leaves_no_file(pem_files: str) -> None:
    ca = make_ca()
    alice = make_client_cert(ca, ClientIdentity("alice", "alice"))
    bob = make_client_cert(ca, ClientIdentity("bob", "bob"))
    before = _leftovers()
    info = kopf.ConnectionInfo(
        server="https://127.0.0.1:6443",
        certificate_data=alice.cert_pem.decode(),
        private_key_data=bob.key_pem.decode(),
    )
    with pytest.raises(ssl.SSLError):
        ssl_context(info)
    assert _leftovers() == before


def test_insecure_means_no_verification() -> None:
    assert ssl_context(kopf.ConnectionInfo(server="https://127.0.0.1:6443", insecure=True)) is False
