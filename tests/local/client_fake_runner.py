"""The client's local runner (`optikube_operator.cli.local_runner`) with the torch-free stand-in
trainer (local_fake_trainer.py) in place of torchrun: a job of several trials takes seconds.
Everything else (the runner, `optikube run`, LocalBackend, the state file, the outputs) is the real
code. Usage, as LocalJobs runs it: `python client_fake_runner.py DIR [--smoke] [--resume]`."""

from __future__ import annotations

import sys
from functools import partial

from local_jobs import fake_command

from optikube_operator.cli import local_runner
from optikube_operator.cli import run as run_command
from optikube_operator.local.backend import LocalOptions

if __name__ == "__main__":
    # the command builder is the one seam, as in kill_resume_cli.py
    run_command.LocalOptions = partial(LocalOptions, command=fake_command, poll_seconds=0.2)  # type: ignore[misc]
    sys.exit(local_runner.main(sys.argv[1:]))
