"""`python -m optikube_operator.observability [--check]`: the chart's dashboard and alert rules."""

from __future__ import annotations

from pathlib import Path

import click

from optikube_operator.api.generated_files import check_option, write_or_check
from optikube_operator.observability import alerts, dashboard

CHART = Path(__file__).resolve().parents[4] / "charts" / "optikube"
DASHBOARD_FILE = CHART / "dashboards" / "optikube.json"
ALERTS_FILE = CHART / "alerts" / "optikube.rules.yaml"


def generated_files() -> dict[Path, str]:
    return {DASHBOARD_FILE: dashboard.render(), ALERTS_FILE: alerts.render()}


@click.command()
@check_option("a committed file")
def main(check: bool) -> None:
    """Write (or check) the chart's Grafana dashboard and Prometheus alert rules."""
    write_or_check(generated_files(), check=check, command="python -m optikube_operator.observability")


if __name__ == "__main__":
    main()
