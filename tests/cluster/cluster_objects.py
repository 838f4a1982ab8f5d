"""Objects the cluster tier's tests create in the shapes the operator gives a run: an Indexed Job,
and the headless Service its pods find each other through."""

from __future__ import annotations

from typing import Any


def indexed_job(name: str, completions: int, template: dict[str, Any]) -> dict[str, Any]:
    """An Indexed Job of ``completions`` pods, all at once, none retried."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "completionMode": "Indexed",
            "completions": completions,
            "parallelism": completions,
            "backoffLimit": 0,
            "template": template,
        },
    }


def headless_service(name: str, selector: dict[str, str], port: int) -> dict[str, Any]:
    """A Service without a cluster IP: DNS names its pods (`<hostname>.<name>`), as a run's workers."""
    return {
        "metadata": {"name": name},
        "spec": {"clusterIP": "None", "selector": selector, "ports": [{"port": port}]},
    }
