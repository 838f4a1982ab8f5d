"""The Grafana dashboard (charts/optikube/dashboards/optikube.json), built with Grafana's
foundation SDK from the panels in `panels`: a fixed uid (links and provisioning survive
regeneration), a Prometheus datasource variable and namespace/job variables."""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import bargauge, common, dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as models

from optikube_operator.observability.panels import ROWS, Panel

UID = "optikube-overview"
TITLE = "optikube"
DATASOURCE = models.DataSourceRef(type_val="prometheus", uid="${datasource}")


def _label_filter(name: str, label: str, query: str) -> Any:
    """A variable that picks any number of a label's values (all by default) from ``query``."""
    return (
        dashboard.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(models.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )


def _variables() -> list[Any]:
    return [
        dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus"),
        _label_filter("namespace", "Namespace", "label_values(optikube_trials, namespace)"),
        _label_filter("job", "Job", 'label_values(optikube_trials{namespace=~"$namespace"}, job)'),
    ]


def _panel(panel: Panel, panel_id: int) -> Any:
    builder: Any
    if panel.kind == "timeseries":
        builder = timeseries.Panel().fill_opacity(10 if panel.stacked else 0)
        if panel.stacked:
            builder = builder.stacking(common.StackingConfig().mode(common_models.StackingMode.NORMAL))
    elif panel.kind == "stat":
        builder = stat.Panel()
    elif panel.kind == "bargauge":
        builder = bargauge.Panel()
    else:
        raise ValueError(f"unknown panel kind {panel.kind!r}")
    builder = (
        builder.id(panel_id)
        .title(panel.title)
        .datasource(DATASOURCE)
        .unit(panel.unit)
        .span(panel.width)
        .height(panel.height)
    )
    if panel.description:
        builder = builder.description(panel.description)
    for index, target in enumerate(panel.targets):
        query = prometheus.Dataquery().expr(target.expr).ref_id(chr(ord("A") + index))
        if panel.kind != "timeseries":
            query = query.instant()  # a value per series, not a history
        if target.legend:
            query = query.legend_format(target.legend)
        builder = builder.with_target(query)
    return builder


def build() -> dict[str, Any]:
    board = (
        dashboard.Dashboard(TITLE)
        .uid(UID)
        .description("OptimizationJobs, their trials and pipelines, the trainers and the operator.")
        .tags(["optikube", "kubernetes", "ml"])
        .refresh("30s")
        .time("now-3h", "now")
        .timezone("browser")
        .tooltip(models.DashboardCursorSync.CROSSHAIR)
        .variables(_variables())
    )
    ids = iter(range(1, 1000))
    for row in ROWS:
        board = board.with_row(dashboard.Row(row.title).id(next(ids)))
        for panel in row.panels:
            board = board.with_panel(_panel(panel, next(ids)))
    encoded: dict[str, Any] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    return encoded


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"
