"""docs/observability.md tells the truth about the code: every metric the operator and the trainer
export is in its tables with its type and labels (and nothing else is), every label value the
operator exports from the start is named, and every dashboard panel and alert is listed."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.metrics import MetricWrapperBase

from optikube_operator.core import TrialState
from optikube_operator.kube.prometheus import PHASES, OperatorMetrics
from optikube_operator.observability import alerts, panels
from optikube_trainer.prometheus import TrainerMetrics

DOC = (Path(__file__).resolve().parents[3] / "docs" / "observability.md").read_text()


def _section(title: str) -> str:
    return DOC.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def _rows(section: str) -> dict[str, list[str]]:
    """metric name -> the other cells of its table row."""
    rows = {}
    for line in _section(section).splitlines():
        match = re.match(r"\| `(optikube_\w+)` \|(.*)\|$", line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in re.split(r"(?<!\\)\|", match.group(2))]
    return rows


def _exported(metrics: object) -> dict[str, tuple[str, tuple[str, ...]]]:
    """name as exposed (counters with _total) -> (type, label names)."""
    found = {}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            kind = value._type
            name = value._name + ("_total" if kind == "counter" else "")
            found[name] = (kind, tuple(value._labelnames))
    return found


def test_every_operator_metric_is_documented_with_its_type_and_labels() -> None:
    rows = _rows("Operator metrics")
    exported = _exported(OperatorMetrics())
    assert set(rows) == set(exported)
    for name, (kind, labels) in exported.items():
        doc_kind, doc_labels = rows[name][0], rows[name][1]
        assert doc_kind == kind, name
        assert re.findall(r"`(\w+)`", doc_labels) == list(labels), name


def test_every_trainer_metric_is_documented_with_its_type() -> None:
    rows = _rows("Trainer metrics")
    exported = _exported(TrainerMetrics())
    assert set(rows) == set(exported)
    for name, (kind, labels) in exported.items():
        assert rows[name][0] == kind and labels == (), name


def test_label_values_exported_from_the_start_are_named() -> None:
    rows = _rows("Operator metrics")
    metrics = OperatorMetrics()
    families = {family.name: family for family in metrics.registry.collect()}
    outcomes = {
        s.labels["outcome"] for s in families["optikube_progress_requests"].samples if "outcome" in s.labels
    }
    assert outcomes and all(
        f"`{outcome}`" in rows["optikube_progress_requests_total"][2] for outcome in outcomes
    )
    kinds = {s.labels["kind"] for s in families["optikube_reconcile_errors"].samples if "kind" in s.labels}
    assert kinds and all(f'`kind="{kind}"`' in rows["optikube_reconcile_errors_total"][2] for kind in kinds)
    assert all(phase in rows["optikube_jobs"][2] for phase in PHASES)
    assert all(state.value in rows["optikube_trials"][2] for state in TrialState)


def test_every_panel_and_alert_is_listed() -> None:
    dashboard = _section("The dashboard")
    for panel in panels.panels():
        assert f"| {panel.title} |" in dashboard, panel.title
    listed = re.findall(r"^\| `(Optikube\w+)` \|", _section("Alerts"), re.MULTILINE)
    assert listed == [alert.name for alert in alerts.ALERTS]
    for alert in alerts.ALERTS:
        row = next(line for line in _section("Alerts").splitlines() if line.startswith(f"| `{alert.name}`"))
        assert f"| {alert.severity} |" in row, alert.name
