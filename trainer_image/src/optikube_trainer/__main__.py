"""Entry point: ``torchrun ... -m optikube_trainer <trial|pipeline> --config run.json``, and
``python -m optikube_trainer preflight --config run.json`` (one process, before any trial)."""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence

from optikube_operator.api.runconfig import RunConfig, RunConfigError, load_run_config
from optikube_trainer.dist import RunContext, broadcast_flag, init_distributed, shutdown
from optikube_trainer.progress import ProgressSender
from optikube_trainer.prometheus import metrics_from_env

log = logging.getLogger("optikube_trainer")


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m optikube_trainer", description=__doc__)
    parser.add_argument("stage", choices=["preflight", "trial", "pipeline"])
    parser.add_argument("--config", required=True, help="path of the run config JSON")
    parser.add_argument("--cpu", action="store_true", help="ignore GPUs even when present")
    return parser.parse_args(argv)


def run_stage(config: RunConfig, ctx: RunContext) -> None:
    if config.stage == "trial":
        from optikube_trainer.training.trial import run_trial

        run_trial(config, ctx)
    else:
        from optikube_trainer.pipeline import run_pipeline  # the compression/quantization pipeline

        run_pipeline(config, ctx)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    args = _parse_args(argv)
    try:
        config = load_run_config(args.config)
    except RunConfigError as error:
        print(error, file=sys.stderr)
        return 2
    if config.stage != args.stage:
        print(f"stage {args.stage!r} does not match the run config's stage {config.stage!r}", file=sys.stderr)
        return 2
    if config.stage == "preflight":
        return _preflight(config)
    ctx = init_distributed(
        seed=config.spec.seed, output_dir=config.output_dir, use_gpu=False if args.cpu else None
    )
    ctx.trial = config.trial_number
    log.info("%s stage: rank %d of %d on %s", config.stage, ctx.rank, ctx.world_size, ctx.device)
    ctx.progress = ProgressSender.from_env(
        rank=ctx.rank,
        trial=ctx.trial,
        output_dir=ctx.output_dir,
        broadcast=lambda flag: broadcast_flag(flag, ctx.device),
    )
    ctx.metrics = metrics_from_env(ctx.rank)
    completed = False
    try:
        run_stage(config, ctx)
        completed = True
    except Exception as error:
        log.error("stage %s failed on rank %d:\n%s", config.stage, ctx.rank, traceback.format_exc())
        ctx.progress.failed(f"{type(error).__name__}: {error}")
        return 1
    finally:
        if ctx.metrics is not None:
            ctx.metrics.stop()
        shutdown(completed=completed)
    return 0


def _preflight(config: RunConfig) -> int:
    from optikube_trainer.preflight import EXIT_CRASHED, preflight_stage

    try:
        return preflight_stage(config)
    except Exception:
        log.error("preflight failed:\n%s", traceback.format_exc())
        return EXIT_CRASHED


if __name__ == "__main__":
    sys.exit(main())
