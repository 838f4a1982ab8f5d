"""Least privilege: trainer pods' ServiceAccount may read or write nothing, tokens never show up in
what the operator writes or logs, and the operator listens only where it is told to.

(The chart's RBAC, each rule removed in turn, is tests/chart/test_chart_rbac.py; its NetworkPolicy
is checked where the chart is rendered.)"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from kube_harness import Trainers, apply, drive, manifest, post, wait_for
from kubernetes import client

from optikube_testcluster import ControlPlane
from optikube_testcluster.operator_command import operator_argv
from optikube_testcluster.ports import free_ports

pytestmark = [pytest.mark.cluster]
JWT = re.compile(r"eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}")
# what every authenticated identity may do (system:basic-user, system:public-info-viewer, ...)
SELF_REVIEWS = {
    "selfsubjectreviews.authentication.k8s.io",
    "selfsubjectaccessreviews.authorization.k8s.io",
    "selfsubjectrulesreviews.authorization.k8s.io",
}


def _resource_rules(plane: ControlPlane, namespace: str, account: str) -> dict[str, str]:
    """`kubectl auth can-i --list` as that ServiceAccount: resource -> verbs."""
    listing = plane.kubectl(
        "auth", "can-i", "--list", f"--as=system:serviceaccount:{namespace}:{account}", "-n", namespace
    ).stdout
    rules: dict[str, str] = {}
    for line in listing.splitlines()[1:]:
        columns = line.split()
        if columns and not columns[0].startswith("["):  # non-resource URLs (/healthz, /version...)
            rules[columns[0]] = line.split("[")[-1].rstrip("]") if "[" in line else ""
    return rules


def test_the_trainer_service_account_can_read_or_write_nothing(trainers: Trainers) -> None:
    apply(trainers.plane, manifest("quickstart", trainers.namespace))
    pod = wait_for("a trial pod", lambda: trainers.running())[0]
    account = pod.spec.service_account_name
    assert account and account != "default"
    rules = _resource_rules(trainers.plane, trainers.namespace, account)
    assert set(rules) <= SELF_REVIEWS, rules
    for verb, resource in (("get", "pods"), ("list", "secrets"), ("create", "pods"), ("patch", "optjobs")):
        allowed = trainers.plane.kubectl(
            "auth",
            "can-i",
            verb,
            resource,
            f"--as=system:serviceaccount:{trainers.namespace}:{account}",
            "-n",
            trainers.namespace,
            check=False,
        ).stdout.strip()
        assert allowed == "no", (verb, resource, allowed)
    assert pod.spec.automount_service_account_token is False  # only the progress token is mounted


def _namespace_dump(plane: ControlPlane, namespace: str) -> str:
    """Everything the operator wrote in a namespace that a user can read: statuses, Events,
    ConfigMaps, annotations, as JSON."""
    with plane.api_client() as api:
        custom = client.CustomObjectsApi(api)
        core = client.CoreV1Api(api)
        parts: list[Any] = [
            custom.list_namespaced_custom_object("optikube.io", "v1alpha1", namespace, plural)
            for plural in ("optimizationjobs", "optimizationtrials")
        ]
        parts.append(api.sanitize_for_serialization(core.list_namespaced_event(namespace)))
        parts.append(api.sanitize_for_serialization(core.list_namespaced_config_map(namespace)))
        parts.append(api.sanitize_for_serialization(core.list_namespaced_service_account(namespace)))
    return json.dumps(parts)


def test_tokens_never_appear_in_logs_events_or_status(
    trainers: Trainers, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    apply(trainers.plane, manifest("quickstart", trainers.namespace))
    pod = wait_for("a trial pod", lambda: trainers.running())[0]
    real = trainers.token(pod)
    forged = real.rsplit(".", 1)[0] + ".c2lnbmF0dXJlLXRoYXQtaXMtbm90LXZhbGlk"
    refused, reply = post(
        trainers.progress_url,
        {"type": "intermediate", "trial": 0, "epoch": 0, "step": 0, "values": {"accuracy": 0.5}},
        forged,
    )
    assert refused == 401 and forged not in json.dumps(reply)
    status = drive(trainers, "quickstart")
    assert status["phase"] == "Succeeded"
    written = _namespace_dump(trainers.plane, trainers.namespace)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert len(caplog.records) > 50  # the operator's own logs were captured
    for name, text in (("logs", logged), ("events, statuses and config maps", written)):
        assert real not in text and forged not in text, name
        assert not JWT.search(text), (name, JWT.search(text))
        assert "Bearer " not in text, name


def _listening_sockets(pid: int) -> set[str]:
    """host:port of every TCP socket the process listens on (from /proc/net/tcp{,6})."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = str(fd.readlink())
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    listening = set()
    for table, width in (("tcp", 8), ("tcp6", 32)):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                continue
            address, port = fields[1].split(":")
            if width == 8:
                host = ".".join(str(b) for b in reversed(bytes.fromhex(address)))
            else:
                host = "[v6]" if address.strip("0") else "[::]"
            listening.add(f"{host}:{int(port, 16)}")
    return listening


def test_the_operator_listens_only_where_it_is_told(crds: ControlPlane, tmp_path: Path) -> None:
    namespace = crds.create_namespace(f"listen-{uuid.uuid4().hex[:6]}")
    report, metrics, health = free_ports(3)
    expected = {f"127.0.0.1:{report}", f"127.0.0.1:{metrics}", f"127.0.0.1:{health}"}
    log = tmp_path / "operator.log"
    with log.open("wb") as stream:
        process = subprocess.Popen(
            operator_argv(
                crds.kubeconfig,
                report,
                metrics,
                f"--namespace={namespace}",
                f"--liveness=http://127.0.0.1:{health}/healthz",
            ),
            stdout=stream,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(
            "the operator's three listeners",
            lambda: _listening_sockets(process.pid) >= expected,
            timeout=60,
            interval=0.5,
        )
        time.sleep(2.0)  # anything started late would show up now
        assert _listening_sockets(process.pid) == expected, log.read_text()[-2000:]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(60)
