"""Running many schedules: seeds derived from a master seed, totals, the first failures."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from node.sim.core import ScheduleResult, Simulation
from node.sim.faults import SimParams, generate_schedule


def compute_schedule_seeds(seed: int, count: int) -> list[int]:
    """The schedule seeds of a run: one ``random.Random`` per schedule, derived from the master."""
    master = random.Random(seed)
    return [master.getrandbits(48) for _ in range(count)]


def run_schedule(schedule_seed: int, params: SimParams) -> ScheduleResult:
    return Simulation(generate_schedule(schedule_seed, params), params).run()


@dataclass(slots=True)
class RunSummary:
    """Totals of a run, and the first failures."""

    schedules: int = 0
    decided_heights: int = 0
    safety_violations: int = 0
    liveness_failures: int = 0
    messages: int = 0
    seconds: float = 0.0
    halt_new_heights: int = 0
    resumed_heights: int = 0
    syncs: int = 0
    synced_blocks: int = 0
    restarts: int = 0
    max_book: int = 0
    failures: list[ScheduleResult] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"schedules: {self.schedules}, decided heights: {self.decided_heights}, "
            f"safety violations: {self.safety_violations}, liveness failures: {self.liveness_failures}"
        )

    def add(self, result: ScheduleResult) -> None:
        self.schedules += 1
        self.decided_heights += result.decided_heights
        self.messages += result.messages
        self.halt_new_heights += result.halt_new_heights
        self.resumed_heights += result.resumed_heights
        self.syncs += result.syncs
        self.synced_blocks += result.synced_blocks
        self.restarts += result.restarts
        self.max_book = max(self.max_book, result.max_book)
        self.safety_violations += bool(result.safety)
        self.liveness_failures += bool(result.liveness)
        if not result.ok:
            self.failures.append(result)


def run_many(seed: int, count: int, params: SimParams, stop_on_failure: bool = False) -> RunSummary:
    summary = RunSummary()
    started = time.perf_counter()
    for schedule_seed in compute_schedule_seeds(seed, count):
        result = run_schedule(schedule_seed, params)
        summary.add(result)
        if not result.ok and stop_on_failure:
            break
    summary.seconds = time.perf_counter() - started
    return summary
