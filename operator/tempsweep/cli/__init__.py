"""The ``tempsweep`` command: thin argument parsing over the engine (and, lazily, the operator).

Exit codes: 0 the run succeeded, 1 it ran and failed, 2 bad input (nothing was deleted).
Heavy modules (kopf, kubernetes, Azure, SQLAlchemy) are imported only by the commands that need
them, so ``tempsweep --help`` stays instant.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from tempsweep import __version__

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
LOG_FORMATS = ("text", "json")


def _port(text: str) -> int:
    """A TCP port number, 0..65535 (argparse names the option and exits 2 on anything else)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not between 0 and 65535")
    return port


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tempsweep",
        description="Keep temporary storage from overflowing: scan and clean volumes by CleanupPolicy.",
    )
    parser.add_argument("--version", action="version", version=f"tempsweep {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens on stderr")
    parser.add_argument("--log-format", choices=LOG_FORMATS, default="text",
                        help="log lines as text or as one JSON object per line (default: %(default)s)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    scan = commands.add_parser("scan", help="print a policy's storage statistics as JSON")
    scan.add_argument("--policy", required=True, metavar="POLICY.yaml", help="a CleanupPolicy manifest")
    scan.add_argument("--path", metavar="DIR", help="override spec.storage.volume.path")
    scan.add_argument("--metrics-file", metavar="PATH", help="also write the figures in the Prometheus text "
                      "format, for node-exporter's textfile collector (written atomically)")

    run = commands.add_parser("run", help="execute a CleanupRun and print its status as JSON")
    run.add_argument("-f", "--filename", required=True, metavar="RUN.yaml", help="a CleanupRun manifest")
    run.add_argument("--policy", required=True, metavar="POLICY.yaml", help="the CleanupPolicy it refers to")
    run.add_argument("--path", metavar="DIR", help="override spec.storage.volume.path")
    run.add_argument("--dry-run", action="store_true", help="report what would be deleted, delete nothing")

    crds = commands.add_parser("crds", help="write the CustomResourceDefinitions generated from the models")
    crds.add_argument("--output", default="crds", metavar="DIR", help="directory to write (default: crds)")
    crds.add_argument("--check", action="store_true", help="exit 1 if the files differ instead of writing")

    operator = commands.add_parser("operator", help="run the Kubernetes operator")
    operator.add_argument("--namespace", "-n", action="append", default=[], help="watch this namespace "
                          "(repeatable); default: all namespaces")
    operator.add_argument("--liveness", default="http://0.0.0.0:8080/healthz",
                          help="liveness endpoint (default: %(default)s)")
    operator.add_argument("--metrics-port", type=_port, default=8081, metavar="PORT",
                          help="serve Prometheus metrics on http://0.0.0.0:PORT/metrics, a port of their own "
                          "(not the liveness endpoint's); 0 turns metrics off (default: %(default)s)")
    operator.add_argument("--peering", default=None, help="peering object name (default: standalone)")
    operator.add_argument("--priority", type=int, default=None,
                          help="with --peering: the operator with the highest priority works, the others "
                          "pause; equal priorities pause all (default: 0)")
    operator.add_argument("--shards", type=int, default=None, metavar="N",
                          help="split the policies into N shards, one Lease each; every replica works the "
                          "shards it holds (default: no sharding, this replica works every policy)")
    operator.add_argument("--shard-lease-seconds", type=int, default=None, metavar="S",
                          help="with --shards: how long a shard Lease lives without renewal (default: 15)")
    agent = commands.add_parser("agent", help="run the node agent (one per node: cleans node-scoped policies there)")
    agent.add_argument("--node-name", default=os.environ.get("NODE_NAME"), metavar="NAME",
                       help="this node's name (default: $NODE_NAME, set from the downward API)")
    agent.add_argument("--namespace", "-n", action="append", default=[], help="watch this namespace "
                       "(repeatable); default: all namespaces")
    agent.add_argument("--liveness", default="http://0.0.0.0:8080/healthz",
                       help="liveness endpoint (default: %(default)s)")
    agent.add_argument("--host-root", default="/", metavar="DIR",
                       help="where the node's filesystem is mounted in the agent (default: %(default)s: policy "
                       "paths are used as they are)")
    # also after the command (the image's entrypoint is `tempsweep operator`)
    for command in (scan, run, operator, agent):
        command.add_argument("--log-format", choices=LOG_FORMATS, default=argparse.SUPPRESS, help="as above")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from tempsweep.cli import commands

    handler = {
        "scan": commands.scan,
        "run": commands.run,
        "crds": commands.crds,
        "operator": commands.operator,
        "agent": _agent,
    }[args.command]
    code: int = handler(args)
    return code


def _agent(args: argparse.Namespace) -> int:
    if not args.node_name:
        print("tempsweep: error: --node-name (or NODE_NAME) is required: the agent cleans one node", file=sys.stderr)
        return EXIT_BAD_INPUT
    from tempsweep.models.node_scope import check_node_name

    try:
        check_node_name(args.node_name)
    except ValueError as exc:
        print(f"tempsweep: error: --node-name: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not args.host_root.startswith("/"):
        print(f"tempsweep: error: --host-root: {args.host_root!r} is relative: it must be absolute", file=sys.stderr)
        return EXIT_BAD_INPUT
    from tempsweep.agent.main import run_agent

    return run_agent(
        node=args.node_name,
        namespaces=args.namespace,
        liveness=args.liveness,
        host_root=args.host_root,
        log_format=args.log_format,
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
