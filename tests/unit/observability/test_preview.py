"""The PNG preview names series as Grafana's legend format does."""

from __future__ import annotations

from optikube_operator.observability.preview import legend_of


def test_a_legend_takes_the_series_labels() -> None:
    labels = {"job": "quickstart", "model": "optimized", "namespace": "team-a"}
    assert legend_of("{{job}} {{model}}", labels) == "quickstart optimized"


def test_a_label_the_series_lacks_renders_empty_as_in_grafana() -> None:
    # the pipeline's trainer series have no trial label
    assert legend_of("{{job}} {{run}} {{trial}}", {"job": "quickstart", "run": "pipeline"}) == (
        "quickstart pipeline"
    )


def test_no_legend_shows_the_labels() -> None:
    assert legend_of("", {"phase": "Failed"}) == '{"phase": "Failed"}'
