"""A hypothesis generator of invalid OptimizationJobs, derived from the CRD's own schema.

Each manifest is a valid example (examples/*.yaml) with one mistake, and knows the field path the
mistake is at. Schema-driven classes walk the generated openAPIV3Schema of `spec` at the paths an
example holds (and the optional scalar fields it leaves out): wrong types, bounds, enums, patterns,
missing required fields, unknown fields at every depth, huge strings and lists. The other classes
are the rules no schema node shows: cross-field rules, search-space semantics, metadata, and what
the apiserver would refuse only in the Jobs and Pods derived from a spec.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from api_corpus_cases import EXAMPLES
from hypothesis import strategies as st

from optikube_operator.api.crdgen import job_crd

Json = dict[str, Any]


@dataclass(frozen=True)
class Hostile:
    """One invalid manifest: its class, the field broken (as `optikube validate` prints paths) and
    the YAML text a user would write (a few mistakes exist only as text: duplicate keys)."""

    kind: str
    field: str
    manifest: Json
    text: str | None = None


def _bases() -> list[Json]:
    jobs = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        jobs += [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == "OptimizationJob"]
    return jobs


BASES = _bases()
SPEC_SCHEMA: Json = job_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
# Nothing is checked inside these (free-form by design): model params, categorical choices.
_FREE = "x-kubernetes-preserve-unknown-fields"


def show(path: tuple[str | int, ...], maps: frozenset[int]) -> str:
    """A key path as validate prints it: map keys (`maps` holds their positions) in brackets."""
    text = ""
    for position, key in enumerate(path):
        if isinstance(key, int):
            text += f"[{key}]"
        elif position in maps:
            text += f'["{key}"]'
        else:
            text += f".{key}" if text else key
    return text


@dataclass(frozen=True)
class Site:
    """A node of the spec schema at a concrete place in a base manifest."""

    path: tuple[str | int, ...]  # from the manifest root
    maps: frozenset[int]
    schema: Json
    present: bool
    required: bool

    @property
    def field(self) -> str:
        return show(self.path, self.maps)


def _sites(schema: Json, value: Any, path: tuple[str | int, ...], maps: frozenset[int]) -> Iterator[Site]:
    if schema.get(_FREE):
        return
    if schema.get("type") == "object" and isinstance(value, dict):
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        for name, child in properties.items():
            if name in value:
                yield Site((*path, name), maps, child, True, name in required)
                yield from _sites(child, value[name], (*path, name), maps)
            elif child.get("type") in ("string", "integer", "number", "boolean") and not child.get(_FREE):
                yield Site((*path, name), maps, child, False, False)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and not properties and not extra.get(_FREE):
            for key, item in value.items():
                here = (*path, key)
                yield Site(here, maps | {len(path)}, extra, True, False)
                yield from _sites(extra, item, here, maps | {len(path)})
    elif schema.get("type") == "array" and isinstance(value, list):
        for index, item in enumerate(value):
            yield from _sites(schema["items"], item, (*path, index), maps)


SITES: list[tuple[int, Site]] = [
    (index, site)
    for index, base in enumerate(BASES)
    for site in _sites(SPEC_SCHEMA, base["spec"], ("spec",), frozenset())
]


def _set(manifest: Json, path: tuple[str | int, ...], value: Any) -> None:
    node: Any = manifest
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _delete(manifest: Json, path: tuple[str | int, ...]) -> None:
    node: Any = manifest
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]


def _get(manifest: Json, path: tuple[str | int, ...]) -> Any:
    node: Any = manifest
    for key in path:
        node = node[key]
    return node


_WRONG = {
    "string": [12345, True, ["a"], {"a": 1}],
    "integer": ["7", 1.5, True, [1]],
    "number": ["0.5", True, {"v": 1}],
    "boolean": ["yes", 1, "true"],
    "object": ["an object", 7, ["a"]],
    "array": ["a list", 3, {"a": 1}],
}
_BAD_STRINGS = ["INVALID value!", "", " ", "-x-", "a/b/../c", "☃", "x" * 70, "UPPER_case.", "1h2x"]


def _schema_mistakes(site: Site, base: Json, draw: st.DrawFn) -> list[tuple[str, Any]]:
    """(class, value to put at the site) for what this schema node forbids; None deletes it."""
    schema, options = site.schema, []
    kind = schema.get("type")
    if kind in _WRONG:
        wrong = [v for v in _WRONG[kind] if not (kind == "number" and isinstance(v, bool))]
        options.append(("wrong-type", draw(st.sampled_from(wrong))))
    if schema.get("x-kubernetes-int-or-string"):
        options.append(("wrong-type", draw(st.sampled_from([1.5, True, ["1"], {"cpu": 1}]))))
    if "enum" in schema:
        options.append(("enum", draw(st.sampled_from(["notAnOption", "NONE", f"{schema['enum'][0]}x"]))))
    if "minimum" in schema:
        low = schema["minimum"]
        below = low if schema.get("exclusiveMinimum") else low - draw(st.sampled_from([1, 1000, 2**40]))
        options.append(("bounds", int(below) if kind == "integer" else below - 0.5 * (below == low)))
    if "maximum" in schema:
        high = schema["maximum"]
        above = high if schema.get("exclusiveMaximum") else high + draw(st.sampled_from([1, 1000, 2**40]))
        options.append(("bounds", int(above) if kind == "integer" else above + 0.5 * (above == high)))
    if "maxLength" in schema:
        size = schema["maxLength"] + draw(st.sampled_from([1, 1000, 100_000]))
        options.append(("huge-string", "a" * size))
    if "pattern" in schema:
        bad = [s for s in _BAD_STRINGS if not re.search(schema["pattern"], s)]
        if bad:
            options.append(("pattern", draw(st.sampled_from(bad))))
    if "maxItems" in schema and site.present:
        current = _get(base, site.path)
        if isinstance(current, list) and current:
            count = schema["maxItems"] + draw(st.sampled_from([1, 50, 5000]))
            options.append(("huge-list", [copy.deepcopy(current[0]) for _ in range(count)]))
    if "minItems" in schema and site.present and schema["minItems"] > 0:
        options.append(("bounds", []))
    if "maxProperties" in schema and site.present:
        current = _get(base, site.path)
        if isinstance(current, dict) and current:
            first = next(iter(current.values()))
            count = schema["maxProperties"] + draw(st.sampled_from([1, 1000]))
            options.append(("huge-map", {f"k{i}": copy.deepcopy(first) for i in range(count)}))
    if site.required and site.present:
        options.append(("missing-required", None))
    if kind == "object" and site.present and "properties" in schema:
        options.append(("unknown-field", "unknown"))
    return options


@st.composite
def schema_mistakes(draw: st.DrawFn) -> Hostile:
    index, site = draw(st.sampled_from(SITES))
    base = copy.deepcopy(BASES[index])
    options = _schema_mistakes(site, base, draw)
    if not options:
        # nothing to break here but its type
        options = [("wrong-type", ["not", "this"])]
    kind, value = draw(st.sampled_from(options))
    if kind == "missing-required":
        _delete(base, site.path)
        return Hostile(kind, site.field, base)
    if kind == "unknown-field":
        name = draw(st.sampled_from(["unknownField", "learningrate", "Epochs", "x" * 200]))
        node = _get(base, site.path)
        node[name] = draw(st.sampled_from([1, "x", {"a": 1}]))
        return Hostile(kind, show((*site.path, name), site.maps), base)
    _set(base, site.path, value)
    return Hostile(kind, site.field, base)


def _quickstart() -> Json:
    return copy.deepcopy(next(b for b in BASES if b["metadata"]["name"] == "quickstart"))


Mutation = Callable[[Json, Any], str]


def _resources(job: Json) -> Json:
    resources: Json = job["spec"].setdefault("resources", {})
    return resources


def _space(job: Json) -> Json:
    space: Json = job["spec"]["tuning"]["searchSpace"]
    return space


def _multi(job: Json) -> None:
    job["spec"]["objectives"].append({"metric": "latencyMs", "direction": "minimize"})


def _m_pruner_multi(job: Json, _: Any) -> str:
    _multi(job)
    return "spec.tuning.pruner.type"


def _m_cmaes_multi(job: Json, _: Any) -> str:
    _multi(job)
    job["spec"]["tuning"]["pruner"] = {"type": "none"}
    job["spec"]["tuning"]["sampler"] = {"type": "cmaes"}
    return "spec.tuning.sampler.type"


def _m_goal_multi(job: Json, _: Any) -> str:
    _multi(job)
    job["spec"]["tuning"]["pruner"] = {"type": "none"}
    job["spec"]["tuning"]["goal"] = 0.9
    return "spec.tuning.goal"


def _m_low_high(job: Json, value: Any) -> str:
    _space(job)["training.learningRate"].update(low=0.5, high=0.5 - abs(value) % 0.4)
    return 'spec.tuning.searchSpace["training.learningRate"].low'


def _m_log_low(job: Json, value: Any) -> str:
    _space(job)["training.learningRate"].update(low=-(abs(value) % 1), high=1.0, log=True)
    return 'spec.tuning.searchSpace["training.learningRate"].low'


def _m_key_unknown(job: Json, value: Any) -> str:
    key = str(value)
    _space(job)[key] = {"type": "float", "low": 0.1, "high": 0.2}
    return f'spec.tuning.searchSpace["{key}"]'


def _m_key_absent_block(job: Json, _: Any) -> str:
    del job["spec"]["compression"]
    _space(job)["compression.pruning.sparsity"] = {"type": "float", "low": 0.2, "high": 0.8}
    return 'spec.tuning.searchSpace["compression.pruning.sparsity"]'


def _m_choice_invalid(job: Json, value: Any) -> str:
    _space(job)["training.epochs"] = {"type": "categorical", "choices": [3, -abs(int(value)) - 1]}
    return 'spec.tuning.searchSpace["training.epochs"].choices[1]'


def _m_float_for_int(job: Json, _: Any) -> str:
    _space(job)["training.epochs"] = {"type": "float", "low": 1.0, "high": 4.0}
    return 'spec.tuning.searchSpace["training.epochs"].type'


def _m_name(job: Json, value: Any) -> str:
    job["metadata"]["name"] = value
    return "metadata.name"


def _m_generate_name(job: Json, value: Any) -> str:
    del job["metadata"]["name"]
    job["metadata"]["generateName"] = value
    return "metadata.generateName"


def _m_label(job: Json, value: Any) -> str:
    key, label = value
    job["metadata"]["labels"] = {key: label}
    return f'metadata.labels["{key}"]'


def _m_annotation(job: Json, value: Any) -> str:
    job["metadata"]["annotations"] = {value: "x"}
    return f'metadata.annotations["{value}"]'


def _m_resource_name(job: Json, value: Any) -> str:
    _resources(job)["requests"] = {"cpu": "1", value: "1"}
    return f'spec.resources.requests["{value}"]'


def _m_request_above_limit(job: Json, value: Any) -> str:
    _resources(job).update(requests={"cpu": "2"}, limits={"cpu": value})
    return 'spec.resources.requests["cpu"]'


def _m_quantity(job: Json, value: Any) -> str:
    _resources(job)["requests"] = {"memory": value}
    return 'spec.resources.requests["memory"]'


def _m_node_selector(job: Json, value: Any) -> str:
    key, label = value
    _resources(job)["nodeSelector"] = {key: label}
    return f'spec.resources.nodeSelector["{key}"]'


def _m_toleration(job: Json, value: Any) -> str:
    toleration, field = value
    _resources(job)["tolerations"] = [toleration]
    return f"spec.resources.tolerations[0].{field}"


def _m_affinity(job: Json, value: Any) -> str:
    affinity, field = value
    _resources(job)["affinity"] = affinity
    return f"spec.resources.affinity.{field}"


def _m_image(job: Json, value: Any) -> str:
    _resources(job)["image"] = value
    return "spec.resources.image"


_BAD_NAMES = ["QuickStart", "quick.start", "1job", "job_1", "-job", "job-", "a" * 41, "é", "a" * 300]
_BAD_QUALIFIED = ["bad key", "a/b/c", "-x", "x" * 64, "Example.com/x", "x" * 250 + ".com/y", "a/"]
_BAD_LABEL_VALUES = ["two words", "a/b", "-x", "x" * 64, "x."]
_TERM = "nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0]"


def _node_term(requirement: Json) -> Json:
    terms = {"nodeSelectorTerms": [{"matchExpressions": [requirement]}]}
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": terms}}


AFFINITIES: list[tuple[Json, str]] = [
    (_node_term({"key": "zone", "operator": "In"}), f"{_TERM}.values"),
    (_node_term({"key": "zone", "operator": "Exists", "values": ["a"]}), f"{_TERM}.values"),
    (_node_term({"key": "cores", "operator": "Lt", "values": ["1", "2"]}), f"{_TERM}.values"),
    (_node_term({"key": "cores", "operator": "Gt", "values": ["ten"]}), f"{_TERM}.values"),
    (_node_term({"key": "zone", "operator": "Near", "values": ["a"]}), f"{_TERM}.operator"),
    (_node_term({"key": "bad key", "operator": "Exists"}), f"{_TERM}.key"),
    (_node_term({"key": "zone", "operator": "In", "values": ["a b"]}), f"{_TERM}.values[0]"),
    ({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}}, "nodeAffinity"),
    ({"nodeAfinity": {}}, "nodeAfinity"),
    (
        {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 101}]}},
        "podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0]",
    ),
    (
        {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "a b"}]}},
        "podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey",
    ),
    (
        {
            "podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"topologyKey": "kubernetes.io/hostname", "mismatchLabelKeys": ["app"]}
                ]
            }
        },
        "podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector",
    ),
]
TOLERATIONS: list[tuple[Json, str]] = [
    ({"operator": "Equal", "value": "x"}, "operator"),
    ({"key": "gpu", "operator": "Exists", "value": "x"}, "value"),
    ({"key": "gpu", "effect": "NoSchedule", "tolerationSeconds": 5}, "tolerationSeconds"),
    ({"key": "bad key", "operator": "Exists"}, "key"),
    ({"key": "gpu", "value": "a b"}, "value"),
    ({"key": "gpu", "effect": "Sometimes"}, "effect"),
    ({"key": "gpu", "tolerationSeconds": -1, "effect": "NoExecute"}, "tolerationSeconds"),
]

RULE_MUTATIONS: dict[str, tuple[Mutation, st.SearchStrategy[Any]]] = {
    "cross-field": (_m_pruner_multi, st.none()),
    "cross-field-cmaes": (_m_cmaes_multi, st.none()),
    "cross-field-goal": (_m_goal_multi, st.none()),
    "search-space-low-high": (_m_low_high, st.sampled_from([0.0, 0.1, 0.39])),
    "search-space-log": (_m_log_low, st.sampled_from([0.0, 0.5])),
    "search-space-key": (
        _m_key_unknown,
        st.sampled_from(["training.learningrate", "model.widht", "tuning.maxTrials", "notdotted", "a..b"]),
    ),
    "search-space-absent-block": (_m_key_absent_block, st.none()),
    "search-space-choice": (_m_choice_invalid, st.sampled_from([0, 7, 10**6])),
    "search-space-type": (_m_float_for_int, st.none()),
    "metadata-name": (_m_name, st.sampled_from(_BAD_NAMES)),
    "metadata-generate-name": (_m_generate_name, st.sampled_from(["Job-", "1job-", "a" * 36, "job_"])),
    "metadata-label": (
        _m_label,
        st.one_of(
            st.tuples(st.sampled_from(_BAD_QUALIFIED), st.just("ok")),
            st.tuples(st.just("team"), st.sampled_from(_BAD_LABEL_VALUES)),
        ),
    ),
    "metadata-annotation": (_m_annotation, st.sampled_from(_BAD_QUALIFIED[:4])),
    "derived-resource-name": (
        _m_resource_name,
        st.sampled_from(["cpus", "gpu", "kubernetes.io/x", "requests.example.com/x", "hugepages-3x", "a b"]),
    ),
    "derived-request-limit": (_m_request_above_limit, st.sampled_from(["1", "1999m", "0.5"])),
    "derived-quantity": (_m_quantity, st.sampled_from(["-1Gi", "1e1.5", "lots", "1Gib", "1e99999999999"])),
    "derived-node-selector": (
        _m_node_selector,
        st.one_of(
            st.tuples(st.sampled_from(_BAD_QUALIFIED), st.just("ok")),
            st.tuples(st.just("zone"), st.sampled_from(_BAD_LABEL_VALUES)),
        ),
    ),
    "derived-toleration": (_m_toleration, st.sampled_from(TOLERATIONS)),
    "derived-affinity": (_m_affinity, st.sampled_from(AFFINITIES)),
    "derived-image": (
        _m_image,
        st.sampled_from(["Trainer:1", "trainer:", " trainer", "a" * 600, "trainer@sha256:xyz", "tr ainer"]),
    ),
}


@st.composite
def rule_mistakes(draw: st.DrawFn) -> Hostile:
    kind = draw(st.sampled_from(sorted(RULE_MUTATIONS)))
    mutate, values = RULE_MUTATIONS[kind]
    job = _quickstart()
    field = mutate(job, draw(values))
    return Hostile(kind.split("-cmaes")[0].split("-goal")[0], field, job)


@st.composite
def duplicate_keys(draw: st.DrawFn) -> Hostile:
    """A key written twice: the parsed manifest is valid (the last one wins), the text is not."""
    job = _quickstart()
    lines = yaml.safe_dump(job, sort_keys=False).splitlines(keepends=True)
    key = draw(st.sampled_from(list(_space(job))))
    first = lines.index(f"      {key}:\n")
    last = first + 1
    while lines[last].startswith("        "):  # the parameter's own lines are indented deeper
        last += 1
    twice = "".join(lines[:last] + lines[first:last] + lines[last:])
    return Hostile("duplicate-key", f'spec.tuning.searchSpace["{key}"]', job, twice)


def hostile_manifests() -> st.SearchStrategy[Hostile]:
    return st.one_of(schema_mistakes(), schema_mistakes(), rule_mistakes(), rule_mistakes(), duplicate_keys())


def names_field(path: str, expected: str) -> bool:
    return path == expected or path.startswith((expected + ".", expected + "["))


def key(hostile: Hostile) -> str:
    return hostile.text or json.dumps(hostile.manifest, sort_keys=True)
