"""The preflight on this machine: one `python -m optikube_trainer preflight` process, awaited.

`optikube run` runs it before the first trial (through the core's StartPreflight) and
`optikube validate --data` on demand; both read its outcome the same way, from the
`preflight.json` it writes (`<spec field>: <problem>`), else from its log's tail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optikube_operator.api.runconfig import PREFLIGHT_OUTCOME_FILE
from optikube_operator.core.recording import preflight_message
from optikube_operator.local.processes import launch, log_tail, terminate
from optikube_operator.local.state import read_json_object, write_json_atomic
from optikube_operator.runconfig import JobIdentity, render_run_config

PREFLIGHT_DIR = "preflight"
LOG_FILE = "preflight.log"
CommandBuilder = Callable[[str, Path, int], list[str]]


@dataclass(frozen=True)
class PreflightOutcome:
    exit_code: int
    message: str  # `<spec field>: <problem>` when refused; empty when it passed
    findings: Mapping[str, Any]  # what it found (samples, classes, parameters...) when it passed

    @property
    def passed(self) -> bool:
        return self.exit_code == 0


def refusal_of(outcome: Mapping[str, Any] | None) -> str | None:
    """The `<spec field>: <problem>` a refusing preflight wrote to its outcome file."""
    if not outcome or outcome.get("ok") is not False:
        return None
    field, message = str(outcome.get("field") or ""), str(outcome.get("message") or "")
    return f"{field}: {message}" if field else message


async def run_preflight(
    job: JobIdentity,
    spec: Mapping[str, Any],
    out: Path,
    command: CommandBuilder,
    env: Mapping[str, str],
    stop: asyncio.Event | None = None,
) -> PreflightOutcome | None:
    """Run the preflight of ``spec`` in ``out/preflight``; None when ``stop`` was set first."""
    run_dir = out / PREFLIGHT_DIR
    run_dir.mkdir(parents=True, exist_ok=True)
    # an earlier attempt's outcome says nothing of this one
    (run_dir / PREFLIGHT_OUTCOME_FILE).unlink(missing_ok=True)
    config_path = run_dir / "run.json"
    config = render_run_config(job=job, spec=dict(spec), stage="preflight", output_dir=str(run_dir))
    write_json_atomic(config_path, config)
    process = await launch(command("preflight", config_path, 1), env, run_dir / LOG_FILE)
    waiting = asyncio.ensure_future(process.wait())
    stopping = asyncio.ensure_future(stop.wait()) if stop is not None else None
    await asyncio.wait([task for task in (waiting, stopping) if task], return_when=asyncio.FIRST_COMPLETED)
    if stopping is not None:
        stopping.cancel()
    if not waiting.done():
        await terminate(process, grace_seconds=5.0)
        return None
    code = waiting.result()
    outcome = read_json_object(run_dir / PREFLIGHT_OUTCOME_FILE)
    findings = outcome.get("findings") if outcome and outcome.get("ok") else None
    message = preflight_message(code, refusal_of(outcome), log_tail(run_dir / LOG_FILE, lines=20))
    return PreflightOutcome(code, message, dict(findings or {}))
