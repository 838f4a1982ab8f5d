"""What the chart ships for monitoring, generated from code: the Grafana dashboard
(`dashboard`, from the panels in `panels`), the Prometheus alerts (`alerts`), and a PNG preview of
the dashboard from a Prometheus's data (`preview`). `python -m optikube_operator.observability`
writes the chart's files (`--check`: verifies them)."""
