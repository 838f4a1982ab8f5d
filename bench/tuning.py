"""Tuning benchmark: how much training compute TPE and GP with Hyperband pruning need, and how
long a suggestion takes as the study grows.

Task (fixed): scikit-learn's digits, a torch MLP trained epoch by epoch in this process (real
training, no surrogate); the search space is learning rate, width, weight decay, dropout and
batch size; a trial trains at most MAX_EPOCHS epochs and its value is the validation accuracy of
its last epoch. For each seed:

1. random search runs 30 full trials (30 x MAX_EPOCHS epochs): its best accuracy is the target;
2. TPE and GP, each with Hyperband pruning driven by optikube's own core (the study rebuilt from
   recorded trials, `should_prune` after every epoch, exactly as the progress endpoint answers),
   run until a finished trial reaches the target or BUDGET_TRIALS trials were used;
3. the ratio = epochs trained until the target was reached / random's epochs.

Then the time of one suggestion (optikube's `suggest`: study rebuild + sampler) with 10, 100 and
500 recorded trials, per sampler.

    .venv/bin/python bench/tuning.py            # 5 seeds (about 10-20 minutes on 2 CPU cores)
    .venv/bin/python bench/tuning.py --seeds 2  # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from sklearn.datasets import load_digits
from torch import nn

from optikube_operator.api.validation import parse_spec
from optikube_operator.core import JobSettings, ObservedTrial, TrialState
from optikube_operator.core.study import should_prune_trial, suggest

MAX_EPOCHS = 9
RANDOM_TRIALS = 30
BUDGET_TRIALS = 60
SEARCH_SPACE: dict[str, Any] = {
    "training.learningRate": {"type": "float", "low": 1e-4, "high": 0.3, "log": True},
    "model.params.width": {"type": "int", "low": 8, "high": 256, "log": True},
    "training.regularization.l2": {"type": "float", "low": 1e-6, "high": 0.1, "log": True},
    "training.regularization.dropout": {"type": "float", "low": 0.0, "high": 0.6},
    "training.batchSize": {"type": "categorical", "choices": [16, 32, 64, 128, 256]},
}
RESULTS = Path(__file__).resolve().parent / "results"


def job_spec(sampler: str, pruner: str, seed: int) -> dict[str, Any]:
    return {
        "seed": seed,
        "data": {"source": {"builtin": "digits"}},
        "model": {"builtin": {"name": "mlp"}},
        "objectives": [{"metric": "accuracy", "direction": "maximize"}],
        "training": {"epochs": MAX_EPOCHS},
        "tuning": {
            "sampler": {"type": sampler, "startupTrials": 8},
            "pruner": {"type": pruner, "minResource": 1, "reductionFactor": 3, "maxResource": MAX_EPOCHS},
            "maxTrials": 1000,
            "searchSpace": SEARCH_SPACE,
        },
    }


@dataclass
class Digits:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor


def load_data() -> Digits:
    digits = load_digits()
    x = digits.data.astype(np.float32)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    cut = int(0.7 * len(x))
    mean, std = x[:cut].mean(0), x[:cut].std(0) + 1e-6
    x = (x - mean) / std
    return Digits(
        torch.from_numpy(x[:cut]),
        torch.from_numpy(y[:cut]),
        torch.from_numpy(x[cut:]),
        torch.from_numpy(y[cut:]),
    )


class Trainer:
    """One trial's model, trained one epoch per call."""

    def __init__(self, data: Digits, params: dict[str, Any], seed: int) -> None:
        torch.manual_seed(seed)
        width = int(params["model.params.width"])
        self.data = data
        self.batch = int(params["training.batchSize"])
        self.generator = torch.Generator().manual_seed(seed)
        self.model = nn.Sequential(
            nn.Linear(64, width),
            nn.ReLU(),
            nn.Dropout(float(params["training.regularization.dropout"])),
            nn.Linear(width, width),
            nn.ReLU(),
            nn.Linear(width, 10),
        )
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(),
            lr=float(params["training.learningRate"]),
            weight_decay=float(params["training.regularization.l2"]),
        )

    def epoch(self) -> float:
        self.model.train()
        order = torch.randperm(len(self.data.x_train), generator=self.generator)
        for start in range(0, len(order), self.batch):
            index = order[start : start + self.batch]
            loss = nn.functional.cross_entropy(self.model(self.data.x_train[index]), self.data.y_train[index])
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        self.model.eval()
        with torch.no_grad():
            predictions = self.model(self.data.x_val).argmax(1)
        return float((predictions == self.data.y_val).float().mean())


@dataclass
class SearchRun:
    epochs: int  # epochs trained until the target was reached (or in total)
    trials: int
    best: float
    reached: bool
    pruned: int
    epochs_to_best: int = 0  # epochs trained when the best value was first seen


def search(
    data: Digits, sampler: str, pruner: str, seed: int, max_trials: int, target: float | None
) -> SearchRun:
    settings = JobSettings.from_spec(parse_spec(job_spec(sampler, pruner, seed)), f"bench-{sampler}-{seed}")
    trials: list[ObservedTrial] = []
    epochs, best, pruned, epochs_to_best = 0, 0.0, 0, 0
    for number in range(max_trials):
        suggestion = suggest(settings, trials, number)
        trainer = Trainer(data, suggestion.params, seed * 1000 + number)
        curve: dict[int, float] = {}
        state = TrialState.SUCCEEDED
        for step in range(MAX_EPOCHS):
            curve[step] = trainer.epoch()
            epochs += 1
            running = ObservedTrial(
                number,
                suggestion.params,
                TrialState.RUNNING,
                dict(curve),
                sampler_attrs=suggestion.sampler_attrs,
            )
            if step < MAX_EPOCHS - 1 and should_prune_trial(settings, [*trials, running], number):
                state = TrialState.PRUNED
                pruned += 1
                break
        final = curve[max(curve)]
        values = {"accuracy": final} if state is TrialState.SUCCEEDED else {}
        trials.append(
            ObservedTrial(
                number, suggestion.params, state, dict(curve), values, sampler_attrs=suggestion.sampler_attrs
            )
        )
        if state is TrialState.SUCCEEDED and final > best:
            best, epochs_to_best = final, epochs
        if target is not None and best >= target:
            return SearchRun(epochs, number + 1, best, True, pruned, epochs_to_best)
    return SearchRun(epochs, max_trials, best, target is None, pruned, epochs_to_best)


def compute_ratios(seeds: list[int], data: Digits, console: Console) -> dict[str, Any]:
    per_seed: list[dict[str, Any]] = []
    for seed in seeds:
        started = time.perf_counter()
        baseline = search(data, "random", "none", seed, RANDOM_TRIALS, None)
        row: dict[str, Any] = {
            "seed": seed,
            "randomBest": baseline.best,
            "randomEpochs": baseline.epochs,
            "randomEpochsToBest": baseline.epochs_to_best,
        }
        for sampler in ("tpe", "gp"):
            run = search(data, sampler, "hyperband", seed, BUDGET_TRIALS, baseline.best)
            row[sampler] = {
                "epochs": run.epochs,
                "trials": run.trials,
                "reached": run.reached,
                "best": run.best,
                "pruned": run.pruned,
                "ratio": run.epochs / baseline.epochs if run.reached else None,
            }
        row["seconds"] = round(time.perf_counter() - started, 1)
        console.log(f"seed {seed}: {json.dumps(row)}")
        per_seed.append(row)
    summary = {}
    for sampler in ("tpe", "gp"):
        ratios = [r[sampler]["ratio"] for r in per_seed if r[sampler]["ratio"] is not None]
        summary[sampler] = {
            "reached": f"{len(ratios)}/{len(per_seed)}",
            "medianRatio": statistics.median(ratios) if ratios else None,
            "meanRatio": statistics.fmean(ratios) if ratios else None,
        }
    return {"perSeed": per_seed, "summary": summary}


def suggestion_times(sizes: list[int], samplers: list[str], repeats: int) -> dict[str, dict[str, float]]:
    """Seconds per `suggest` (rebuild + sample) with `size` recorded, finished trials."""
    timings: dict[str, dict[str, float]] = {}
    for sampler in samplers:
        settings = JobSettings.from_spec(parse_spec(job_spec(sampler, "none", 0)), "bench-timing")
        rng = random.Random(0)
        trials: list[ObservedTrial] = []
        for number in range(max(sizes)):
            suggestion = suggest(settings, trials, number) if sampler == "cmaes" else None
            params = (
                suggestion.params
                if suggestion
                else {
                    "training.learningRate": 10 ** rng.uniform(-4, -0.6),
                    "model.params.width": rng.randint(8, 256),
                    "training.regularization.l2": 10 ** rng.uniform(-6, -1),
                    "training.regularization.dropout": rng.uniform(0, 0.6),
                    "training.batchSize": rng.choice([16, 32, 64, 128, 256]),
                }
            )
            accuracy = 0.9 - 0.05 * abs(np.log10(params["training.learningRate"]) + 2) + rng.gauss(0, 0.01)
            trials.append(
                ObservedTrial(
                    number,
                    params,
                    TrialState.SUCCEEDED,
                    values={"accuracy": accuracy},
                    sampler_attrs=suggestion.sampler_attrs if suggestion else {},
                )
            )
        timings[sampler] = {}
        for size in sizes:
            samples = []
            for _ in range(repeats):
                started = time.perf_counter()
                suggest(settings, trials[:size], size)
                samples.append(time.perf_counter() - started)
            timings[sampler][str(size)] = statistics.median(samples)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-ratio", action="store_true", help="only time suggestions")
    args = parser.parse_args()
    torch.set_num_threads(1)
    console = Console()
    data = load_data()
    started = time.perf_counter()
    ratios = None if args.skip_ratio else compute_ratios(list(range(args.seeds)), data, console)
    timings = suggestion_times([10, 100, 500], ["random", "tpe", "gp", "cmaes", "nsga2"], args.repeats)
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "torchThreads": torch.get_num_threads(),
            "loadAverageAtEnd": os.getloadavg(),
            "platform": platform.platform(),
            "torch": torch.__version__,
        },
        "task": {
            "data": "digits (70/30 split)",
            "maxEpochs": MAX_EPOCHS,
            "randomTrials": RANDOM_TRIALS,
            "budgetTrials": BUDGET_TRIALS,
            "searchSpace": SEARCH_SPACE,
            "pruner": "hyperband (1, 9, rf 3)",
        },
        "compute": ratios,
        "suggestionSeconds": timings,
        "seconds": round(time.perf_counter() - started, 1),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tuning.json").write_text(json.dumps(report, indent=2))
    if ratios is not None:
        table = Table(title="Epochs to reach random search's best of 30 trials (ratio to random's epochs)")
        for column in (
            "seed",
            "random best",
            "random epochs",
            "TPE+HB epochs",
            "TPE ratio",
            "GP+HB epochs",
            "GP ratio",
        ):
            table.add_column(column, justify="right")
        for row in ratios["perSeed"]:
            cells = [
                str(row["seed"]),
                f"{row['randomBest']:.4f}",
                f"{row['randomEpochs']} ({row['randomEpochsToBest']})",
            ]
            for sampler in ("tpe", "gp"):
                result = row[sampler]
                cells += [
                    str(result["epochs"]) + ("" if result["reached"] else " (not reached)"),
                    "-" if result["ratio"] is None else f"{result['ratio']:.2f}",
                ]
            table.add_row(*cells)
        console.print(table)
        console.print(ratios["summary"])
    timing_table = Table(title="Seconds per suggestion (study rebuilt from recorded trials + sampler)")
    timing_table.add_column("sampler")
    for size in ("10", "100", "500"):
        timing_table.add_column(f"{size} trials", justify="right")
    for sampler, row in timings.items():
        timing_table.add_row(sampler, *[f"{row[size]:.3f}" for size in ("10", "100", "500")])
    console.print(timing_table)
    console.print(f"written to {RESULTS / 'tuning.json'}")


if __name__ == "__main__":
    main()
