"""The shape the operator gives a trial, run for real on the process node: an Indexed Job of two
pods plus a headless Service, each pod a torchrun agent with one gloo worker, meeting through
c10d rendezvous at `<job>-0.<service>:29500`."""

from __future__ import annotations

import json
import textwrap
import time
import uuid
from typing import Any

import pytest
from cluster_objects import headless_service, indexed_job
from kubernetes import client

from optikube_testcluster import ControlPlane
from optikube_testcluster.processnode.testing import on_process_node

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

ALL_REDUCE = textwrap.dedent(
    """
    import json, socket
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")
    value = torch.tensor([float(dist.get_rank() + 1)])
    dist.all_reduce(value)
    result = {"rank": dist.get_rank(), "world": dist.get_world_size(), "sum": value.item(),
              "host": socket.gethostname()}
    print(json.dumps(result), flush=True)
    with open("/dev/termination-log", "w") as out:
        out.write(json.dumps(result))
    dist.destroy_process_group()
    """
)


def torchrun_job(name: str, service: str) -> dict[str, Any]:
    args = [
        "--nnodes=2",
        "--nproc-per-node=1",
        "--node-rank=$(JOB_COMPLETION_INDEX)",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint={name}-0.{service}:29500",
        f"--rdzv-id={name}",
        "/scripts/all_reduce.py",
    ]
    container = {
        "name": "trainer",
        "image": "process-node",
        "command": ["torchrun"],
        "args": args,
        "env": [{"name": "OMP_NUM_THREADS", "value": "1"}],
        "volumeMounts": [{"name": "scripts", "mountPath": "/scripts"}],
    }
    spec = on_process_node(
        {
            "restartPolicy": "Never",
            "subdomain": service,
            "containers": [container],
            "volumes": [{"name": "scripts", "configMap": {"name": f"{name}-scripts"}}],
        }
    )
    return indexed_job(name, 2, {"metadata": {"labels": {"trial": name}}, "spec": spec})


def test_indexed_job_runs_torchrun_with_c10d_rendezvous_across_two_pods(
    control_plane: ControlPlane, api: Any
) -> None:
    namespace = control_plane.create_namespace(f"ddp-{uuid.uuid4().hex[:8]}")
    core: Any = client.CoreV1Api(api)
    batch: Any = client.BatchV1Api(api)
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "trial-scripts"}, "data": {"all_reduce.py": ALL_REDUCE}}
    )
    core.create_namespaced_service(namespace, headless_service("workers", {"trial": "trial"}, 29500))
    started = time.monotonic()
    batch.create_namespaced_job(namespace, torchrun_job("trial", "workers"))

    def finished() -> str | None:
        job = batch.read_namespaced_job("trial", namespace)
        for condition in job.status.conditions or []:
            if condition.status == "True" and condition.type in ("Complete", "Failed"):
                return str(condition.type)
        return None

    deadline = time.monotonic() + 240
    while (outcome := finished()) is None and time.monotonic() < deadline:
        time.sleep(1)
    pods = core.list_namespaced_pod(namespace, label_selector="trial=trial").items
    logs = {
        p.metadata.name: control_plane.container_log(namespace, p.metadata.name, "trainer").read_text()
        for p in pods
    }
    assert outcome == "Complete", logs
    results = []
    for pod in pods:
        [status] = pod.status.container_statuses
        assert pod.status.phase == "Succeeded" and status.state.terminated.exit_code == 0
        results.append(json.loads(status.state.terminated.message))
    assert sorted(r["rank"] for r in results) == [0, 1]
    assert all(r["world"] == 2 and r["sum"] == 3.0 for r in results)
    assert sorted(r["host"] for r in results) == ["trial-0", "trial-1"]
    print(f"torchrun job took {time.monotonic() - started:.1f}s")
