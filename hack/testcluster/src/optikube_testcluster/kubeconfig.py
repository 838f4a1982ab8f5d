"""Renders kubeconfig files: pure functions from (server, CA, client credentials) to a document."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _document(
    server: str, ca_pem: bytes, user: str, credentials: dict[str, str], cluster: str
) -> dict[str, Any]:
    if not server.startswith("https://"):
        raise ValueError(f"server must be an https:// URL, got {server!r}")
    context = f"{user}@{cluster}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": cluster, "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)}}
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": user}}],
        "current-context": context,
        "preferences": {},
    }


def render_kubeconfig(
    server: str,
    ca_pem: bytes,
    cert_pem: bytes,
    key_pem: bytes,
    user: str,
    cluster: str = "optikube-testcluster",
) -> dict[str, Any]:
    """A self-contained kubeconfig (client certificate inlined), so a copy works anywhere."""
    credentials = {"client-certificate-data": _b64(cert_pem), "client-key-data": _b64(key_pem)}
    return _document(server, ca_pem, user, credentials, cluster)


def render_token_kubeconfig(
    server: str, ca_pem: bytes, token: str, user: str, cluster: str = "optikube-testcluster"
) -> dict[str, Any]:
    """A kubeconfig that authenticates with a bearer token, e.g. a service account's."""
    if not token:
        raise ValueError("token must not be empty")
    return _document(server, ca_pem, user, {"token": token}, cluster)


def write_kubeconfig(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    path.chmod(0o600)
    return path
