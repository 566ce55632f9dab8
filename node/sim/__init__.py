"""The deterministic consensus simulator: n validators in one process on a virtual
clock, each running :mod:`node.driver` (and through it :mod:`node.consensus`) exactly
as the node runtime does, under seeded faults and Byzantine behaviours.

* :mod:`node.sim.faults`: what goes wrong in one schedule, drawn from its seed;
* :mod:`node.sim.adversaries`: what Byzantine validators do;
* :mod:`node.sim.core`: the event loop, the runtime's commands, sync, crashes;
* :mod:`node.sim.invariants`: agreement, validity, no double-sign, locks and
  proofs-of-lock, bounded vote books (liveness is checked at the end of a schedule);
* :mod:`node.sim.runs`: many schedules from a master seed;
* :mod:`node.sim.mutants`: planted bugs patched in for a run, and how often the
  simulator catches each.
"""

from node.sim.core import ScheduleResult, Simulation
from node.sim.faults import BEHAVIORS, Schedule, SimParams, generate_schedule
from node.sim.runs import RunSummary, compute_schedule_seeds, run_many, run_schedule

__all__ = [
    "BEHAVIORS", "RunSummary", "Schedule", "ScheduleResult", "SimParams", "Simulation",
    "compute_schedule_seeds", "generate_schedule", "run_many", "run_schedule",
]
