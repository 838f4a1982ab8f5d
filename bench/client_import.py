"""How long `import optikube` takes in a fresh interpreter, and what it pulls in.

The client is what a notebook imports first: it must start fast and without torch, Optuna, kopf or
the kubernetes client (the cluster backend imports the last one when it is used). Each sample is a
new process that times its own import (interpreter start-up excluded) and lists which heavy
packages ended up in `sys.modules`.

    .venv/bin/python bench/client_import.py [--runs 7]

prints a table and writes bench/results/client-import.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from console_tables import named_rows

RESULTS = Path(__file__).with_name("results") / "client-import.json"
HEAVY = ("torch", "optuna", "kopf", "kubernetes", "aiohttp", "sklearn", "numpy")
PROBE = """
import json, sys, time
started = time.perf_counter()
{statement}
seconds = time.perf_counter() - started
print(json.dumps({{"seconds": seconds, "loaded": [m for m in {heavy!r} if m in sys.modules]}}))
"""
STATEMENTS = {
    "import optikube": "import optikube",
    "Client.local()": "from optikube import Client; Client.local(output_dir='runs')",
    "the command (cli.main)": "import optikube_operator.cli.main",
}


def sample(statement: str) -> dict[str, Any]:
    probe = PROBE.format(statement=statement, heavy=HEAVY)
    output = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def measure(runs: int) -> dict[str, Any]:
    measured: dict[str, Any] = {}
    for name, statement in STATEMENTS.items():
        samples = [sample(statement) for _ in range(runs)]
        seconds = sorted(s["seconds"] for s in samples)
        measured[name] = {
            "medianSeconds": round(statistics.median(seconds), 4),
            "maxSeconds": round(seconds[-1], 4),
            "minSeconds": round(seconds[0], 4),
            "heavyModulesLoaded": sorted({m for s in samples for m in s["loaded"]}),
        }
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    measured = measure(args.runs)
    table = named_rows(
        f"import time, {args.runs} fresh processes each",
        ["what", "median (s)", "min (s)", "max (s)", "heavy modules loaded"],
    )
    for name, row in measured.items():
        loaded = ", ".join(row["heavyModulesLoaded"]) or "none"
        table.add_row(
            name,
            f"{row['medianSeconds']:.3f}",
            f"{row['minSeconds']:.3f}",
            f"{row['maxSeconds']:.3f}",
            loaded,
        )
    Console().print(table)
    RESULTS.parent.mkdir(exist_ok=True)
    document = {"runs": args.runs, "python": platform.python_version(), "measured": measured}
    RESULTS.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
