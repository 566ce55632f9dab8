"""``zoneledger node run --config FILE``: one validator, or one observer (``role =
"observer"`` in the file, ``node/observer.py``), with its HTTP API."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("node", help="run a validator or observer node")
    which = parser.add_subparsers(dest="node_command", metavar="ACTION", required=True)
    run = which.add_parser("run", help="run a validator (or an observer: role = \"observer\") from its TOML config")
    run.add_argument("--config", required=True, help="node.toml")
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    run.set_defaults(func=run_node)


def run_node(args: argparse.Namespace) -> int:
    from api.app import run_node as serve
    from node.config import NodeConfig, load_config
    from node.observer import ObserverNode
    from node.runtime import Node

    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    config = load_config(args.config)
    node = Node(config) if isinstance(config, NodeConfig) else ObserverNode(config)
    profile_path = os.environ.get("ZONELEDGER_PROFILE")
    profiler = None
    if profile_path:  # for "profile, say where the time goes": cProfile of the whole process
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    with contextlib.suppress(KeyboardInterrupt):
        serve(node)
    if profiler is not None and profile_path:
        profiler.disable()
        profiler.dump_stats(profile_path)
    # The node has closed its store and write-ahead log; skip interpreter finalization,
    # where FastAPI's caches keep the node's routes alive and a library finalizer prints
    # a spurious "Error in sys.excepthook" into the node log.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
