"""`optikube operator`: the kopf operator, against the current kubeconfig or in-cluster config.

Every flag also reads an environment variable (shown in --help); docs/operator.md lists them with
their defaults.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from dataclasses import replace
from pathlib import Path

import click

from optikube_operator.kube.config import OperatorConfig, TrainerDefaults, split_bind


def _bind(_: click.Context, __: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            split_bind(value)
        except ValueError as error:
            raise click.BadParameter(str(error)) from None
    return value


@click.command("operator")
@click.option(
    "--namespace",
    "namespaces",
    multiple=True,
    envvar="OPTIKUBE_NAMESPACES",
    help="Watch this namespace (repeatable; env: comma- or space-separated). Default: all namespaces.",
)
@click.option("--all-namespaces", "-A", is_flag=True, help="Watch every namespace (the default).")
@click.option(
    "--progress-bind",
    default="127.0.0.1:8443",
    show_default=True,
    envvar="OPTIKUBE_PROGRESS_BIND",
    callback=_bind,
    help="HOST:PORT the progress endpoint listens on.",
)
@click.option(
    "--progress-url",
    envvar="OPTIKUBE_PROGRESS_URL",
    help="The progress URL trainer pods are told (e.g. http://optikube.optikube-system.svc:8443/v1/progress);"
    " default: http://<progress-bind>/v1/progress.",
)
@click.option(
    "--metrics-bind",
    default="127.0.0.1:8080",
    show_default=True,
    envvar="OPTIKUBE_METRICS_BIND",
    callback=_bind,
    help="HOST:PORT of /metrics (Prometheus).",
)
@click.option(
    "--liveness",
    envvar="OPTIKUBE_LIVENESS",
    help="kopf's liveness probe URL to serve, e.g. http://0.0.0.0:8081/healthz. Default: none.",
)
@click.option(
    "--trainer-image",
    envvar="OPTIKUBE_TRAINER_IMAGE",
    help="Trainer image of jobs that do not set spec.resources.image.",
)
@click.option(
    "--trainer-service-account",
    envvar="OPTIKUBE_TRAINER_SERVICE_ACCOUNT",
    help="ServiceAccount of trainer pods whose job sets none (it needs no RBAC). Default: optikube-trainer.",
)
@click.option(
    "--trainer-defaults",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="OPTIKUBE_TRAINER_DEFAULTS",
    help="YAML of trainer pod defaults: nodeSelector, tolerations, gpuNodeSelector, gpuTolerations,"
    " runtimeClassName, imagePullSecrets, runAsUser, runAsGroup, fsGroup, image, serviceAccount.",
)
@click.option(
    "--kubeconfig",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="OPTIKUBE_KUBECONFIG",
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
