"""The process behind a local job: `python -m optikube_operator.cli.local_runner DIR [--smoke]
[--resume]` runs `optikube run DIR/job.yaml --output DIR` and writes how it ended to DIR/exit.json,
so that any later client (another notebook, the CLI) can tell a finished, suspended or crashed run
apart. The client starts it in a session of its own: the job outlives the Python process that
submitted it, as a job on a cluster does."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import click

from optikube_operator.client.local_status import EXIT_FILE, EXIT_INTERRUPTED, SPEC_FILE


def main(argv: Sequence[str]) -> int:
    from optikube_operator.cli import run as run_command

    directory = Path(argv[0])
    flags = [flag for flag in argv[1:] if flag in ("--smoke", "--resume")]
    code: int
    try:
        run_command.run.main(
            [str(directory / SPEC_FILE), "--output", str(directory), *flags],
            prog_name="optikube run",
            standalone_mode=False,
        )
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except (KeyboardInterrupt, click.Abort):  # suspended before the run had its own signal handlers
        code = EXIT_INTERRUPTED
    except click.ClickException as error:
        error.show()
        code = error.exit_code
    ended = {"code": code, "time": datetime.now(UTC).isoformat()}
    (directory / EXIT_FILE).write_text(json.dumps(ended))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
