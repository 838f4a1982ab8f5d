"""A PNG preview of the dashboard from a Prometheus's real data: every panel's expressions through
`query_range`, one subplot per panel (time series as lines, stat and bar-gauge panels as bars of
their last values), laid out in the dashboard's rows.

    python -m optikube_operator.observability.preview --prometheus http://127.0.0.1:9090 \
        --start 2025-01-01T10:00:00Z --end 2025-01-01T10:20:00Z --out dashboard.png
"""

from __future__ import annotations

import json
import math
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from optikube_operator.observability.panels import Panel, Target, for_prometheus, panels

COLUMNS = 3


@dataclass(frozen=True)
class Series:
    legend: str
    points: tuple[tuple[float, float], ...]  # (unix time, value), finite values only


def query_range(prometheus: str, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
    """Prometheus's `/api/v1/query_range` result (a matrix) for one expression."""
    query = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    with urllib.request.urlopen(f"{prometheus.rstrip('/')}/api/v1/query_range?{query}", timeout=30) as answer:
        body = json.loads(answer.read())
    if body.get("status") != "success":
        raise RuntimeError(f"{expr}: {body.get('error', body)}")
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def legend_of(template: str, labels: dict[str, str]) -> str:
    """Grafana's legend format: {{label}} replaced by the series' label values."""
    text = template
    for name, value in labels.items():
        text = text.replace("{{" + name + "}}", value)
    while "{{" in text and "}}" in text:  # a label the series lacks renders empty, as in Grafana
        head, _, rest = text.partition("{{")
        text = head + rest.partition("}}")[2]
    return " ".join(text.split()) or json.dumps(labels, sort_keys=True)


def series_of(
    prometheus: str, target: Target, start: float, end: float, step: float, rate_interval: str
) -> list[Series]:
    found = []
    for item in query_range(
        prometheus, for_prometheus(target.expr, rate_interval=rate_interval), start, end, step
    ):
        points = tuple((float(t), float(v)) for t, v in item["values"] if math.isfinite(float(v)))
        if points:
            found.append(Series(legend_of(target.legend, item["metric"]), points))
    return found


def _draw(axis: Any, panel: Panel, drawn: list[Series], start: float) -> None:
    axis.set_title(panel.title, fontsize=9, loc="left")
    axis.tick_params(labelsize=7)
    if not drawn:
        axis.text(0.5, 0.5, "no data", ha="center", va="center", transform=axis.transAxes, color="grey")
        return
    if panel.kind == "timeseries":
        for series in drawn:
            minutes = [(t - start) / 60 for t, _ in series.points]
            axis.plot(minutes, [v for _, v in series.points], label=series.legend, linewidth=1.2)
        axis.set_xlabel("minutes", fontsize=7)
        axis.legend(fontsize=6, loc="upper left", frameon=False)
    else:
        labels = [s.legend for s in drawn]
        values = [s.points[-1][1] for s in drawn]
        bars = axis.barh(range(len(values)), values, color="tab:blue")
        axis.set_yticks(range(len(values)), labels, fontsize=6)
        axis.bar_label(bars, labels=[f"{v:.4g}" for v in values], fontsize=6, padding=2)
    if panel.kind == "timeseries":
        axis.set_ylabel(panel.unit, fontsize=7)
    else:
        axis.set_xlabel(panel.unit, fontsize=7)
    axis.grid(alpha=0.3)


def render(
    prometheus: str, start: float, end: float, out: Path, step: float = 5.0, rate_interval: str = "1m"
) -> dict[str, int]:
    """Writes the PNG; returns how many series each panel drew (0 means it showed no data)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = panels()
    rows = math.ceil(len(shown) / COLUMNS)
    figure, axes = plt.subplots(rows, COLUMNS, figsize=(6 * COLUMNS, 3.2 * rows), squeeze=False)
    drawn: dict[str, int] = {}
    for index, panel in enumerate(shown):
        series = [
            s
            for target in panel.targets
            for s in series_of(prometheus, target, start, end, step, rate_interval)
        ]
        drawn[panel.title] = len(series)
        _draw(axes[index // COLUMNS][index % COLUMNS], panel, series, start)
    for index in range(len(shown), rows * COLUMNS):
        axes[index // COLUMNS][index % COLUMNS].axis("off")
    when = datetime.fromtimestamp(start).astimezone().strftime("%Y-%m-%d %H:%M")
    figure.suptitle(f"optikube dashboard, from Prometheus data ({when}, {(end - start) / 60:.0f} min)")
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=80)
    plt.close(figure)
    return drawn


def _timestamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@click.command()
@click.option("--prometheus", required=True, help="Base URL of the Prometheus, e.g. http://127.0.0.1:9090.")
@click.option("--start", "start", required=True, help="ISO time the preview starts at.")
@click.option("--end", "end", required=True, help="ISO time the preview ends at.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--step", type=float, default=5.0, show_default=True, help="Seconds between points.")
def main(prometheus: str, start: str, end: str, out: Path, step: float) -> None:
    """Render the dashboard's panels from a Prometheus into one PNG."""
    drawn = render(prometheus, _timestamp(start), _timestamp(end), out, step)
    empty = [title for title, count in drawn.items() if not count]
    click.echo(f"wrote {out}" + (f"; no data for: {', '.join(empty)}" if empty else ""))


if __name__ == "__main__":
    main()
