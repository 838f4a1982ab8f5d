"""`Client`: submit, list and get OptimizationJobs, on this machine or on a cluster."""

from __future__ import annotations

import builtins
from pathlib import Path

from optikube_operator.client.handle import ClientBackend, JobHandle
from optikube_operator.client.specs import SpecSource, prepare


class Client:
    """One interface over both backends: `Client.local(...)` runs jobs here (as `optikube run`
    does), `Client.cluster(...)` submits them to the operator."""

    def __init__(self, backend: ClientBackend) -> None:
        self.backend = backend

    @classmethod
    def local(cls, output_dir: str | Path = "runs") -> Client:
        """Jobs run on this machine, each in `<output_dir>/<name>` (what `optikube run --output`
        writes), by a process that outlives this one."""
        from optikube_operator.client.local import LocalJobs

        return cls(LocalJobs(output_dir))

    @classmethod
    def cluster(cls, namespace: str | None = None, kubeconfig: str | Path | None = None) -> Client:
        """Jobs in `namespace` of the cluster `kubeconfig` names (default: in-cluster config in a
        pod, else $KUBECONFIG or ~/.kube/config; the namespace defaults to the context's)."""
        from optikube_operator.client.cluster import ClusterJobs

        return cls(ClusterJobs(namespace=namespace, kubeconfig=kubeconfig))

    @property
    def where(self) -> str:
        return self.backend.where

    def submit(self, spec: SpecSource, *, smoke: bool = False) -> JobHandle:
        """Validate `spec` (a path, YAML text, a dict or an OptimizationJob) as `optikube validate`
        does, then submit it; `smoke=True` runs its smoke form (`optikube run --smoke`)."""
        submission = prepare(spec, smoke=smoke)
        return JobHandle(self.backend, self.backend.submit(submission))

    def get(self, name: str) -> JobHandle:
        return JobHandle(self.backend, self.backend.snapshot(name))

    def list(self) -> builtins.list[JobHandle]:
        return [JobHandle(self.backend, snapshot) for snapshot in self.backend.snapshots()]

    def __repr__(self) -> str:
        return f"Client({type(self.backend).__name__} at {self.where})"
