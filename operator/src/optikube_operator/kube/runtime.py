"""Wiring: one OperatorRuntime holds the client, records, caches, endpoint and metrics that the kopf
handlers delegate to; `run_operator` runs kopf with it until the stop flag is set."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import kopf
from aiohttp import web

from optikube_operator.endpoint import ProgressEndpoint
from optikube_operator.kube import names
from optikube_operator.kube.announce import Announcer
from optikube_operator.kube.auth import TokenReviewAuthenticator
from optikube_operator.kube.backend import KubernetesBackend
from optikube_operator.kube.bookkeeping import NoDiffBase, NoProgress
from optikube_operator.kube.client import KubeClient
from optikube_operator.kube.config import OperatorConfig, split_bind
from optikube_operator.kube.k8s_events import K8sEventWriter
from optikube_operator.kube.progress import ProgressHandler
from optikube_operator.kube.prometheus import OperatorMetrics
from optikube_operator.kube.reconcile import Reconciler
from optikube_operator.kube.records import RecordStore
from optikube_operator.kube.runs import RunCache

log = logging.getLogger(__name__)
SERVICE_ACCOUNT_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
_ENV_LOCK = threading.Lock()
KOPF_WORKERS_PER_WATCH = 256
KOPF_WORKER_IDLE_SECONDS = 0.5


def connect(config: OperatorConfig) -> kopf.ConnectionInfo:
    """Credentials: the given kubeconfig, else in-cluster service account, else $KUBECONFIG."""
    settings = kopf.OperatorSettings()
    if (
        config.kubeconfig is None
        and SERVICE_ACCOUNT_TOKEN.exists()
        and os.environ.get("KUBERNETES_SERVICE_HOST")
    ):
        info = kopf.login_with_service_account(settings=settings)
    else:
        with _ENV_LOCK:  # kopf reads $KUBECONFIG; tests may run several operators in one process
            saved = os.environ.get("KUBECONFIG")
            if config.kubeconfig is not None:
                os.environ["KUBECONFIG"] = str(config.kubeconfig)
            try:
                info = kopf.login_with_kubeconfig(settings=settings)
            finally:
                if saved is None:
                    os.environ.pop("KUBECONFIG", None)
                else:
                    os.environ["KUBECONFIG"] = saved
    if info is None:
        raise kopf.LoginError("no kubeconfig and no in-cluster service account: pass --kubeconfig")
    return info


class OperatorRuntime:
    def __init__(self, config: OperatorConfig, connection: kopf.ConnectionInfo | None = None) -> None:
        self.config = config
        self.connection = connection or connect(config)
        self.metrics = OperatorMetrics()
        self.client = KubeClient(
            self.connection, relogin=self._relogin, on_request=self.metrics.count_request
        )
        self.runs = RunCache()
        self.store = RecordStore()
        self.backend = KubernetesBackend(self.client, config)
        self.recorder = K8sEventWriter(self.client, config.instance)
        announcer = Announcer(self.recorder, self.metrics)
        self.reconciler = Reconciler(self.backend, self.runs, self.store, self.metrics, announcer)
        self.authenticator = TokenReviewAuthenticator(self.client, self._pod)
        self.endpoint = ProgressEndpoint(
            ProgressHandler(self.reconciler), self.authenticator, on_outcome=self._count_progress
        )
        self._servers: list[web.AppRunner] = []
        self._phases: dict[tuple[str, str], str] = {}  # each known job's last published phase
        self.progress_url = ""

    async def _relogin(self) -> kopf.ConnectionInfo:
        self.connection = await asyncio.to_thread(connect, self.config)
        return self.connection

    def _count_progress(self, outcome: str) -> None:
        self.metrics.progress_requests.labels(outcome=outcome).inc()

    async def _pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.runs.pod(namespace, name) or await self.backend.get_pod(namespace, name)

    # --- lifecycle ------------------------------------------------------------------------------

    def configure(self, settings: kopf.OperatorSettings) -> None:
        """kopf's settings: no Events of its own (with only event handlers it writes nothing on the
        objects either), server-side filtering of the pods and Jobs it watches, stall detection."""
        settings.persistence.diffbase_storage = NoDiffBase()
        settings.persistence.progress_storage = NoProgress()
        settings.posting.enabled = False
        settings.peering.standalone = True
        ours = f"{names.MANAGED_BY}={names.MANAGER}"
        settings.watching.label_selectors["", "pods"] = ours
        settings.watching.label_selectors["batch", "jobs"] = ours
        # Stall detection (kopf#585, #957): the apiserver ends every watch after 45 s and kopf
        # resumes it from the last resourceVersion (one request, no re-list), so a stream silent
        # for 50 s is dead (a half-open connection, a restarted apiserver behind a proxy) and is
        # reconnected: the operator notices a lost apiserver within a minute, not never.
        settings.watching.server_timeout = 45
        settings.watching.inactivity_timeout = 50
        settings.watching.client_timeout = 60
        settings.watching.connect_timeout = 10
        settings.networking.request_timeout = 30
        # kopf hands each watched object's events to a worker of its own, at most worker_limit at a
        # time per watch, and keeps an idle worker for idle_timeout in case more events come. With
        # 32 workers kept 5 s each, a watch took on at most ~6 new objects a second: in a 200-job
        # burst (600 Jobs, 600 pods) the operator heard of ended preflights tens of seconds late.
        # The handlers only queue a pass, so a worker is done at once: short-lived and more of them.
        settings.queueing.worker_limit = KOPF_WORKERS_PER_WATCH
        settings.queueing.idle_timeout = KOPF_WORKER_IDLE_SECONDS
        # Watching exact namespaces needs no listing of namespaces or CRDs: kopf's scanning would
        # retry those (403 in the chart's namespaced mode, whose RBAC is per namespace) for about
        # a minute before falling back, and start the watches only then. Patterns (team-*) need it.
        settings.scanning.disabled = bool(self.config.namespaces) and not any(
            char in namespace for namespace in self.config.namespaces for char in "*?[!"
        )

    async def start(self) -> None:
        # the first request opens the TLS session: pay for it now, not in the first job's latency
        await self.client.get("/version")
        host, port = split_bind(self.config.progress_bind)
        self.progress_url = await self.endpoint.start(host, port)
        metrics_host, metrics_port = split_bind(self.config.metrics_bind)
        self._servers.append(await self.metrics.serve(metrics_host, metrics_port))
        log.info("progress endpoint %s, metrics on %s", self.progress_url, self.config.metrics_bind)
        self.reconciler.sweep.start()

    async def stop(self) -> None:
        self.reconciler.wakeups.cancel_all()
        await self.reconciler.sweep.stop()
        await self.endpoint.stop()  # no more progress: what it answered is written next
        await self.reconciler.progress_writes.stop()
        await self.recorder.flush()
        for server in self._servers:
            await server.cleanup()
        self._servers = []
        await self.client.close()

    # --- what the handlers call -----------------------------------------------------------------

    def job_event(self, event_type: str, body: Mapping[str, Any]) -> None:
        meta = body["metadata"]
        if event_type == "DELETED":
            self.reconciler.forget(meta["namespace"], meta["name"])
        else:
            self.reconciler.job_seen(body)
        self.publish_phases((meta["namespace"], meta["name"]))

    def run_changed(self, kind: str, event_type: str, body: Mapping[str, Any]) -> None:
        run = self.runs.update(kind, event_type, body)
        if kind == "Pod" and (event_type == "DELETED" or body["metadata"].get("deletionTimestamp")):
            self.authenticator.forget_pod(body["metadata"].get("namespace", ""), body["metadata"]["name"])
        if run is not None:
            self.reconciler.request((run[0], run[1]))

    def publish_phases(self, key: tuple[str, str]) -> None:
        """The jobs-by-phase gauge after a change of one job: its phase is looked up, the others'
        are remembered (every job's event would otherwise cost a pass over every job)."""
        if key not in self.reconciler.bodies:
            self._phases.pop(key, None)
        else:
            self._phases[key] = self.reconciler.phase(key) or "Pending"
        self.metrics.publish_phases(Counter(self._phases.values()))


async def run_operator(
    config: OperatorConfig,
    *,
    stop_flag: asyncio.Event | threading.Event | None = None,
    ready_flag: asyncio.Event | threading.Event | None = None,
) -> None:
    """Run the operator until ``stop_flag`` is set (or the process is signalled)."""
    import optikube_operator.kube.handlers  # noqa: F401  (registers the handlers)

    runtime = OperatorRuntime(config)
    await kopf.operator(
        clusterwide=not config.namespaces,
        namespaces=list(config.namespaces),
        liveness_endpoint=config.liveness,
        standalone=True,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
        memo=kopf.Memo(runtime=runtime),
    )
