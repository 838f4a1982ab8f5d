"""The chart's dashboard and alert rules are what the generator makes today, and have the shape
Grafana and Prometheus need (a fixed uid, the variables, a datasource on every panel)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from optikube_operator.observability import alerts, dashboard, panels
from optikube_operator.observability.__main__ import generated_files

REPO = Path(__file__).resolve().parents[3]


def test_committed_dashboard_and_rules_equal_generated() -> None:
    for path, text in generated_files().items():
        assert path.exists(), (
            f"{path.relative_to(REPO)} missing: run python -m optikube_operator.observability"
        )
        assert path.read_text() == text, (
            f"{path.relative_to(REPO)} is stale: run python -m optikube_operator.observability"
        )


def test_dashboard_has_a_fixed_uid_a_datasource_variable_and_namespace_and_job_variables() -> None:
    board = json.loads((REPO / "charts/optikube/dashboards/optikube.json").read_text())
    assert board["uid"] == dashboard.UID == "optikube-overview"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert (
        variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    )
    for name in ("namespace", "job"):
        assert variables[name]["type"] == "query" and variables[name]["includeAll"]
        assert variables[name]["datasource"]["uid"] == "${datasource}"
    shown = [p for p in board["panels"] if p["type"] != "row"]
    assert [p["title"] for p in shown] == [p.title for p in panels.panels()]
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])  # Grafana keys panels by id
    for panel in shown:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]


def test_per_job_panels_follow_the_namespace_and_job_variables() -> None:
    for panel in panels.panels():
        for target in panel.targets:
            per_job = re.search(r"optikube_(trials|running_trials|job_|model_|trainer_)", target.expr)
            if per_job:
                assert panels.SELECTED in target.expr, (panel.title, target.expr)


def test_for_prometheus_replaces_every_grafana_variable() -> None:
    for panel in panels.panels():
        for target in panel.targets:
            assert "$" not in panels.for_prometheus(target.expr), target.expr


def test_alert_rules_cover_failed_jobs_failing_trials_and_a_down_operator() -> None:
    groups = yaml.safe_load(alerts.render())["groups"]
    names = {rule["alert"] for group in groups for rule in group["rules"]}
    assert {"OptikubeJobFailed", "OptikubeTrialsFailing", "OptikubeOperatorDown"} <= names
    for group in groups:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in ("warning", "critical")
            assert rule["annotations"]["summary"] and rule["annotations"]["description"]
