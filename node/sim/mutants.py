"""Planted bugs: each a known-wrong version of one rule, patched into :mod:`node.consensus`
or :mod:`node.driver` for the duration of a run, and how often the simulator catches it.

Nothing here is reachable from a node: production code has no switch for any of these.
:func:`planted` swaps module attributes (the machine and the driver look their rules up
by name at call time, and the simulator calls ``driver.drive``), and puts them back on
exit. :func:`measure_detection` runs a bug against independent master seeds and
reports in how many the simulator failed a schedule, and how many schedules it took.

=================  ===============================================================
``lock``           Algorithm 1 lines 23 and 29: prevote a proposal whatever the lock.
``pol_check``      line 28: take a re-proposal's ``pol_round`` without 2f+1 prevotes for it.
``valid_value``    lines 15-16: a proposer proposes a fresh block instead of ``validValue``.
``round_skip``     line 55: no jump to a round f+1 validators are already in.
``write_ahead``    send a signed message without persisting it first.
``catchup_rebuild`` what the runtime did before :mod:`node.driver`: when a sync that
                   applied blocks ends, replace the machine by a fresh one at head + 1,
                   ignoring the height it is in and its WAL records (the catch-up
                   double-sign of issue 12).
``book_bound``     keep votes of every round (no per-validator bound on far rounds).
=================  ===============================================================
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from node import consensus, driver, votes
from node.consensus import Action, Broadcast, ConsensusState, RequestBlock
from node.driver import Command, DriverState
from node.sim.faults import SimParams
from node.sim.runs import compute_schedule_seeds, run_schedule

# --- the planted versions -------------------------------------------------------------


def is_free_to_prevote_ignoring_lock(s: ConsensusState, v: bytes, pol_round: int) -> bool:
    return True


def is_pol_shown_on_trust(s: ConsensusState, v: bytes, pol_round: int) -> bool:
    return 0 <= pol_round < s.round


def propose_fresh_value(s: ConsensusState, out: list[Action]) -> None:
    out.append(RequestBlock(s.height, s.round))


def on_f_plus_one_higher_round_never(s: ConsensusState, round_: int, out: list[Action]) -> None:
    return None


def compute_send_action_unpersisted(s: ConsensusState, message: Any) -> Action:
    return Broadcast(message)


_sync_started_at: dict[int, int] = {}
"""id(driver state) -> head when its sync began (``catchup_rebuild`` only)."""
_request_sync = driver.request_sync


def request_sync_noting_head(d: DriverState, out: list[Command]) -> None:
    if not d.syncing:
        _sync_started_at[id(d)] = d.head
    _request_sync(d, out)


def on_sync_finished_fresh_machine(d: DriverState, now_ms: int, out: list[Command]) -> None:
    """The old runtime's ``sync_once``: after applying blocks, ``state = new_state(...)``."""
    d.syncing = False
    if d.head > _sync_started_at.pop(id(d), d.head):
        d.machine = driver.compute_waiting_machine(d.config.consensus, d.head, d.head_commit)
        driver.start_height_if_due(d, now_ms, out)


def admit_every_round(self: votes.VoteBook, validator: int, round_: int, horizon: int) -> bool:
    return True


# --- the catalogue --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlantedBug:
    """One planted bug: what it breaks, what replaces what, and how hard to look for it."""

    name: str
    rule: str
    patches: tuple[tuple[ModuleType | type, str, Callable[..., Any]], ...]
    budget: int
    """Default schedules per seed."""
    params: SimParams = field(default_factory=SimParams)


PLANTED_BUGS: dict[str, PlantedBug] = {
    bug.name: bug
    for bug in (
        PlantedBug("lock", "lines 22-33: the lock is ignored",
                   ((consensus, "is_free_to_prevote", is_free_to_prevote_ignoring_lock),), 100),
        PlantedBug("pol_check", "line 28: a pol_round is taken without 2f+1 prevotes",
                   ((consensus, "is_pol_shown", is_pol_shown_on_trust),), 1000),
        PlantedBug("valid_value", "lines 15-16: a fresh value instead of validValue",
                   ((consensus, "propose_valid_value", propose_fresh_value),), 100),
        PlantedBug("round_skip", "line 55: no f+1 round skip",
                   ((consensus, "on_f_plus_one_higher_round", on_f_plus_one_higher_round_never),), 1000),
        PlantedBug("write_ahead", "a signed message leaves before it is persisted",
                   ((consensus, "compute_send_action", compute_send_action_unpersisted),), 200),
        PlantedBug("catchup_rebuild", "catch-up replaces the machine by a fresh one (the old runtime)",
                   ((driver, "request_sync", request_sync_noting_head),
                    (driver, "on_sync_finished", on_sync_finished_fresh_machine)), 100),
        PlantedBug("book_bound", "votes of any round are kept (no catch-up-round bound)",
                   ((votes.VoteBook, "_admit_far", admit_every_round),), 500),
    )
}


@contextmanager
def planted(name: str) -> Iterator[PlantedBug]:
    """Run the body with planted bug ``name`` in place of the rule it breaks."""
    bug = PLANTED_BUGS[name]
    saved = [(owner, attr, getattr(owner, attr)) for owner, attr, _ in bug.patches]
    try:
        for owner, attr, replacement in bug.patches:
            setattr(owner, attr, replacement)
        yield bug
    finally:
        for owner, attr, original in saved:
            setattr(owner, attr, original)
        _sync_started_at.clear()


# --- detection rates ------------------------------------------------------------------


@dataclass(slots=True)
class Detection:
    """How one planted bug fared over several master seeds."""

    bug: PlantedBug
    budget: int
    seeds: int = 0
    caught: int = 0
    first_catches: list[int] = field(default_factory=list)
    """Per catching seed: the number of schedules run up to and including the first failure."""
    kinds: dict[str, int] = field(default_factory=dict)
    """What the first failure of each catching seed was (agreement, double-sign, lock, ...)."""
    seconds: float = 0.0

    def line(self) -> str:
        catches = sorted(self.first_catches)
        median = catches[len(catches) // 2] if catches else 0
        kinds = ", ".join(f"{k} {c}" for k, c in sorted(self.kinds.items(), key=lambda kc: -kc[1]))
        return (
            f"{self.bug.name:<16} caught in {self.caught}/{self.seeds} seeds, budget {self.budget} schedules;"
            f" schedules to first catch: median {median}, max {max(catches, default=0)}; by {kinds or '-'}"
            f" ({self.seconds:.0f} s)"
        )


def measure_detection(
    name: str, seeds: int = 10, budget: int | None = None, params: SimParams | None = None, first_seed: int = 1
) -> Detection:
    """Run planted bug ``name`` from master seeds ``first_seed .. first_seed + seeds - 1``,
    each for up to ``budget`` schedules, stopping a seed at its first failure."""
    bug = PLANTED_BUGS[name]
    detection = Detection(bug, budget or bug.budget)
    started = time.perf_counter()
    with planted(name):
        for seed in range(first_seed, first_seed + seeds):
            detection.seeds += 1
            for count, schedule_seed in enumerate(compute_schedule_seeds(seed, detection.budget), start=1):
                result = run_schedule(schedule_seed, params or bug.params)
                if not result.ok:
                    detection.caught += 1
                    detection.first_catches.append(count)
                    kind = get_failure_kind(result.safety + result.liveness)
                    detection.kinds[kind] = detection.kinds.get(kind, 0) + 1
                    break
    detection.seconds = time.perf_counter() - started
    return detection


def get_failure_kind(lines: list[str]) -> str:
    """The word before the first colon of the first failure line (``agreement``, ``lock``, ...)."""
    return lines[0].split(":", 1)[0] if lines else "?"


__all__ = ["PLANTED_BUGS", "Detection", "PlantedBug", "measure_detection", "planted"]
