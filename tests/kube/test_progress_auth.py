"""The progress endpoint in the cluster: only a trainer pod's own projected token reports, and only for
its own trial; every refusal records nothing."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from kube_harness import Trainers, apply, manifest, post, trial_status, wait_for
from kubernetes import client

pytestmark = pytest.mark.cluster


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def expired_copy(trainers: Trainers, token: str) -> str:
    """The same claims, signed with the cluster's own service-account key, but expired an hour ago:
    the apiserver's TokenRequest API refuses to issue a token shorter than ten minutes."""
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    claims = _claims(token)
    now = int(time.time())
    claims.update({"iat": now - 7200, "nbf": now - 7200, "exp": now - 3600})
    key = serialization.load_pem_private_key(trainers.plane.layout.sa_key.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}".encode()
    r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    return f"{signing_input.decode()}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def test_forged_foreign_expired_deleted_and_missing_tokens_are_refused(trainers: Trainers) -> None:
    apply(trainers.plane, manifest("quickstart", trainers.namespace))
    pods = wait_for("two trial pods", lambda: len(trainers.running()) == 2 and trainers.running())
    by_trial = {trainers.config_of(p)["trial"]["number"]: p for p in pods}
    mine, other = by_trial[0], by_trial[1]
    event = {"type": "intermediate", "trial": 0, "epoch": 0, "step": 0, "values": {"accuracy": 0.5}}
    good = trainers.token(mine)
    before = trial_status(trainers, "quickstart-t0")

    refusals = {
        "no token": post(trainers.progress_url, event, None),
        "forged": post(trainers.progress_url, event, good[:-8] + "AAAAAAAA"),
        "not a jwt": post(trainers.progress_url, event, "let-me-in"),
        "wrong audience": post(trainers.progress_url, event, trainers.token(mine, audience="kubernetes")),
        "expired": post(trainers.progress_url, event, expired_copy(trainers, good)),
        "another trial's pod": post(trainers.progress_url, event, trainers.token(other)),
    }
    assert {name: code for name, (code, _) in refusals.items()} == {
        "no token": 401,
        "forged": 401,
        "not a jwt": 401,
        "wrong audience": 401,
        "expired": 401,
        "another trial's pod": 403,
    }, refusals
    assert trial_status(trainers, "quickstart-t0") == before  # nothing was recorded

    code, reply = post(trainers.progress_url, event, good)
    assert (code, reply) == (200, {"prune": False})
    # answered from memory, written behind the reply (a trial's first step at once)
    recorded = wait_for(
        "the step in the trial's status",
        lambda: (status := trial_status(trainers, "quickstart-t0")).get("latestStep") == 0 and status,
    )
    assert recorded["latestValues"] == {"accuracy": 0.5} and recorded["intermediateValues"] == [
        {"step": 0, "value": 0.5}
    ]

    # the pod is deleted: its token stops working at once
    with trainers.plane.api_client() as api:
        client.CoreV1Api(api).delete_namespaced_pod(
            mine.metadata.name, trainers.namespace, grace_period_seconds=0
        )
    wait_for(
        "the deleted pod's token to be refused",
        lambda: post(trainers.progress_url, {**event, "step": 1, "epoch": 1}, good)[0] == 401,
        timeout=30,
    )


def test_a_prune_reply_ends_the_trial_and_its_job_goes(trainers: Trainers) -> None:
    job = manifest("quickstart", trainers.namespace)
    job["spec"]["tuning"]["pruner"] = {"type": "median", "startupTrials": 1, "warmupSteps": 0}
    apply(trainers.plane, job)
    first = wait_for("a trial pod", lambda: trainers.running())[0]
    assert trainers.play(first) == "succeeded"
    # the next trials report far worse at every step: the median pruner says prune
    pruned = None
    deadline = time.monotonic() + 60
    while pruned is None and time.monotonic() < deadline:
        for pod in trainers.running():
            if pod.metadata.name in trainers.handled:
                continue
            trainers.handled.add(pod.metadata.name)
            token = trainers.token(pod)
            number = trainers.config_of(pod)["trial"]["number"]
            low = {
                "type": "intermediate",
                "trial": number,
                "epoch": 0,
                "step": 0,
                "values": {"accuracy": 0.01},
            }
            if trainers.send_progress(pod, low, token).get("prune"):
                done = {"type": "pruned", "trial": number, "epoch": 0, "values": {"accuracy": 0.01}}
                trainers.send_progress(pod, done, token)
                trainers.finish(pod, 0, json.dumps(done))
                pruned = number
                break
        time.sleep(0.2)
    assert pruned is not None, "the pruner never said prune"
    assert trial_status(trainers, f"quickstart-t{pruned}")["phase"] == "Pruned"

    def job_gone() -> bool:
        with trainers.plane.api_client() as api:
            names = [
                j.metadata.name for j in client.BatchV1Api(api).list_namespaced_job(trainers.namespace).items
            ]
        return f"quickstart-t{pruned}" not in names

    wait_for("the pruned trial's Job to be deleted", job_gone, timeout=30)
