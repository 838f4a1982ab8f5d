"""`python -m optikube_testcluster.processnode ...`: runs the process-node agent until
SIGTERM or SIGINT, then stops its pods' processes and exits (see docs/development.md)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from optikube_testcluster.processnode.agent import Agent, AgentOptions
from optikube_testcluster.processnode.rest import Credentials
from optikube_testcluster.processnode.spec import ProcessNodeSpec


def parse_args(argv: list[str]) -> AgentOptions:
    parser = argparse.ArgumentParser(prog="python -m optikube_testcluster.processnode")
    parser.add_argument("--server", required=True, help="https://127.0.0.1:<port> of the apiserver")
    parser.add_argument("--ca-file", required=True, type=Path)
    parser.add_argument("--cert-file", required=True, type=Path)
    parser.add_argument("--key-file", required=True, type=Path)
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument(
        "--node", action="append", required=True, help="a ProcessNodeSpec as JSON; repeatable"
    )
    parser.add_argument(
        "--path-prefix",
        default=str(Path(sys.prefix) / "bin"),
        help="directories put first on every container's PATH (default: this venv's bin)",
    )
    parser.add_argument(
        "--restart-backoff", type=float, default=10.0, help="first crash-loop back-off, seconds"
    )
    args = parser.parse_args(argv)
    return AgentOptions(
        credentials=Credentials(args.server, args.ca_file, args.cert_file, args.key_file),
        state_dir=args.state_dir,
        nodes=[ProcessNodeSpec.from_json(text) for text in args.node],
        path_prefix=args.path_prefix,
        restart_backoff=args.restart_backoff,
    )


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if os.geteuid() != 0:
        print("the process-node agent needs root: it creates namespaces and mounts", file=sys.stderr)
        return 2
    options = parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    Agent(options).run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
