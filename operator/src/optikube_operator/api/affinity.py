"""A Kubernetes affinity (`spec.resources.affinity`), typed so that validation catches what the
apiserver would refuse in the run's Pods (k8s.io/kubernetes pkg/apis/core/validation,
ValidateAffinity): operators and their values, weights, label keys and values, topology keys.

The field stays a plain dict at runtime (`AsDict`): the operator copies what the user wrote into
the pod template. Lists are bounded (Kubernetes does not bound them) to keep CEL's cost and the
object small.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field

from optikube_operator.api.base import ApiModel, Rule
from optikube_operator.api.formats import DnsLabel, DnsSubdomain, LabelValue, QualifiedName

MAX_TERMS = 16
MAX_VALUES = 64

SelectorOperator = Literal["In", "NotIn", "Exists", "DoesNotExist"]
NodeSelectorOperator = Literal["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]


def _terms(description: str) -> Any:
    """A list field of at most MAX_TERMS items, empty unless set (Kubernetes' optional lists)."""
    return Field(default_factory=list, max_length=MAX_TERMS, description=description)


def _values_rules(operators: tuple[str, ...] = ()) -> tuple[Rule, ...]:
    """The values a selector requirement needs for its operator (the same for label and node
    selectors, which add Gt and Lt)."""
    rules = [
        Rule(
            cel="!(self.operator in ['In', 'NotIn']) || (has(self.values) && size(self.values) > 0)",
            message="operator In or NotIn needs values",
            check=lambda s: s.operator not in ("In", "NotIn") or bool(s.values),
            field="values",
        ),
        Rule(
            cel="!(self.operator in ['Exists', 'DoesNotExist']) || !has(self.values)"
            " || size(self.values) == 0",
            message="operator Exists or DoesNotExist takes no values",
            check=lambda s: s.operator not in ("Exists", "DoesNotExist") or not s.values,
            field="values",
        ),
    ]
    if "Gt" in operators:
        rules.append(
            Rule(
                cel="!(self.operator in ['Gt', 'Lt']) || (has(self.values) && size(self.values) == 1"
                " && self.values[0].matches('^-?[0-9]+$'))",
                message="operator Gt or Lt needs exactly one value, a whole number",
                check=lambda s: (
                    s.operator not in ("Gt", "Lt")
                    or (len(s.values) == 1 and s.values[0].lstrip("-").isdigit() and s.values[0].isascii())
                ),
                field="values",
            )
        )
    return tuple(rules)


class LabelSelectorRequirement(ApiModel):
    """One condition on a label."""

    key: QualifiedName = Field(description="The label key.")
    operator: SelectorOperator = Field(description="In, NotIn, Exists or DoesNotExist.")
    values: list[LabelValue] = Field(
        default_factory=list,
        max_length=MAX_VALUES,
        description="Label values (In, NotIn); empty with Exists and DoesNotExist.",
    )

    RULES = _values_rules()


class LabelSelector(ApiModel):
    """Selects objects by their labels; every condition must hold."""

    match_labels: dict[QualifiedName, LabelValue] = Field(
        default_factory=dict,
        max_length=32,
        description="Labels that must have exactly these values (keys are label keys, values label values).",
    )
    match_expressions: list[LabelSelectorRequirement] = _terms("Conditions on labels.")


class NodeSelectorRequirement(ApiModel):
    """One condition on a node label."""

    key: QualifiedName = Field(description="The node label key.")
    operator: NodeSelectorOperator = Field(
        description="In, NotIn, Exists, DoesNotExist, Gt or Lt (Gt and Lt compare whole numbers)."
    )
    values: list[LabelValue] = Field(
        default_factory=list,
        max_length=MAX_VALUES,
        description="Label values (In, NotIn), one whole number (Gt, Lt), none (Exists, DoesNotExist).",
    )

    RULES = _values_rules(("Gt", "Lt"))


class NodeFieldSelectorRequirement(ApiModel):
    """A condition on a node field; Kubernetes supports only metadata.name."""

    key: Literal["metadata.name"] = Field(description="The node field: metadata.name.")
    operator: Literal["In", "NotIn"] = Field(description="In or NotIn.")
    values: list[DnsSubdomain] = Field(min_length=1, max_length=1, description="Exactly one node name.")


class NodeSelectorTerm(ApiModel):
    """Conditions that must all hold on a node."""

    match_expressions: list[NodeSelectorRequirement] = _terms("Conditions on node labels.")
    match_fields: list[NodeFieldSelectorRequirement] = _terms("Conditions on node fields.")


class NodeSelector(ApiModel):
    """Nodes matching any of the terms."""

    node_selector_terms: list[NodeSelectorTerm] = Field(
        min_length=1, max_length=MAX_TERMS, description="Terms, any of which a node may match."
    )


class PreferredSchedulingTerm(ApiModel):
    """A node preference with its weight."""

    weight: int = Field(ge=1, le=100, description="Weight of the preference, 1 to 100.")
    preference: NodeSelectorTerm = Field(description="The nodes preferred.")


class NodeAffinity(ApiModel):
    """Which nodes the pods may run on, or prefer."""

    required_during_scheduling_ignored_during_execution: NodeSelector | None = Field(
        None, description="Nodes the pods must run on."
    )
    preferred_during_scheduling_ignored_during_execution: list[PreferredSchedulingTerm] = _terms(
        "Nodes the pods prefer."
    )


class PodAffinityTerm(ApiModel):
    """Pods (chosen by labels and namespaces) to be near or away from, within a topology domain."""

    label_selector: LabelSelector | None = Field(None, description="The pods, by label.")
    namespaces: list[DnsLabel] = _terms("Their namespaces; empty = the pod's own.")
    topology_key: QualifiedName = Field(
        description="The node label that defines a domain, e.g. kubernetes.io/hostname."
    )
    namespace_selector: LabelSelector | None = Field(None, description="Their namespaces, by label.")
    match_label_keys: list[QualifiedName] = _terms(
        "Label keys whose values (taken from the incoming pod) are added to labelSelector."
    )
    mismatch_label_keys: list[QualifiedName] = _terms(
        "Label keys whose values must differ from the incoming pod's."
    )

    RULES = (
        Rule(
            cel="has(self.labelSelector) || ((!has(self.matchLabelKeys) || size(self.matchLabelKeys) == 0)"
            " && (!has(self.mismatchLabelKeys) || size(self.mismatchLabelKeys) == 0))",
            message="matchLabelKeys and mismatchLabelKeys need a labelSelector",
            check=lambda s: s.label_selector is not None or not (s.match_label_keys or s.mismatch_label_keys),
            field="labelSelector",
        ),
    )

    def field_errors(self) -> Iterator[tuple[str, str]]:
        selected = set()
        if self.label_selector is not None:
            selected = set(self.label_selector.match_labels) | {
                e.key for e in self.label_selector.match_expressions
            }
        for index, key in enumerate(self.match_label_keys):
            if key in selected:
                yield f"matchLabelKeys[{index}]", f"{key} is in labelSelector already"
            if key in self.mismatch_label_keys:
                yield f"matchLabelKeys[{index}]", f"{key} is in mismatchLabelKeys too"


class WeightedPodAffinityTerm(ApiModel):
    """A pod (anti-)affinity preference with its weight."""

    weight: int = Field(ge=1, le=100, description="Weight of the preference, 1 to 100.")
    pod_affinity_term: PodAffinityTerm = Field(description="The pods to be near (or away from).")


class PodAffinity(ApiModel):
    """Pods to be scheduled near (affinity) or away from (anti-affinity)."""

    required_during_scheduling_ignored_during_execution: list[PodAffinityTerm] = _terms(
        "Terms that must hold."
    )
    preferred_during_scheduling_ignored_during_execution: list[WeightedPodAffinityTerm] = _terms(
        "Terms preferred, by weight."
    )


class Affinity(ApiModel):
    """A Kubernetes affinity: node affinity, pod affinity and pod anti-affinity."""

    node_affinity: NodeAffinity | None = Field(None, description="Node affinity.")
    pod_affinity: PodAffinity | None = Field(None, description="Pods to be near.")
    pod_anti_affinity: PodAffinity | None = Field(None, description="Pods to stay away from.")
