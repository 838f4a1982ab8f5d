"""The images, the chart and the operator name the same things: one version (pyproject.toml, the
package, the chart's appVersion), one operator image and one trainer image (the chart's defaults,
the operator's default --trainer-image, `make images`' tags and the Dockerfiles' build lines), and
the operator image's ports and user are the chart's."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import yaml

from optikube_operator import __version__
from optikube_operator.kube.config import DEFAULT_TRAINER_IMAGE, DEFAULT_TRAINER_SERVICE_ACCOUNT

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "optikube"


def _chart() -> tuple[dict[str, Any], dict[str, Any]]:
    return (
        yaml.safe_load((CHART / "Chart.yaml").read_text()),
        yaml.safe_load((CHART / "values.yaml").read_text()),
    )


def _image(values: dict[str, Any], app_version: str) -> str:
    """What the chart's optikube.image / optikube.trainerImage helpers render (tag or appVersion)."""
    return f"{values['repository']}:{values['tag'] or app_version}"


def _make_images() -> tuple[str, str]:
    """OPERATOR_IMAGE and TRAINER_IMAGE as make computes them (no target of the Makefile runs)."""
    printed = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-s",
            "-C",
            str(ROOT),
            "--eval",
            "print-images: ; @echo $(OPERATOR_IMAGE) $(TRAINER_IMAGE)",
            "print-images",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        # the Makefile's defaults, not an override a developer may have in the environment
        env={k: v for k, v in os.environ.items() if k not in ("OPERATOR_IMAGE", "TRAINER_IMAGE")},
    ).stdout.split()
    operator, trainer = printed
    return operator, trainer


def _build_tag(dockerfile: str) -> str:
    (tag,) = re.findall(r"docker build -f \S+ -t (\S+) \.", (ROOT / dockerfile).read_text())
    return tag


def test_one_version_everywhere() -> None:
    chart, _ = _chart()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert project == __version__ == chart["appVersion"] == chart["version"]


def test_the_operator_image_is_the_same_in_the_chart_make_and_its_dockerfile() -> None:
    chart, values = _chart()
    image = _image(values["image"], chart["appVersion"])
    assert image == f"ghcr.io/optikube/operator:{__version__}"
    assert _make_images()[0] == image
    assert _build_tag("operator/Dockerfile") == image


def test_the_trainer_image_is_the_same_in_the_chart_the_operator_make_and_its_dockerfile() -> None:
    chart, values = _chart()
    image = _image(values["trainer"]["image"], chart["appVersion"])
    assert image == DEFAULT_TRAINER_IMAGE
    assert _make_images()[1] == image
    assert _build_tag("trainer_image/Dockerfile") == image
    assert values["trainerServiceAccount"]["name"] == DEFAULT_TRAINER_SERVICE_ACCOUNT


def test_the_operator_image_exposes_the_chart_ports_and_runs_as_the_chart_user() -> None:
    _, values = _chart()
    dockerfile = (ROOT / "operator" / "Dockerfile").read_text()
    (exposed,) = re.findall(r"^EXPOSE (.+)$", dockerfile, re.MULTILINE)
    ports = values["ports"]
    assert exposed.split() == [str(ports[name]) for name in ("progress", "metrics", "health")]
    (cmd,) = re.findall(r"^CMD (.+)$", dockerfile, re.MULTILINE)
    for flag, port in (("progress-bind", "progress"), ("metrics-bind", "metrics")):
        assert f"--{flag}=0.0.0.0:{ports[port]}" in cmd
    assert f"--liveness=http://0.0.0.0:{ports['health']}/healthz" in cmd
    operator = values["operator"]
    assert f"USER {operator['runAsUser']}:{operator['runAsGroup']}" in dockerfile
    # the trainer image's user is the uid the chart runs trainer pods as
    trainer_dockerfile = (ROOT / "trainer_image" / "Dockerfile").read_text()
    assert f"USER {values['trainer']['runAsUser']}" in trainer_dockerfile
    assert f"useradd --uid {values['trainer']['runAsUser']}" in trainer_dockerfile


def test_the_operator_image_installs_no_extras() -> None:
    """The operator image never gets torch: `pip install .` without an extra, checked in the build."""
    dockerfile = (ROOT / "operator" / "Dockerfile").read_text()
    installs = re.findall(r"pip install (\S+)", dockerfile)
    assert installs == ["."], installs
    assert '! /opt/venv/bin/python -c "import torch"' in dockerfile
