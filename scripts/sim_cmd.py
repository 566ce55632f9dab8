"""``zoneledger sim``: run the deterministic consensus simulator (node/sim/).

Runs K fault schedules derived from a master seed and ends with one summary line,
``schedules: K, decided heights: D, safety violations: 0, liveness failures: 0``;
exits 1 on any violation, printing each failing schedule's seed, its faults and a
minimal trace. ``--replay SEED`` reruns exactly one schedule.

``--planted-bugs`` instead measures the simulator itself: each planted bug of
:mod:`node.sim.mutants` is patched in and run from ``--seeds`` independent master
seeds, each up to the bug's budget of schedules (``--budget`` overrides), one line per
bug; exits 1 unless every bug is caught in at least 9 of 10 seeds (the same share of
other seed counts). ``--plant BUG`` runs (or replays) schedules with one bug patched in.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from typing import Any

from node.sim import BEHAVIORS, RunSummary, ScheduleResult, SimParams, run_many, run_schedule
from node.sim.faults import LOADS
from node.sim.mutants import PLANTED_BUGS, measure_detection, planted

REQUIRED_SHARE = 0.9
"""Share of seeds in which every planted bug must be caught."""


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
    parser.add_argument("--loads", default=",".join(LOADS), help=f"loads to draw from ({','.join(LOADS)})")
    parser.add_argument("--long-outage", action="store_true", help="crashed validators go down together for 15-25 s")
    parser.add_argument(
        "--membership", default="", metavar="H:N,...",
        help="the validator set changing (DESIGN §12): from height H the first N validators, e.g. 1:4,3:7,5:4",
    )
    parser.add_argument("--replay", type=int, default=None, metavar="SEED", help="rerun one schedule by its seed")
    parser.add_argument("--stop-on-failure", action="store_true")
    parser.add_argument(
        "--planted-bugs", action="store_true", help="measure how often the simulator catches each planted bug"
    )
    parser.add_argument("--bugs", default=",".join(PLANTED_BUGS), help="planted bugs to measure (default: all)")
    parser.add_argument("--seeds", type=int, default=10, metavar="K", help="master seeds per planted bug")
    parser.add_argument("--budget", type=int, default=None, metavar="B", help="schedules per seed (default: per bug)")
    parser.add_argument("--plant", default=None, metavar="BUG", help="run with one planted bug (test tooling)")
    parser.set_defaults(func=run)


def build_params(args: argparse.Namespace) -> SimParams:
    behaviors = tuple(b for b in args.behaviors.split(",") if b)
    loads = tuple(x for x in args.loads.split(",") if x)
    bugs = [b for b in args.bugs.split(",") if b] + ([args.plant] if args.plant else [])
    wrong = (
        [b for b in behaviors if b not in BEHAVIORS] + [x for x in loads if x not in LOADS]
        + [b for b in bugs if b not in PLANTED_BUGS]
    )
    if wrong or not behaviors or not loads or args.validators < 1 or args.heights < 1 or args.seeds < 1:
        from scripts.usage import CliError

        raise CliError(
            f"sim: expected behaviours from {BEHAVIORS}, loads from {LOADS}, bugs from {tuple(PLANTED_BUGS)},"
            f" N, H, K >= 1; got {', '.join(wrong) or 'a count below 1'}"
        )
    membership = parse_membership(args.membership, args.validators)
    return SimParams(
        membership=membership,
        validators=args.validators,
        heights=args.heights,
        byzantine=args.byzantine,
        crash=args.crash,
        behaviors=behaviors,
        long_outage=args.long_outage,
        loads=loads,
    )


def parse_membership(text: str, validators: int) -> tuple[tuple[int, int], ...]:
    """``1:4,3:7,5:4`` -> ((1, 4), (3, 7), (5, 4)); heights rising, 4 <= N <= --validators."""
    from scripts.usage import CliError

    changes: list[tuple[int, int]] = []
    for part in (p for p in text.split(",") if p):
        height, _, count = part.partition(":")
        if not (height.isdigit() and count.isdigit()):
            raise CliError(f"sim: --membership expected H:N pairs such as 1:4,3:7, got {part!r}")
        change = (int(height), int(count))
        if change[0] < 1 or not 4 <= change[1] <= validators or (changes and change[0] <= changes[-1][0]):
            raise CliError(
                f"sim: --membership expected rising heights from 1 and 4 <= N <= {validators} (--validators), got {part!r}"
            )
        changes.append(change)
    if changes and changes[0][0] != 1:
        raise CliError("sim: --membership expected the first change at height 1")
    return tuple(changes)


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


def run_planted_bugs(args: argparse.Namespace, params: SimParams) -> int:
    bugs = [b for b in args.bugs.split(",") if b]
    needed = math.ceil(round(REQUIRED_SHARE * args.seeds, 6))
    print(
        f"planted bugs, n={params.validators}, {params.heights} heights, {args.seeds} master seeds each "
        f"({args.seed}..{args.seed + args.seeds - 1}); a seed stops at its first failing schedule:"
    )
    missed = []
    for name in bugs:
        detection = measure_detection(name, seeds=args.seeds, budget=args.budget, params=params, first_seed=args.seed)
        print(detection.line(), flush=True)
        if detection.caught < needed:
            missed.append(name)
    if missed:
        print(f"caught in fewer than {needed}/{args.seeds} seeds: {', '.join(missed)}")
        return 1
    print(f"every planted bug caught in at least {needed}/{args.seeds} seeds")
    return 0


def run(args: argparse.Namespace) -> int:
    params = build_params(args)
    if args.planted_bugs:
        return run_planted_bugs(args, params)
    with planted(args.plant) if args.plant else contextlib.nullcontext():
        return run_schedules(args, params)


def run_schedules(args: argparse.Namespace, params: SimParams) -> int:
    if args.replay is not None:
        summary = RunSummary()
        result = run_schedule(args.replay, params)
        summary.add(result)
        print(f"schedule {args.replay}: {result.schedule.describe()}")
        print(
            f"  ended at {result.end_ms} ms virtual, {result.messages} messages, {result.evidence} evidence reports,"
            f" {result.syncs} syncs applying {result.synced_blocks} blocks, {result.restarts} restarts"
        )
    else:
        summary = run_many(args.seed, args.schedules, params, stop_on_failure=args.stop_on_failure)
        rate = summary.schedules / summary.seconds if summary.seconds else 0.0
        per_height = summary.messages / summary.decided_heights if summary.decided_heights else 0.0
        print(
            f"n={params.validators}: {summary.seconds:.1f} s, {rate:.1f} schedules/s, "
            f"{per_height:.0f} messages per decided height, {summary.syncs} syncs applying "
            f"{summary.synced_blocks} blocks, {summary.restarts} restarts, largest vote book {summary.max_book}"
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
