"""`spec.resources`, `spec.artifacts`, `spec.cleanup`: where and how the pods run, and what they leave."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import Field

from optikube_operator.api.affinity import Affinity
from optikube_operator.api.base import ApiModel, AsDict, Quantity, Rule
from optikube_operator.api.formats import (
    DNS_LABEL_PATTERN,
    DnsSubdomain,
    ImageReference,
    LabelValue,
    QualifiedName,
)
from optikube_operator.api.quantities import ResourceName, requirement_errors

GPU_RESOURCE = "nvidia.com/gpu"
# A relative path none of whose components is '..' (the apiserver refuses such a volume subPath).
_COMPONENT = r"([^/.][^/]*|\.[^/.][^/]*|\.\.[^/]+|\.)"
SUB_PATH_PATTERN = rf"^({_COMPONENT}(/{_COMPONENT})*)?$"


class Toleration(ApiModel):
    """A Kubernetes toleration, copied to every trainer pod."""

    key: QualifiedName | None = Field(None, description="Taint key; empty with operator Exists matches all.")
    operator: Literal["Exists", "Equal"] = Field("Equal", description="Exists or Equal.")
    value: LabelValue | None = Field(None, description="Taint value (operator Equal).")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        None, description="Taint effect to tolerate; empty matches all effects."
    )
    toleration_seconds: int | None = Field(
        None, ge=0, description="How long a NoExecute taint is tolerated before eviction."
    )

    RULES = (
        Rule(
            cel="self.operator != 'Exists' || !has(self.value)",
            message="a toleration with operator Exists has no value",
            check=lambda s: s.operator != "Exists" or s.value is None,
            field="value",
        ),
        # The apiserver's own rules for a pod's tolerations (ValidateTolerations).
        Rule(
            cel="has(self.key) || self.operator == 'Exists'",
            message="a toleration without a key must have operator Exists",
            check=lambda s: s.key is not None or s.operator == "Exists",
            field="operator",
        ),
        Rule(
            cel="!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
            message="tolerationSeconds applies to effect NoExecute only",
            check=lambda s: s.toleration_seconds is None or s.effect == "NoExecute",
            field="tolerationSeconds",
        ),
    )


class ResourcesSpec(ApiModel):
    """The trainer pods: how many, how big, where they may run. Applies to trials and the final pipeline."""

    workers: int = Field(1, ge=1, le=1024, description="Pods per run (torchrun nodes).")
    processes_per_worker: int = Field(
        1, ge=1, le=64, description="torchrun processes per pod (usually one per GPU)."
    )
    backoff_limit: int = Field(
        0,
        ge=0,
        le=10,
        description="Pod failures tolerated per run before the run fails (the Job's backoffLimit); a retried"
        " pod resumes from the run's last checkpoint when artifacts are on a PVC.",
    )
    gpus_per_process: int = Field(
        0,
        ge=0,
        le=8,
        description="GPUs per process; the pod requests processesPerWorker x this nvidia.com/gpu.",
    )
    image: ImageReference | None = Field(
        None,
        description="Trainer image (your own for importPath models); the operator's default otherwise.",
    )
    requests: dict[ResourceName, Quantity] = Field(
        default_factory=dict,
        max_length=16,
        description="Resource requests of each pod, e.g. cpu: 2, memory: 4Gi.",
    )
    limits: dict[ResourceName, Quantity] = Field(
        default_factory=dict, max_length=16, description="Resource limits of each pod."
    )
    node_selector: dict[QualifiedName, LabelValue] = Field(
        default_factory=dict,
        max_length=32,
        description="Node labels the pods must match (keys are label keys, values label values).",
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, max_length=32, description="Taints the pods tolerate (e.g. GPU nodes)."
    )
    # Kept as written (AsDict): the operator copies it into the pod template verbatim.
    affinity: Annotated[dict[str, Any], AsDict(Affinity)] = Field(
        default_factory=dict,
        description="A Kubernetes affinity (nodeAffinity, podAffinity, podAntiAffinity).",
    )
    priority_class_name: DnsSubdomain | None = Field(None, description="PriorityClass of the pods.")
    queue_name: str | None = Field(
        None,
        pattern=DNS_LABEL_PATTERN,
        max_length=63,
        description="Kueue LocalQueue; set as the kueue.x-k8s.io/queue-name label so Kueue admits runs"
        " as a whole.",
    )
    service_account_name: str | None = Field(
        None,
        pattern=DNS_LABEL_PATTERN,
        max_length=253,
        description="Service account of the pods (for image pulls or storage access); it needs no RBAC.",
    )

    RULES = (
        Rule(
            cel=f"(!has(self.requests) || !('{GPU_RESOURCE}' in self.requests))"
            f" && (!has(self.limits) || !('{GPU_RESOURCE}' in self.limits))",
            message="set GPUs with gpusPerProcess, not in requests/limits",
            check=lambda s: GPU_RESOURCE not in s.requests and GPU_RESOURCE not in s.limits,
            field="limits",
        ),
    )

    def field_errors(self) -> Iterator[tuple[str, str]]:
        yield from requirement_errors(self.requests, self.limits)

    def pod_gpus(self) -> int:
        return self.processes_per_worker * self.gpus_per_process


class PvcLocation(ApiModel):
    """A folder on a PersistentVolumeClaim."""

    claim_name: str = Field(pattern=DNS_LABEL_PATTERN, max_length=253, description="Name of the PVC.")
    sub_path: str = Field(
        "",
        max_length=1024,
        pattern=SUB_PATH_PATTERN,
        description="Folder inside the volume (relative, no '..').",
    )


class ArtifactsSpec(ApiModel):
    """Where checkpoints, the optimized model, results.json and the report are stored."""

    pvc: PvcLocation | None = Field(None, description="A PVC mounted into every trainer pod.")
    uri: str | None = Field(
        None,
        pattern=r"^(s3|gs|az|file)://.+$",
        max_length=1024,
        description="Object storage prefix (s3://, gs://, az://) the final artifacts are uploaded to.",
    )

    RULES = (
        Rule(
            cel="has(self.pvc) || has(self.uri)",
            message="set pvc, uri or both",
            check=lambda s: s.pvc is not None or s.uri is not None,
        ),
    )


class CleanupSpec(ApiModel):
    """What is deleted when the job finishes."""

    ttl_seconds_after_finished: int | None = Field(
        None, ge=0, description="Delete the OptimizationJob this long after it finished; unset keeps it."
    )
    keep_trial_pods: Literal["none", "failed", "all"] = Field(
        "failed", description="Trial pods kept after their trial ends: none, failed (for debugging) or all."
    )
