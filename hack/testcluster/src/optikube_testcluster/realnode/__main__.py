"""`python -m optikube_testcluster.realnode agent ...`: the real nodes' agent (agent.py), until
SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from optikube_testcluster.processnode.rest import Credentials
from optikube_testcluster.realnode.agent import AgentNode, RealNodeAgent


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m optikube_testcluster.realnode")
    parser.add_argument("command", choices=["agent"])
    parser.add_argument("--server", required=True, help="https://127.0.0.1:<port> of the apiserver")
    parser.add_argument("--ca-file", required=True, type=Path)
    parser.add_argument("--cert-file", required=True, type=Path)
    parser.add_argument("--key-file", required=True, type=Path)
    parser.add_argument("--egress-socket", required=True, type=Path)
    parser.add_argument("--node", action="append", required=True, help="name,holder pid,pod CIDR; repeatable")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if os.geteuid() != 0:
        print("the real nodes' agent needs root: it enters the nodes' network namespaces", file=sys.stderr)
        return 2
    credentials = Credentials(args.server, args.ca_file, args.cert_file, args.key_file)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    RealNodeAgent(credentials, [AgentNode.from_arg(n) for n in args.node], args.egress_socket).run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
