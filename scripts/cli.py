"""The ``zoneledger`` command line: argument parsing and the one-line error discipline.

Each subcommand lives in its own module exposing ``register(subparsers)``, which adds a
parser whose ``func`` default takes the parsed arguments and returns an exit code.
Every :class:`~ledger.errors.LedgerError` becomes one line on stderr, ``code: message``,
and a non-zero exit; nothing prints a stack trace at a user.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ledger.errors import LedgerError
from scripts.usage import CliError

__all__ = ["CliError", "build_parser", "main"]

# Modules that contribute subcommands; each has register(subparsers).
COMMAND_MODULES = (
    "scripts.keys_cmd",
    "scripts.bench",
    "scripts.sim_cmd",
    "scripts.client_cmd",
    "scripts.officer_cmd",
    "scripts.join_cmd",
    "scripts.gov_cmd",
    "scripts.node_cmd",
    "scripts.devnet",
    "scripts.proof_cmd",
    "scripts.audit_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zoneledger",
        description="A permissioned ledger of trade documents for an alliance of free trade zones.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # a command not built yet
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        code: int = func(args)
    except LedgerError as exc:
        print(f"zoneledger: {exc.one_line()}", file=sys.stderr)
        return 1
    except CliError as exc:
        print(f"zoneledger: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("zoneledger: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
