"""A tiny dynamic provisioner for StorageClass optikube-local (the default class): each claim
gets a host directory under the agent's state dir, as a hostPath PersistentVolume pinned to the
node the scheduler picked (WaitForFirstConsumer), and loses it once the claim is deleted.

Claims selected for kwok nodes are provisioned too (their directory is never used), so pods with
claims keep scheduling there as before.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from optikube_testcluster.processnode.paths import StateLayout
from optikube_testcluster.processnode.rest import ApiError, RestClient
from optikube_testcluster.processnode.spec import PROCESS_NODE_LABEL, PROVISIONER, STORAGE_CLASS

log = logging.getLogger(__name__)
SELECTED_NODE = "volume.kubernetes.io/selected-node"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
PV_PATH = "/api/v1/persistentvolumes"


def storage_class() -> dict[str, Any]:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": STORAGE_CLASS, "annotations": {DEFAULT_CLASS: "true"}},
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    }


def volume_name(claim: dict[str, Any]) -> str:
    return f"pvc-{claim['metadata']['uid']}"


def wants_volume(claim: dict[str, Any]) -> bool:
    spec, metadata = claim.get("spec", {}), claim["metadata"]
    return (
        spec.get("storageClassName") == STORAGE_CLASS
        and not spec.get("volumeName")
        and (claim.get("status") or {}).get("phase", "Pending") == "Pending"
        and SELECTED_NODE in (metadata.get("annotations") or {})
        and not metadata.get("deletionTimestamp")
    )


def persistent_volume(claim: dict[str, Any], path: Path) -> dict[str, Any]:
    """The PV for a claim: its size and modes, bound to it, on the selected node only."""
    metadata, spec = claim["metadata"], claim.get("spec", {})
    node = metadata["annotations"][SELECTED_NODE]
    size = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
    affinity = {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": volume_name(claim), "annotations": {PROVISIONED_BY: PROVISIONER}},
        "spec": {
            "capacity": {"storage": size},
            "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": STORAGE_CLASS,
            "volumeMode": spec.get("volumeMode") or "Filesystem",
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": metadata["namespace"],
                "name": metadata["name"],
                "uid": metadata["uid"],
            },
            "hostPath": {"path": str(path), "type": "DirectoryOrCreate"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [affinity]}]}},
        },
    }


def volume_path(volume: dict[str, Any]) -> Path | None:
    spec = volume.get("spec", {})
    source = spec.get("hostPath") or spec.get("local")
    return Path(source["path"]) if source and source.get("path") else None


def bound_path(claim: dict[str, Any] | None, volumes: Sequence[dict[str, Any]]) -> Path | None:
    """The host directory of a bound claim's volume; None while it is unbound."""
    if claim is None or not claim.get("spec", {}).get("volumeName"):
        return None
    for volume in volumes:
        if volume["metadata"]["name"] == claim["spec"]["volumeName"]:
            return volume_path(volume)
    return None


class Provisioner:
    def __init__(self, rest: RestClient, layout: StateLayout, own_nodes: Sequence[str]) -> None:
        self.rest = rest
        self.layout = layout
        self.own_nodes = set(own_nodes)
        self._serves: dict[str, bool] = {}

    def serves(self, node: str) -> bool:
        """Claims for our nodes, and for nodes no process-node agent runs (kwok's); another
        agent's nodes get their claims from that agent, in its own state directory."""
        if node in self.own_nodes:
            return True
        if node not in self._serves:
            found = self.rest.get_or_none(f"/api/v1/nodes/{node}")
            labels = (found or {}).get("metadata", {}).get("labels") or {}
            self._serves[node] = found is not None and PROCESS_NODE_LABEL not in labels
        return self._serves[node]

    def ensure_class(self) -> None:
        try:
            self.rest.create("/apis/storage.k8s.io/v1/storageclasses", storage_class())
        except ApiError as error:
            if error.status != 409:
                raise

    def reconcile(self, claims: Sequence[dict[str, Any]], volumes: Sequence[dict[str, Any]]) -> None:
        existing = {v["metadata"]["name"] for v in volumes}
        for claim in claims:
            if wants_volume(claim) and volume_name(claim) not in existing:
                metadata = claim["metadata"]
                if not self.serves(metadata["annotations"][SELECTED_NODE]):
                    continue
                path = self.layout.claim(metadata["namespace"], metadata["name"])
                path.mkdir(parents=True, exist_ok=True)
                path.chmod(0o777)  # writable by whatever user the pods run as
                try:
                    self.rest.create(PV_PATH, persistent_volume(claim, path))
                    log.info(
                        "provisioned %s for claim %s/%s",
                        volume_name(claim),
                        metadata["namespace"],
                        metadata["name"],
                    )
                except ApiError as error:
                    if error.status != 409:
                        log.warning("provisioning %s: %s", volume_name(claim), error)
        in_use = {volume_path(v) for v in volumes if (v.get("status") or {}).get("phase") != "Released"}
        for volume in volumes:
            annotations = volume["metadata"].get("annotations") or {}
            if annotations.get(PROVISIONED_BY) != PROVISIONER:
                continue
            if (volume.get("status") or {}).get("phase") != "Released":
                continue
            released = volume_path(volume)
            if released is not None and released not in in_use and self.layout.root in released.parents:
                shutil.rmtree(released, ignore_errors=True)
            try:
                self.rest.delete(f"{PV_PATH}/{volume['metadata']['name']}")
            except ApiError as error:
                if error.status != 404:
                    log.warning("deleting %s: %s", volume["metadata"]["name"], error)
