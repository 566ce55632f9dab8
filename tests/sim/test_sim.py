"""Schedule runs of the consensus simulator, and proof that it can fail.

The default run covers a few hundred schedules; ``pytest -m slow`` runs the long ones
(the figures in docs/BENCHMARKS.md come from ``zoneledger sim``, see there).
"""

from __future__ import annotations

import pytest

from node.sim import run_many, run_schedule
from node.sim_faults import SimParams
from scripts.cli import main


def test_n4_random_faults_are_safe_and_live() -> None:
    summary = run_many(11, 150, SimParams(validators=4))
    assert summary.line() == "schedules: 150, decided heights: 450, safety violations: 0, liveness failures: 0"


def test_n7_random_faults_are_safe_and_live() -> None:
    summary = run_many(12, 30, SimParams(validators=7, heights=2))
    assert (summary.safety_violations, summary.liveness_failures) == (0, 0)
    assert summary.decided_heights == 60


def test_replay_reproduces_a_schedule_exactly() -> None:
    params = SimParams(validators=4, byzantine=1, crash=0)
    first, second = run_schedule(424242, params), run_schedule(424242, params)
    assert (first.messages, first.events, first.end_ms, first.evidence) == (
        second.messages,
        second.events,
        second.end_ms,
        second.evidence,
    )


def test_more_than_f_crashed_halts_without_forking_and_resumes() -> None:
    summary = run_many(13, 8, SimParams(validators=4, crash=2, long_outage=True))
    assert (summary.safety_violations, summary.liveness_failures) == (0, 0)
    assert summary.halt_new_heights == 0  # nothing new is decided while more than f are down
    assert summary.decided_heights == 8 * 3  # ...and every height once they return
    assert summary.resumed_heights > 0


def test_more_than_f_byzantine_can_fork() -> None:
    """Twins with f+1 Byzantine validators: the agreement check must fire."""
    summary = run_many(1, 60, SimParams(validators=4, byzantine=2, behaviors=("twins",)), stop_on_failure=True)
    assert summary.safety_violations == 1
    assert any("agreement" in line for line in summary.failures[0].safety)


# --- planted bugs: each must be caught within a bounded number of schedules ---------


@pytest.mark.parametrize(
    ("mutation", "params", "seed", "bound", "kind"),
    [
        ("no_lock", SimParams(validators=4, heights=6, byzantine=1, behaviors=("twins",)), 7, 300, "agreement"),
        ("no_valid_value", SimParams(validators=4), 1, 100, "liveness"),
        ("no_round_skip", SimParams(validators=4, heights=6, byzantine=1, crash=1, behaviors=("double_vote",)), 1, 300, "liveness"),
        ("no_write_ahead", SimParams(validators=4), 1, 100, "double-sign"),
    ],
)
def test_simulator_catches_planted_bug(mutation: str, params: SimParams, seed: int, bound: int, kind: str) -> None:
    planted = SimParams(**{**_fields(params), "mutations": frozenset({mutation})})
    summary = run_many(seed, bound, planted, stop_on_failure=True)
    assert summary.failures, f"{mutation} not caught in {bound} schedules"
    failure = summary.failures[0]
    assert any(kind in line for line in failure.safety + failure.liveness)
    # the printed seed reproduces the failure
    again = run_schedule(failure.schedule.seed, planted)
    assert again.safety == failure.safety and again.liveness == failure.liveness


def _fields(params: SimParams) -> dict[str, object]:
    return {name: getattr(params, name) for name in params.__dataclass_fields__}


def test_cli_summary_line_and_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--validators", "4", "--schedules", "5", "--seed", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == "schedules: 5, decided heights: 15, safety violations: 0, liveness failures: 0"


def test_cli_exits_non_zero_and_prints_replay(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["sim", "--validators", "4", "--schedules", "40", "--seed", "1", "--byzantine", "2"]
    assert main([*argv, "--behaviors", "twins", "--stop-on-failure"]) == 1
    out = capsys.readouterr().out
    assert "FAILED schedule" in out and "--replay" in out and "safety violations: 1" in out.splitlines()[-1]


@pytest.mark.slow
@pytest.mark.parametrize(("n", "count", "heights"), [(4, 2000, 3), (7, 2000, 3), (58, 50, 2)])
def test_long_runs(n: int, count: int, heights: int) -> None:
    summary = run_many(2024, count, SimParams(validators=n, heights=heights))
    assert (summary.safety_violations, summary.liveness_failures) == (0, 0)
