"""Running the operator against the real control plane, and acting as kubelet and trainer.

Pods land on kwok nodes, which take them to Running and stop there; `Trainers` then plays what a
trainer pod and its kubelet would do: it asks the TokenRequest API for the pod's projected token
(audience optikube.io, bound to the pod), pushes Contract 3 progress over real HTTP to the operator's
progress endpoint, and finishes the pod with an exit code and termination message.

Each job's preflight pod comes first: `Trainers` finishes it as the trainer's preflight stage does
(by default it passes: exit 0, no message; `preflight=(2, "<field>: <problem>")` refuses), whenever
it looks at the running pods, so that a test waiting for trial pods sees them as before.
`preflight=None` leaves preflight pods to the test.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3
import yaml
from kubernetes import client

from optikube_operator.kube import names
from optikube_operator.kube.config import OperatorConfig, TrainerDefaults
from optikube_operator.kube.runtime import run_operator
from optikube_testcluster import ControlPlane
from optikube_testcluster.kubelet import finish_pod
from optikube_testcluster.ports import free_ports
from optikube_testcluster.probes import wait_for

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


@dataclass
class RunningOperator:
    config: OperatorConfig
    thread: threading.Thread
    stop_flag: threading.Event

    @property
    def progress_url(self) -> str:
        return self.config.effective_progress_url

    @property
    def metrics_url(self) -> str:
        return f"http://{self.config.metrics_bind}/metrics"

    def stop(self) -> None:
        self.stop_flag.set()
        self.thread.join(60)
        assert not self.thread.is_alive(), "the operator did not stop"


@contextmanager
def operator_running(plane: ControlPlane, **overrides: Any) -> Iterator[RunningOperator]:
    """The operator in a thread of this process (kopf's event loop of its own), as the admin."""
    report, metrics = free_ports(2)
    values: dict[str, Any] = {
        "kubeconfig": plane.kubeconfig,
        "progress_bind": f"127.0.0.1:{report}",
        "metrics_bind": f"127.0.0.1:{metrics}",
        "trainer": TrainerDefaults(image="optikube/trainer:test"),
    }
    values.update(overrides)
    config = OperatorConfig(**values)
    stop, ready = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    def main() -> None:
        try:
            asyncio.run(run_operator(config, stop_flag=stop, ready_flag=ready))
        except BaseException as error:  # shown by the test instead of vanishing with the thread
            failure.append(error)
            ready.set()

    thread = threading.Thread(target=main, name="optikube-operator", daemon=True)
    thread.start()
    assert ready.wait(60), "the operator did not start"
    if failure:
        raise failure[0]
    running = RunningOperator(config, thread, stop)
    try:
        yield running
    finally:
        running.stop()


def manifest(example: str, namespace: str, **spec_changes: Any) -> dict[str, Any]:
    job: dict[str, Any] = next(yaml.safe_load_all((EXAMPLES / f"{example}.yaml").read_text()))
    job["metadata"]["namespace"] = namespace
    # kwok's pods mount nothing: the quickstart's claim would only wait for a volume
    if example == "quickstart":
        job["spec"].pop("artifacts", None)
    for path, value in spec_changes.items():
        node = job["spec"]
        *parents, leaf = path.split("__")
        for segment in parents:
            node = node.setdefault(segment, {})
        node[leaf] = value
    return job


def post(url: str, event: dict[str, Any], token: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=json.dumps(event).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def accuracy_for(params: dict[str, Any], epoch: int, epochs: int) -> float:
    """A learning curve that depends smoothly on the learning rate (best near 3e-3)."""
    lr = float(params.get("training.learningRate", 3e-3))
    quality = max(0.1, 0.97 - abs(math.log10(lr) + 2.5) / 6)
    return round(quality * (0.6 + 0.4 * (epoch + 1) / epochs), 6)


def results_document(accuracy: float) -> dict[str, Any]:
    block = {"metrics": {"accuracy": accuracy}, "parameters": 8000, "sizeBytes": 40000, "macs": 8000}
    return {
        "baseline": {**block, "latencyMs": {"batch1P50": 0.2, "batch32P50": 1.0}},
        "optimized": {
            **block,
            "sizeBytes": 10000,
            "parameters": 4000,
            "latencyMs": {"batch1P50": 0.1, "batch32P50": 0.5},
        },
        "runtime": {
            "requested": "auto",
            "chosen": "onnx",
            "candidates": [
                {
                    "runtime": runtime,
                    "quantization": "int8",
                    "latencyMs": {"batch1P50": latency, "batch32P50": 5 * latency},
                    "baselineLatencyMs": {"batch1P50": 0.2, "batch32P50": 1.0},
                    "metrics": {"accuracy": accuracy},
                    "withinBudget": True,
                }
                for runtime, latency in (("eager", 0.3), ("onnx", 0.1))
            ],
        },
        "budget": {"metric": "accuracy", "maxAccuracyDrop": 1.0, "drop": 0.4},
        "stages": [],
        "artifacts": {"model": "model/", "report": "report.html"},
    }


class RunGoneError(Exception):
    """The operator ended the run (stopped, or the job finished) while it was being played."""


@dataclass
class Trainers:
    """Plays the trainer and the kubelet for the operator's pods in one namespace."""

    plane: ControlPlane
    namespace: str
    progress_url: str
    handled: set[str] = field(default_factory=set)
    replies: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    # like the real trainer, go on when the endpoint is unreachable or refuses (the termination
    # message still carries the result)
    tolerant: bool = False
    # how preflight pods end (exit code, termination message); None: the test finishes them
    preflight: tuple[int, str] | None = (0, "")
    preflights: set[str] = field(default_factory=set)
    _preflight_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def core(self) -> Any:
        return client.CoreV1Api(self.plane.api_client())

    def pods(self, selector: str = f"{names.MANAGED_BY}={names.MANAGER}") -> list[Any]:
        with self.plane.api_client() as api:
            return list(
                client.CoreV1Api(api).list_namespaced_pod(self.namespace, label_selector=selector).items
            )

    def running(self) -> list[Any]:
        """The running trial and pipeline pods; running preflight pods are finished first."""
        live = [
            p for p in self.pods() if p.status.phase == "Running" and p.metadata.deletion_timestamp is None
        ]
        preflights = [p for p in live if p.metadata.labels.get(names.RUN_LABEL) == names.RunKind.PREFLIGHT]
        self._finish_preflights(preflights)
        return [p for p in live if p not in preflights]

    def finish_running_preflights(self) -> None:
        """What `running()` does first, for tests that wait on a status without asking for pods."""
        self._finish_preflights(
            [
                p
                for p in self.preflight_pods()
                if p.status.phase == "Running" and p.metadata.deletion_timestamp is None
            ]
        )

    def _finish_preflights(self, pods: list[Any]) -> None:
        if self.preflight is None:
            return
        with self._preflight_lock:  # the fixture's finisher and a test's running() may race
            for pod in pods:
                if pod.metadata.name not in self.preflights:
                    self.finish_preflight(pod, *self.preflight)

    def preflight_pods(self) -> list[Any]:
        return self.pods(f"{names.MANAGED_BY}={names.MANAGER},{names.RUN_LABEL}={names.RunKind.PREFLIGHT}")

    def finish_preflight(self, pod: Any, exit_code: int = 0, message: str = "") -> None:
        """End a preflight pod as the trainer's preflight stage does: 0 passed, 2 refused with
        `<spec field>: <problem>` as its termination message."""
        try:
            self.finish(pod, exit_code, message)
        except client.ApiException as error:
            if error.status != 404:  # its Job deleted meanwhile
                raise
        self.preflights.add(pod.metadata.name)

    def token(self, pod: Any, audience: str = names.TOKEN_AUDIENCE, seconds: int = 600) -> str:
        request = {
            "spec": {
                "audiences": [audience],
                "expirationSeconds": seconds,
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": pod.metadata.name,
                    "uid": pod.metadata.uid,
                },
            }
        }
        with self.plane.api_client() as api:
            response = client.CoreV1Api(api).create_namespaced_service_account_token(
                pod.spec.service_account_name, self.namespace, request
            )
        return str(response.status.token)

    def config_of(self, pod: Any) -> dict[str, Any]:
        name = next(v.config_map.name for v in pod.spec.volumes if v.config_map is not None)
        with self.plane.api_client() as api:
            data = client.CoreV1Api(api).read_namespaced_config_map(name, self.namespace).data
        return json.loads(data[names.CONFIG_FILE])

    def finish(self, pod: Any, exit_code: int = 0, message: str = "") -> None:
        with self.plane.api_client() as api:
            finish_pod(api, self.namespace, pod.metadata.name, exit_code, message)

    def send_progress(self, pod: Any, event: dict[str, Any], token: str) -> dict[str, Any]:
        try:
            code, body = post(self.progress_url, event, token)
        except (urllib.error.URLError, OSError) as error:
            if not self.tolerant:
                raise
            code, body = 0, {"error": str(error)}
        self.replies.append((pod.metadata.name, code, body))
        if self.tolerant:
            return body if code == 200 else {}
        if code == 409:
            raise RunGoneError(body.get("error", ""))  # the operator ended this run first
        assert code == 200, (code, body, event)
        return body

    def play(self, pod: Any, *, fail: bool = False, push_final: bool = True) -> str:
        """One pod's run to its end; returns how it ended (succeeded, pruned, failed, or gone when the
        operator stopped the run first)."""
        self.handled.add(pod.metadata.name)
        try:
            return self._play(pod, fail=fail, push_final=push_final)
        except RunGoneError:
            return "gone"
        except client.ApiException as error:
            if error.status == 404:
                return "gone"  # the operator stopped this run (its pod, its ConfigMap) meanwhile
            self.handled.discard(pod.metadata.name)  # cut short (the apiserver away): play it again
            raise
        except Exception:
            self.handled.discard(pod.metadata.name)
            raise

    def _play(self, pod: Any, *, fail: bool, push_final: bool) -> str:
        config = self.config_of(pod)
        if pod.metadata.annotations.get(names.COMPLETION_INDEX_ANNOTATION, "0") != "0":
            self.finish(pod)  # only rank 0 reports
            return "succeeded"
        token = self.token(pod)
        trial = config["trial"]["number"] if config["trial"] else None
        params = config["trial"]["params"] if config["trial"] else config["spec"]["training"]
        epochs = int(config["spec"]["training"]["epochs"])
        if fail:
            self.send_progress(
                pod, {"type": "failed", "trial": trial, "message": "RuntimeError: boom"}, token
            )
            self.finish(
                pod, 1, json.dumps({"type": "failed", "trial": trial, "message": "RuntimeError: boom"})
            )
            return "failed"
        if trial is None:
            return self._pipeline(pod, token, epochs)
        accuracy = 0.0
        for epoch in range(epochs):
            accuracy = accuracy_for(params, epoch, epochs)
            event = {
                "type": "intermediate",
                "trial": trial,
                "epoch": epoch,
                "step": epoch,
                "values": {"accuracy": accuracy},
            }
            if self.send_progress(pod, event, token).get("prune"):
                pruned = {"type": "pruned", "trial": trial, "epoch": epoch, "values": {"accuracy": accuracy}}
                self.send_progress(pod, pruned, token)
                self.finish(pod, 0, json.dumps(pruned))
                return "pruned"
        final = {
            "type": "final",
            "trial": trial,
            "values": {"accuracy": accuracy},
            "results": {"trial": trial},
        }
        if push_final:
            self.send_progress(pod, final, token)
        self.finish(pod, 0, json.dumps(final))
        return "succeeded"

    def _pipeline(self, pod: Any, token: str, epochs: int) -> str:
        for stage in ("train", "pruning", "quantization", "evaluation"):
            self.send_progress(
                pod, {"type": "stage", "trial": None, "stage": stage, "status": "started"}, token
            )
            done = {
                "type": "stage",
                "trial": None,
                "stage": stage,
                "status": "completed",
                "durationSeconds": 1.5,
            }
            self.send_progress(pod, done, token)
        results = results_document(0.95)
        final = {
            "type": "final",
            "trial": None,
            "values": {"accuracy": 0.95, "sizeBytes": 10000},
            "results": results,
        }
        self.send_progress(pod, final, token)
        self.finish(pod, 0, json.dumps({"type": "final", "trial": None, "values": final["values"]}))
        return "succeeded"

    def play_all(self, **kwargs: Any) -> int:
        """Play every running pod not handled yet; returns how many."""
        fresh = [pod for pod in self.running() if pod.metadata.name not in self.handled]
        for pod in fresh:
            self.play(pod, **kwargs)
        return len(fresh)


class PlayingTrainers(threading.Thread):
    """Plays every trial pod in the background, whether or not the operator or the apiserver is up
    to hear it: a pod whose play the apiserver cut short is played again (replayed reports are
    refused with 409 and change nothing)."""

    def __init__(self, trainers: Trainers, **play: Any) -> None:
        super().__init__(daemon=True)
        self.trainers = trainers
        self.play = play
        self.stop = threading.Event()
        self.interruptions = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.trainers.play_all(**self.play)
            except client.ApiException as error:
                if error.status < 500 and error.status != 429:
                    self.error = error
                    return
                self.interruptions += 1
            except (OSError, urllib3.exceptions.HTTPError):
                self.interruptions += 1  # the apiserver is down: try again
            except BaseException as error:
                self.error = error
                return
            time.sleep(0.2)

    def __enter__(self) -> PlayingTrainers:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join(30)
        assert self.error is None, self.error


def assert_nothing_lost_or_repeated(trainers: Trainers, jobs: Sequence[str], trials: int) -> None:
    """Every job Succeeded with trials 0..trials-1, each with its result, launched once, with one
    Job and one pod ever (the pods `trainers` saw)."""
    with trainers.plane.api_client() as api:
        items = client.CustomObjectsApi(api).list_namespaced_custom_object(
            "optikube.io", "v1alpha1", trainers.namespace, "optimizationtrials"
        )["items"]
    by_job: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for trial in items:
        by_job[trial["spec"]["jobRef"]["name"]].append(trial)
    pods_per_run: dict[str, set[str]] = defaultdict(set)
    for pod in trainers.handled:
        pods_per_run[pod.rsplit("-", 2)[0]].add(pod)
    for name in jobs:
        status = job_status(trainers.plane, trainers.namespace, name)
        assert status["phase"] == "Succeeded", (name, status.get("message"))
        unsuccessful = {
            t["metadata"]["name"]: (t["status"].get("phase"), t["status"].get("message"))
            for t in by_job[name]
            if t["status"].get("phase") != "Succeeded"
        }
        assert not unsuccessful, unsuccessful
        counts = status["trialCounts"]
        assert counts["completed"] == trials and counts["succeeded"] == trials, (name, counts)
        numbers = sorted(t["spec"]["number"] for t in by_job[name])
        assert numbers == list(range(trials)), (name, numbers)
        for trial in by_job[name]:
            label = trial["metadata"]["name"]
            assert trial["status"]["finalValues"].get("accuracy") is not None, label  # none lost
            assert trial["status"]["attempts"] == 1, label  # launched once
            run = names.run_name(name, names.trial_run(trial["spec"]["number"]))
            assert len(pods_per_run[run]) == 1, (run, pods_per_run[run])  # one Job, one pod, ever


def trial_objects(plane: ControlPlane, namespace: str) -> list[dict[str, Any]]:
    """The OptimizationTrials of a namespace."""
    with plane.api_client() as api:
        items: list[dict[str, Any]] = client.CustomObjectsApi(api).list_namespaced_custom_object(
            "optikube.io", "v1alpha1", namespace, "optimizationtrials"
        )["items"]
    return items


def _status(plane: ControlPlane, namespace: str, plural: str, name: str) -> dict[str, Any]:
    with plane.api_client() as api:
        body = client.CustomObjectsApi(api).get_namespaced_custom_object(
            "optikube.io", "v1alpha1", namespace, plural, name
        )
    status: dict[str, Any] = body.get("status") or {}
    return status


def job_status(plane: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    return _status(plane, namespace, "optimizationjobs", name)


def trial_status(trainers: Trainers, name: str) -> dict[str, Any]:
    """The status of an OptimizationTrial of the trainers' namespace."""
    return _status(trainers.plane, trainers.namespace, "optimizationtrials", name)


def apply(plane: ControlPlane, obj: dict[str, Any]) -> None:
    plane.kubectl("apply", "-f", "-", input=json.dumps(obj))


def drive(trainers: Trainers, name: str, timeout: float = 180.0, **play: Any) -> dict[str, Any]:
    """Play pods until the job finishes; returns its final status."""

    def finished() -> dict[str, Any] | None:
        trainers.play_all(**play)
        status = job_status(trainers.plane, trainers.namespace, name)
        return status if status.get("phase") in ("Succeeded", "Failed") else None

    result: dict[str, Any] = wait_for(f"{name} to finish", finished, timeout=timeout, interval=0.3)
    return result
