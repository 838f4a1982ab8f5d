"""Who is reporting, in the cluster: the pod's projected service-account token, checked by the
apiserver's TokenReview (audience optikube.io), then matched to the pod it is bound to.

A token is accepted only when the apiserver authenticates it for our audience, it is bound to a pod
that still exists with that uid and whose grace period (if it is being deleted) has not run out,
and that pod is a trainer pod of an optikube run: labelled for the run and controlled by the run's
Job (a look-alike pod with copied labels is not); the run it may report for is the one the pod's
labels name. Reviews are cached briefly (never past the token's own
expiry) so a busy trainer costs the apiserver one review a minute, not one per event.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from optikube_operator.endpoint import Caller, RunKey
from optikube_operator.kube import names
from optikube_operator.kube.client import KubeClient
from optikube_operator.kube.names import RunKind
from optikube_operator.kube.runs import controlled_by_run

POD_NAME = "authentication.kubernetes.io/pod-name"
POD_UID = "authentication.kubernetes.io/pod-uid"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
CACHE_SECONDS = 60.0
MAX_CACHED = 10_000

PodLookup = Callable[[str, str], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True)
class _Cached:
    caller: Caller | None
    until: float


def token_expiry(token: str) -> float | None:
    """The `exp` claim of a JWT (read, not verified: the apiserver verifies), or None."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


def _deleted_by(meta: dict[str, Any]) -> float | None:
    """When the pod's grace period ends, if it is being deleted."""
    stamp = meta.get("deletionTimestamp")
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0  # unreadable: treat as already gone


def caller_of(review: dict[str, Any], pod: dict[str, Any] | None, now: float | None = None) -> Caller | None:
    """The caller a TokenReview and the pod it names make, or None when they do not add up."""
    status = review.get("status") or {}
    if not status.get("authenticated") or names.TOKEN_AUDIENCE not in (status.get("audiences") or []):
        return None
    user = status.get("user") or {}
    username = str(user.get("username", ""))
    extra = user.get("extra") or {}
    pod_name = (extra.get(POD_NAME) or [None])[0]
    pod_uid = (extra.get(POD_UID) or [None])[0]
    if not username.startswith(SERVICE_ACCOUNT_PREFIX) or not pod_name or pod is None:
        return None
    namespace, _, account = username.removeprefix(SERVICE_ACCOUNT_PREFIX).partition(":")
    meta = pod.get("metadata") or {}
    if meta.get("uid") != pod_uid or meta.get("namespace") != namespace:
        return None
    if (pod.get("spec") or {}).get("serviceAccountName", "default") != account:
        return None
    owner = names.run_of(meta.get("labels") or {})
    if owner is None:
        return None
    job, run = owner
    if run.kind is RunKind.PREFLIGHT or not controlled_by_run(meta, job, run):
        return None  # the preflight reports nothing: its outcome is its exit and termination message
    deleted_by = _deleted_by(meta)
    if deleted_by is not None and deleted_by <= (time.time() if now is None else now):
        return None  # the pod may still send its result while it terminates, not after
    return Caller(RunKey(trial=run.number, job=job, namespace=namespace), f"{namespace}/{pod_name}")


def review_body(token: str) -> dict[str, Any]:
    return {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": token, "audiences": [names.TOKEN_AUDIENCE]},
    }


def pod_of(review: dict[str, Any]) -> tuple[str, str] | None:
    """(namespace, pod name) a reviewed token claims to be bound to."""
    user = (review.get("status") or {}).get("user") or {}
    username = str(user.get("username", ""))
    pod_name = ((user.get("extra") or {}).get(POD_NAME) or [None])[0]
    if not username.startswith(SERVICE_ACCOUNT_PREFIX) or not pod_name:
        return None
    return username.removeprefix(SERVICE_ACCOUNT_PREFIX).partition(":")[0], str(pod_name)


class TokenReviewAuthenticator:
    def __init__(
        self, client: KubeClient, lookup_pod: PodLookup, clock: Callable[[], float] = time.time
    ) -> None:
        self._client = client
        self._lookup_pod = lookup_pod
        self._clock = clock
        self._cache: dict[str, _Cached] = {}

    async def authenticate(self, token: str) -> Caller | None:
        key = hashlib.sha256(token.encode()).hexdigest()
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and cached.until > now:
            return cached.caller
        review = await self._client.create("/apis/authentication.k8s.io/v1/tokenreviews", review_body(token))
        bound = pod_of(review)
        pod = await self._lookup_pod(*bound) if bound is not None else None
        caller = caller_of(review, pod, now)
        expiry = token_expiry(token)
        until = min(now + CACHE_SECONDS, expiry if expiry is not None else now + CACHE_SECONDS)
        deleted_by = _deleted_by((pod or {}).get("metadata") or {})
        if deleted_by is not None:
            until = min(until, deleted_by)
        if caller is not None:  # refusals are not cached: a just-created pod's token must work at once
            if len(self._cache) >= MAX_CACHED:
                self._cache = {k: v for k, v in self._cache.items() if v.until > now}
            self._cache[key] = _Cached(caller, until)
        return caller

    def forget_pod(self, namespace: str, pod: str) -> None:
        """A deleted pod's token stops working at once, not when its cached review expires."""
        identity = f"{namespace}/{pod}"
        self._cache = {
            k: v for k, v in self._cache.items() if v.caller is None or v.caller.identity != identity
        }
