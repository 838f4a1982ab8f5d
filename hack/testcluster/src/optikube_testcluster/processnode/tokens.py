"""Projected service-account tokens, as the kubelet gets them: from the TokenRequest API for the
pod's ServiceAccount, with the audience and lifetime the volume asks for, bound to the pod (so a
TokenReview names the pod, and the token dies with it), and renewed before it expires."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from optikube_testcluster.processnode.rest import RestClient
from optikube_testcluster.processnode.volumes import TokenSource

# The kubelet renews a token once 80% of its lifetime has passed, or when it is older than 24h.
REFRESH_FRACTION = 0.8
MAX_AGE = dt.timedelta(hours=24)


@dataclass(frozen=True)
class IssuedToken:
    token: str
    issued_at: dt.datetime
    expires_at: dt.datetime


def token_request(pod: dict[str, Any], source: TokenSource) -> dict[str, Any]:
    """The TokenRequest body for one projected token of pod."""
    metadata = pod["metadata"]
    spec: dict[str, Any] = {
        "expirationSeconds": source.expiration_seconds,
        "boundObjectRef": {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": metadata["name"],
            "uid": metadata["uid"],
        },
    }
    # No audience: the apiserver's own (its issuer), which is what in-cluster clients present.
    spec["audiences"] = [source.audience] if source.audience else []
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}


def refresh_at(token: IssuedToken) -> dt.datetime:
    lifetime = token.expires_at - token.issued_at
    return min(token.issued_at + lifetime * REFRESH_FRACTION, token.issued_at + MAX_AGE)


def needs_refresh(token: IssuedToken, now: dt.datetime) -> bool:
    return now >= refresh_at(token)


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def request_token(
    rest: RestClient, pod: dict[str, Any], source: TokenSource, now: dt.datetime
) -> IssuedToken:
    metadata = pod["metadata"]
    account = pod.get("spec", {}).get("serviceAccountName") or "default"
    path = f"/api/v1/namespaces/{metadata['namespace']}/serviceaccounts/{account}/token"
    response = rest.create(path, token_request(pod, source))
    status = response["status"]
    return IssuedToken(status["token"], now, _parse_time(status["expirationTimestamp"]))
