"""`optikube operator`: the kopf operator, against the current kubeconfig or in-cluster config.

Every flag also reads an environment variable (shown in --help); docs/operator.md lists them with
their defaults.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import click

from optikube_operator.kube.config import OperatorConfig, TrainerDefaults, split_bind


def _bind(_: click.Context, __: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            split_bind(value)
        except ValueError as error:
            raise click.BadParameter(str(error)) from None
    return value


_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
Command = TypeVar("Command", bound=Callable[..., Any])


def _setting(flag: str, *names: str, **options: Any) -> Callable[[Command], Command]:
    """An option that also reads the environment variable OPTIKUBE_<FLAG> (`--trainer-image`:
    OPTIKUBE_TRAINER_IMAGE) unless ``options`` name another."""
    options.setdefault("envvar", "OPTIKUBE_" + flag.removeprefix("--").replace("-", "_").upper())
    return click.option(flag, *names, **options)


@click.command("operator")
@_setting(
    "--namespace",
    "namespaces",
    multiple=True,
    envvar="OPTIKUBE_NAMESPACES",
    help="Watch this namespace (repeatable; env: comma- or space-separated). Default: all namespaces.",
)
@click.option("--all-namespaces", "-A", is_flag=True, help="Watch every namespace (the default).")
@_setting(
    "--progress-bind",
    default="127.0.0.1:8443",
    show_default=True,
    callback=_bind,
    help="HOST:PORT the progress endpoint listens on.",
)
@_setting(
    "--progress-url",
    help="The progress URL trainer pods are told (e.g. http://optikube.optikube-system.svc:8443/v1/progress);"
    " default: http://<progress-bind>/v1/progress.",
)
@_setting(
    "--metrics-bind",
    default="127.0.0.1:8080",
    show_default=True,
    callback=_bind,
    help="HOST:PORT of /metrics (Prometheus).",
)
@_setting(
    "--liveness",
    help="kopf's liveness probe URL to serve, e.g. http://0.0.0.0:8081/healthz. Default: none.",
)
@_setting("--trainer-image", help="Trainer image of jobs that do not set spec.resources.image.")
@_setting(
    "--trainer-service-account",
    help="ServiceAccount of trainer pods whose job sets none (it needs no RBAC). Default: optikube-trainer.",
)
@_setting(
    "--trainer-defaults",
    type=_FILE,
    help="YAML of trainer pod defaults: nodeSelector, tolerations, gpuNodeSelector, gpuTolerations,"
    " runtimeClassName, imagePullSecrets, runAsUser, runAsGroup, fsGroup, image, serviceAccount.",
)
@_setting(
    "--kubeconfig",
    type=_FILE,
    help="Kubeconfig to use. Default: in-cluster config, else $KUBECONFIG or ~/.kube/config.",
)
@click.option("--verbose", "-v", is_flag=True, help="Log debug messages.")
def operator(
    namespaces: tuple[str, ...],
    all_namespaces: bool,
    progress_bind: str,
    progress_url: str | None,
    metrics_bind: str,
    liveness: str | None,
    trainer_image: str | None,
    trainer_service_account: str | None,
    trainer_defaults: Path | None,
    kubeconfig: Path | None,
    verbose: bool,
) -> None:
    """Run the optikube operator: OptimizationJobs become trials, Jobs and pods, with status, Events
    and metrics."""
    watched = tuple(name for value in namespaces for name in value.replace(",", " ").split())
    if all_namespaces and watched:
        raise click.UsageError("--all-namespaces and --namespace exclude each other")
    defaults = (
        TrainerDefaults.from_file(trainer_defaults) if trainer_defaults is not None else TrainerDefaults()
    )
    if trainer_image:
        defaults = replace(defaults, image=trainer_image)
    if trainer_service_account:
        defaults = replace(defaults, service_account=trainer_service_account)
    config = OperatorConfig(
        namespaces=watched,
        progress_bind=progress_bind,
        progress_url=progress_url,
        metrics_bind=metrics_bind,
        liveness=liveness,
        kubeconfig=kubeconfig,
        trainer=defaults,
    )
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # kopf imports the kubernetes client when it is installed, only to recognize the client's model
    # classes and for logins this operator does not use (it logs in itself): 9 MiB of the process's
    # memory for nothing. A process that imported it already keeps it.
    sys.modules.setdefault("kubernetes", None)  # type: ignore[arg-type]
    from optikube_operator.kube.runtime import run_operator

    asyncio.run(run_operator(config))
