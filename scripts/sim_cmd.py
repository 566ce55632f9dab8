"""``zoneledger sim``: run the deterministic consensus simulator (node/sim.py).

Runs K fault schedules derived from a master seed and ends with one summary line,
``schedules: K, decided heights: D, safety violations: 0, liveness failures: 0``;
exits 1 on any violation, printing each failing schedule's seed, its faults and a
minimal trace. ``--replay SEED`` reruns exactly one schedule.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from node.consensus import MUTATIONS
from node.sim import RunSummary, ScheduleResult, run_many, run_schedule
from node.sim_faults import BEHAVIORS, SimParams


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("sim", help="run the deterministic consensus simulator")
    parser.add_argument("--validators", type=int, default=4, metavar="N")
    parser.add_argument("--schedules", type=int, default=100, metavar="K")
    parser.add_argument("--seed", type=int, default=1, metavar="S")
    parser.add_argument("--byzantine", type=int, default=None, metavar="B", help="default: a random share of f")
    parser.add_argument("--crash", type=int, default=None, metavar="C", help="crash-restart validators (with WAL)")
    parser.add_argument("--heights", type=int, default=3, metavar="H")
    parser.add_argument(
        "--behaviors", default=",".join(BEHAVIORS), help=f"Byzantine behaviours to draw from ({','.join(BEHAVIORS)})"
    )
    parser.add_argument("--long-outage", action="store_true", help="crashed validators go down together for 15-25 s")
    parser.add_argument("--mutate", default="", help=argparse.SUPPRESS)  # planted bugs, for tests
    parser.add_argument("--replay", type=int, default=None, metavar="SEED", help="rerun one schedule by its seed")
    parser.add_argument("--stop-on-failure", action="store_true")
    parser.set_defaults(func=run)


def build_params(args: argparse.Namespace) -> SimParams:
    behaviors = tuple(b for b in args.behaviors.split(",") if b)
    unknown = [b for b in behaviors if b not in BEHAVIORS]
    mutations = frozenset(m for m in args.mutate.split(",") if m)
    if unknown or mutations - MUTATIONS or args.validators < 1 or args.heights < 1:
        from scripts.usage import CliError

        raise CliError(f"sim: expected behaviours from {BEHAVIORS}, mutations from {sorted(MUTATIONS)}, N, H >= 1")
    return SimParams(
        validators=args.validators,
        heights=args.heights,
        byzantine=args.byzantine,
        crash=args.crash,
        behaviors=behaviors,
        mutations=mutations,
        long_outage=args.long_outage,
    )


def print_failure(result: ScheduleResult, args: argparse.Namespace) -> None:
    schedule = result.schedule
    print(f"FAILED schedule {schedule.seed}: {schedule.describe()}")
    for line in result.safety + result.liveness:
        print(f"  {line}")
    for line in result.trace:
        print(f"  {line}")
    argv = " ".join(a for a in sys.argv[1:] if a) if sys.argv[1:2] == ["sim"] else "sim ..."
    print(f"  replay: zoneledger {_without_run_flags(argv)} --replay {schedule.seed}")


def _without_run_flags(argv: str) -> str:
    parts, out, skip = argv.split(), [], False
    for part in parts:
        if skip:
            skip = False
            continue
        if part in ("--schedules", "--seed", "--replay"):
            skip = True
            continue
        out.append(part)
    return " ".join(out)


def run(args: argparse.Namespace) -> int:
    params = build_params(args)
    if args.replay is not None:
        summary = RunSummary(schedules=1)
        result = run_schedule(args.replay, params)
        summary.decided_heights = result.decided_heights
        summary.safety_violations = int(bool(result.safety))
        summary.liveness_failures = int(bool(result.liveness))
        summary.messages = result.messages
        print(f"schedule {args.replay}: {result.schedule.describe()}")
        print(f"  ended at {result.end_ms} ms virtual, {result.messages} messages, {result.evidence} evidence reports")
        if not result.ok:
            summary.failures.append(result)
    else:
        summary = run_many(args.seed, args.schedules, params, stop_on_failure=args.stop_on_failure)
        rate = summary.schedules / summary.seconds if summary.seconds else 0.0
        per_height = summary.messages / summary.decided_heights if summary.decided_heights else 0.0
        print(
            f"n={params.validators}: {summary.seconds:.1f} s, {rate:.1f} schedules/s, "
            f"{per_height:.0f} messages per decided height"
        )
        if params.long_outage:
            print(
                f"heights first decided while more than f were down: {summary.halt_new_heights}; "
                f"after they returned: {summary.resumed_heights}"
            )
    for result in summary.failures[:5]:
        print_failure(result, args)
    print(summary.line())
    return 0 if not summary.failures else 1
