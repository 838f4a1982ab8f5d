"""The chart's alert rules fire when they should, and only then: `promtool test rules` (Debian's
promtool, `make prometheus`) evaluates the shipped charts/optikube/alerts/optikube.rules.yaml over
series as the chart's monitors label them, minute by minute. (`promtool check rules` on the same
file is in test_chart_render.)"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml
from chart_tools import CHART

from optikube_operator.observability import alerts

RULES = CHART / "alerts" / "optikube.rules.yaml"
NAMESPACE, JOB = "team-a", "resnet-sweep"


def _annotations(name: str, value: str, **labels: str) -> dict[str, str]:
    """The alert's annotations as Prometheus expands them for this value and these labels."""
    (alert,) = (a for a in alerts.ALERTS if a.name == name)

    def expand(text: str) -> str:
        text = text.replace("{{ $value }}", value)
        for label, label_value in labels.items():
            text = text.replace("{{ $labels." + label + " }}", label_value)
        assert "{{" not in text, text
        return text

    return {"summary": expand(alert.summary), "description": expand(alert.description)}


def _alert(name: str, value: str, **labels: str) -> dict[str, Any]:
    (alert,) = (a for a in alerts.ALERTS if a.name == name)
    return {
        "exp_labels": {"severity": alert.severity, **labels},
        "exp_annotations": _annotations(name, value, **labels),
    }


def _promtool_test(tmp_path: Path, tests: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    spec = tmp_path / "tests.yaml"
    spec.write_text(yaml.safe_dump({"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": tests}))
    return subprocess.run(
        ["promtool", "test", "rules", str(spec)], capture_output=True, text=True, timeout=60, check=False
    )


def _passes(tmp_path: Path, tests: list[dict[str, Any]]) -> None:
    result = _promtool_test(tmp_path, tests)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def _case(series: dict[str, str], *checks: dict[str, Any]) -> dict[str, Any]:
    """A promtool test: ``series`` (selector -> values, one a minute), then ``checks`` at their times."""
    return {
        "interval": "1m",
        "input_series": [{"series": name, "values": values} for name, values in series.items()],
        "alert_rule_test": list(checks),
    }


def _silent(name: str, at: str) -> dict[str, Any]:
    return {"eval_time": at, "alertname": name, "exp_alerts": []}


def _firing(name: str, at: str, value: str, **labels: str) -> dict[str, Any]:
    return {"eval_time": at, "alertname": name, "exp_alerts": [_alert(name, value, **labels)]}


# the operator's own series: honor_labels keeps the per-job ones' namespace and job, the others
# carry the scrape target's (job="optikube", the ServiceMonitor's jobLabel)
OPERATOR = 'namespace="optikube-system", job="optikube", pod="optikube-0", instance="10.0.0.5:8080"'
TRIALS = f'namespace="{NAMESPACE}", job="{JOB}"'


def test_a_failed_job_alerts_for_15_minutes(tmp_path: Path) -> None:
    failed = f'optikube_jobs{{phase="Failed", {OPERATOR}}}'
    # one Failed job from before, a second fails at minute 10
    case = _case(
        {failed: "1x9 2x30"},
        _silent("OptikubeJobFailed", "9m"),
        _firing("OptikubeJobFailed", "10m", "1"),
        _firing("OptikubeJobFailed", "23m", "1"),
        # 15 minutes on, both failures are old news
        _silent("OptikubeJobFailed", "26m"),
    )
    _passes(tmp_path, [case])


def test_three_failed_or_timed_out_trials_of_one_job_in_30_minutes_alert(tmp_path: Path) -> None:
    failed = f'optikube_trials{{state="Failed", {TRIALS}}}'
    timed_out = f'optikube_trials{{state="TimedOut", {TRIALS}}}'
    other_job = f'optikube_trials{{state="Failed", namespace="{NAMESPACE}", job="other"}}'
    case = _case(
        {
            # two failures at minutes 5 and 8, a timeout at minute 12
            failed: "0x4 1x2 2x60",
            timed_out: "0x11 1x60",
            # another job with two failures: below the threshold, never alerts
            other_job: "0x4 1 2x60",
        },
        _silent("OptikubeTrialsFailing", "11m"),
        _firing("OptikubeTrialsFailing", "12m", "3", namespace=NAMESPACE, job=JOB),
        # 30 minutes after the first failure only two remain in the window
        _silent("OptikubeTrialsFailing", "36m"),
    )
    _passes(tmp_path, [case])


def test_an_operator_that_stops_answering_scrapes_alerts_after_5_minutes(tmp_path: Path) -> None:
    stops = _case(
        # up for 10 minutes, then its scrapes fail
        {f"up{{{OPERATOR}}}": "1x9 0x20"},
        _silent("OptikubeOperatorDown", "9m"),
        # pending: down, but for less than 5 minutes
        _silent("OptikubeOperatorDown", "14m"),
        _firing("OptikubeOperatorDown", "15m", "1"),
    )
    absent = _case(
        # no operator target at all (never deployed, or its Service selects nothing)
        {'up{job="something-else"}': "1x20"},
        _silent("OptikubeOperatorDown", "4m"),
        _firing("OptikubeOperatorDown", "5m", "1"),
    )
    _passes(tmp_path, [stops, absent])


def test_reconcile_errors_and_refused_reports_alert_when_they_last(tmp_path: Path) -> None:
    errors = f'optikube_reconcile_errors_total{{kind="background", {OPERATOR}}}'
    refused = f'optikube_progress_requests_total{{outcome="forbidden", {OPERATOR}}}'
    accepted = f'optikube_progress_requests_total{{outcome="accepted", {OPERATOR}}}'
    case = _case(
        {
            # an error a second from minute 11 on: pending, firing 15 minutes later
            errors: "0x10 60+60x40",
            # 0.1 refused reports a second from minute 11 on (above 0.05/s over 10 minutes
            # from minute 16), firing 10 minutes later; accepted ones never alert
            refused: "0x10 6+6x40",
            accepted: "0+600x50",
        },
        _silent("OptikubeReconcileErrors", "25m"),
        _firing("OptikubeReconcileErrors", "27m", "1"),
        _silent("OptikubeProgressRefused", "25m"),
        _firing("OptikubeProgressRefused", "30m", "0.1"),
    )
    _passes(tmp_path, [case])


def test_a_rule_that_never_fires_is_caught(tmp_path: Path) -> None:
    """promtool itself fails when an expected alert does not come (these tests can fail)."""
    never = _case({f"up{{{OPERATOR}}}": "1x20"}, _firing("OptikubeOperatorDown", "15m", "1"))
    result = _promtool_test(tmp_path, [never])
    assert result.returncode != 0 and "FAILED" in result.stdout + result.stderr
