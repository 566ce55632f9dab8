"""Schedule runs of the consensus simulator, and proof that it can fail.

The default run covers a few hundred schedules and catches every planted bug on a
small budget; ``pytest -m slow`` runs the long ones (the figures in docs/BENCHMARKS.md
come from ``zoneledger sim``, see there).
"""

from __future__ import annotations

import pytest

from node import consensus, driver, votes
from node.sim import BEHAVIORS, SimParams, run_many, run_schedule
from node.sim.invariants import compute_book_bound
from node.sim.mutants import PLANTED_BUGS, measure_detection, planted
from scripts.cli import main


def test_n4_random_faults_are_safe_and_live() -> None:
    summary = run_many(11, 150, SimParams(validators=4))
    assert summary.line() == "schedules: 150, decided heights: 450, safety violations: 0, liveness failures: 0"
    assert summary.synced_blocks > 0 and summary.restarts > 0  # catch-up and restarts were exercised


def test_the_set_growing_from_4_to_7_and_back_is_safe_and_live() -> None:
    """DESIGN §12 in the simulator: three validators join at height 3 and leave at 5;
    faults stay within f of every height's set; the ones outside a set follow it."""
    params = SimParams(validators=7, heights=6, membership=((1, 4), (3, 7), (5, 4)))
    summary = run_many(21, 40, params)
    assert (summary.safety_violations, summary.liveness_failures) == (0, 0), summary.line()
    assert summary.decided_heights == 40 * 6


def test_faults_stay_within_f_of_every_set() -> None:
    from node.sim.faults import generate_schedule

    params = SimParams(validators=7, heights=6, membership=((1, 4), (3, 7), (5, 4)), byzantine=1, crash=1)
    for seed in range(200):
        schedule = generate_schedule(seed, params)
        faulty = set(schedule.behaviors) | {c.validator for c in schedule.crashes} | {
            c.validator for c in schedule.mid_crashes
        }
        assert len([v for v in faulty if v < 4]) <= 1 and len(faulty) <= 2, schedule.describe()


def test_n7_random_faults_are_safe_and_live() -> None:
    summary = run_many(12, 30, SimParams(validators=7, heights=2))
    assert (summary.safety_violations, summary.liveness_failures) == (0, 0)
    assert summary.decided_heights == 60


@pytest.mark.parametrize("behavior", BEHAVIORS)
@pytest.mark.parametrize(("n", "count"), [(4, 10), (7, 4)])
def test_each_adversary_alone_is_survived(behavior: str, n: int, count: int) -> None:
    f = (n - 1) // 3
    summary = run_many(5, count, SimParams(validators=n, byzantine=f, crash=0, behaviors=(behavior,)))
    assert (summary.safety_violations, summary.liveness_failures) == (0, 0)
    assert summary.decided_heights == 3 * count


def test_replay_reproduces_a_schedule_exactly() -> None:
    params = SimParams(validators=4, byzantine=1, crash=0)
    first, second = run_schedule(424242, params), run_schedule(424242, params)
    assert (first.messages, first.events, first.end_ms, first.evidence, first.syncs) == (
        second.messages,
        second.events,
        second.end_ms,
        second.evidence,
        second.syncs,
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


def test_far_future_votes_leave_every_book_bounded() -> None:
    params = SimParams(validators=4, byzantine=1, crash=0, behaviors=("far_future",))
    summary = run_many(5, 12, params)
    assert (summary.safety_violations, summary.liveness_failures) == (0, 0)
    assert 0 < summary.max_book <= compute_book_bound(4, 0)
    with planted("book_bound"):  # the same adversary against a book without the round bound
        unbounded = run_many(5, 12, params)
    assert any("memory" in line for failure in unbounded.failures for line in failure.safety)


def test_catch_up_goes_through_sync_with_slow_status_peers() -> None:
    """The catch-up race: blocks applied by sync while the status of a slow peer is awaited."""
    summary = run_many(3, 40, SimParams(validators=4, byzantine=0, crash=1))
    assert (summary.safety_violations, summary.liveness_failures) == (0, 0)
    assert summary.syncs > 0 and summary.synced_blocks > 0


# --- planted bugs: each caught on a small budget, from a seed known to catch it ------

SMALL = {
    "lock": (2, 10, "lock"),  # seed 1 needs more schedules since certificates go only to non-signers
    "pol_check": (1, 10, "proof-of-lock"),
    "valid_value": (4, 10, "liveness"),
    "round_skip": (6, 10, "liveness"),  # seeds move as the gossip changes (back-off, certificates, targeted re-broadcast)
    "write_ahead": (3, 10, "double-sign"),
    "catchup_rebuild": (1, 10, "double-sign"),
    "book_bound": (7, 10, "memory"),
}


def test_every_planted_bug_has_a_small_budget_test() -> None:
    assert set(SMALL) == set(PLANTED_BUGS)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_simulator_catches_planted_bug(name: str) -> None:
    seed, budget, kind = SMALL[name]
    detection = measure_detection(name, seeds=1, budget=budget, first_seed=seed)
    assert detection.caught == 1, f"{name} not caught in {budget} schedules from seed {seed}"
    assert detection.kinds == {kind: 1}


def test_planted_bug_failure_replays_and_needs_the_bug() -> None:
    params = SimParams()
    with planted("write_ahead"):
        summary = run_many(3, 10, params, stop_on_failure=True)
        failure = summary.failures[0]
        again = run_schedule(failure.schedule.seed, params)
    assert again.safety == failure.safety and again.liveness == failure.liveness
    assert run_schedule(failure.schedule.seed, params).ok  # the same schedule passes without the bug


def test_planted_bugs_are_removed_after_the_run() -> None:
    originals = {
        (owner, attr): getattr(owner, attr) for bug in PLANTED_BUGS.values() for owner, attr, _ in bug.patches
    }
    for name in PLANTED_BUGS:
        with planted(name):
            pass
    assert all(getattr(owner, attr) is original for (owner, attr), original in originals.items())
    assert not hasattr(consensus, "MUTATIONS") and "mutations" not in consensus.ConsensusConfig.__dataclass_fields__
    assert (consensus.is_free_to_prevote.__module__, driver.on_sync_finished.__module__) == ("node.consensus", "node.driver")
    assert votes.VoteBook._admit_far.__module__ == "node.votes"


# --- the command line ------------------------------------------------------------------


def test_cli_summary_line_and_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--validators", "4", "--schedules", "5", "--seed", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == "schedules: 5, decided heights: 15, safety violations: 0, liveness failures: 0"


def test_cli_runs_a_changing_set_and_refuses_a_bad_one(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["sim", "--validators", "7", "--heights", "6", "--schedules", "3", "--seed", "4"]
    assert main([*argv, "--membership", "1:4,3:7,5:4"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        "schedules: 3, decided heights: 18, safety violations: 0, liveness failures: 0"
    )
    for bad in ("3:4", "1:3", "1:8", "1:4,1:7", "x"):
        assert main([*argv, "--membership", bad]) != 0
        assert "--membership" in capsys.readouterr().err


def test_cli_exits_non_zero_and_prints_replay(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["sim", "--validators", "4", "--schedules", "40", "--seed", "1", "--byzantine", "2"]
    assert main([*argv, "--behaviors", "twins", "--stop-on-failure"]) == 1
    out = capsys.readouterr().out
    assert "FAILED schedule" in out and "--replay" in out and "safety violations: 1" in out.splitlines()[-1]


def test_cli_planted_bugs_table(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["sim", "--planted-bugs", "--bugs", "write_ahead,catchup_rebuild", "--seeds", "2", "--budget", "40"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[1].startswith("write_ahead") and "caught in 2/2 seeds" in lines[1]
    assert lines[2].startswith("catchup_rebuild") and "caught in 2/2 seeds" in lines[2]
    assert lines[-1] == "every planted bug caught in at least 2/2 seeds"


def test_cli_plant_replays_a_planted_failure(capsys: pytest.CaptureFixture[str]) -> None:
    with planted("lock"):
        seed = run_many(2, 10, SimParams(), stop_on_failure=True).failures[0].schedule.seed
    assert main(["sim", "--plant", "lock", "--replay", str(seed)]) == 1
    assert "lock:" in capsys.readouterr().out
    assert main(["sim", "--replay", str(seed)]) == 0


def test_cli_refuses_unknown_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--plant", "no_such_bug"]) == 2
    assert "no_such_bug" in capsys.readouterr().err


# --- long runs (pytest -m slow; figures in docs/BENCHMARKS.md) ----------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("n", "count", "heights"), [(4, 10_000, 3), (7, 10_000, 3), (58, 100, 2)])
def test_long_runs(n: int, count: int, heights: int) -> None:
    summary = run_many(2024, count, SimParams(validators=n, heights=heights))
    print(  # the figures docs/BENCHMARKS.md records (pytest -s)
        f"\nn={n}: {summary.line()}; {summary.seconds:.0f} s, {summary.syncs} syncs applying"
        f" {summary.synced_blocks} blocks, {summary.restarts} restarts, largest vote book {summary.max_book},"
        f" {summary.messages / max(1, summary.decided_heights):.0f} messages per decided height"
    )
    assert (summary.safety_violations, summary.liveness_failures) == (0, 0)
    assert summary.decided_heights == count * heights


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PLANTED_BUGS))
def test_planted_bug_caught_in_nine_seeds_of_ten(name: str) -> None:
    assert measure_detection(name, seeds=10).caught >= 9
