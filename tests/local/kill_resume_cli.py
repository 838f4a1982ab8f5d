"""`optikube run` exactly as its console script runs it, with the torch-free stand-in trainer
(local_fake_trainer.py) in place of torchrun, so that a run of several trials takes seconds and can
be killed many times. Everything else (the CLI, LocalBackend, the progress endpoint, the state file,
the outputs) is the real code: usage `python kill_resume_cli.py FILE --output DIR [--resume]`."""

from __future__ import annotations

import sys
from functools import partial

from local_jobs import fake_command

from optikube_operator.cli import run as run_command
from optikube_operator.local.backend import LocalOptions

if __name__ == "__main__":
    # the command builder is the one seam: the CLI builds LocalOptions with its default (torchrun)
    run_command.LocalOptions = partial(LocalOptions, command=fake_command)  # type: ignore[misc]
    run_command.run.main(sys.argv[1:], prog_name="optikube run")
