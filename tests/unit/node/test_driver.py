"""The driver (node/driver.py): when a height starts, when the node syncs, and how the
machine is rebuilt, one rule per test, the catch-up race first."""

from __future__ import annotations

from typing import Any

from ledger.blocks import PRECOMMIT, PREVOTE, CommitCertificate, Proposal, SignedVote, Vote, build_commit
from ledger.keys import SigningKey
from node.consensus import (
    BlockValidity,
    Broadcast,
    ConsensusConfig,
    Decide,
    PersistThenSend,
    ProposalReceived,
    StartHeight,
    TimeoutFired,
    VoteReceived,
)
from node.driver import (
    ArmHeartbeat,
    Boot,
    CommitSeen,
    DecideFailed,
    DriverConfig,
    DriverState,
    HeadAdvanced,
    HeartbeatFired,
    PeerAt,
    StartSync,
    SyncFinished,
    SyncTick,
    TxsPending,
    WalWriteFailed,
    compute_commit_recipients,
    drive,
    is_commit_owed,
    new_driver,
)
from node.messages import sign_proposal

CHAIN = "test-chain"
KEYS = [SigningKey.from_label(f"sim validator {i}") for i in range(4)]
VALIDATORS = tuple(k.public for k in KEYS)
A, B = b"\xaa" * 32, b"\xbb" * 32
HEARTBEAT, STALL = 10_000, 3_000


def config(index: int = 0) -> DriverConfig:
    return DriverConfig(ConsensusConfig(CHAIN, VALIDATORS, index, KEYS[index]), heartbeat_ms=HEARTBEAT, stall_ms=STALL)


def signed_vote(validator: int, vote_type: str, height: int, round_: int, value: bytes | None) -> SignedVote:
    return Vote(CHAIN, vote_type, height, round_, value, validator).sign(KEYS[validator])


def commit_for(height: int, value: bytes, round_: int = 0) -> CommitCertificate:
    return build_commit([signed_vote(i, PRECOMMIT, height, round_, value) for i in (1, 2, 3)])


def proposal(height: int, round_: int, value: bytes, pol_round: int = -1) -> ProposalReceived:
    proposer = (height + round_) % 4
    return ProposalReceived(sign_proposal(Proposal(CHAIN, height, round_, value, pol_round, proposer), KEYS[proposer]))


def run(d: DriverState, *items: Any, now: int = 0) -> list[Any]:
    out: list[Any] = []
    for item in items:
        d, commands = drive(d, item, now)
        out.extend(commands)
    return out


def signed(commands: list[Any]) -> list[tuple[int, str, int, bytes | None]]:
    """(height, type, round, value) of every vote signed (persisted)."""
    return [
        (c.message.vote.height, c.message.vote.type, c.message.vote.round, c.message.vote.block_hash)
        for c in commands
        if isinstance(c, PersistThenSend) and isinstance(c.message, SignedVote)
    ]


def booted(head: int = 0, records: tuple[PersistThenSend, ...] = (), now: int = 0, pending: int = 1) -> DriverState:
    d = new_driver(config())
    commit = commit_for(head, A) if head else None
    run(d, Boot(head, 0, commit, records), TxsPending(pending), now=now)
    return d


def enter_height_2_and_prevote_b(d: DriverState) -> list[Any]:
    """Head 1 committed; height 2 starts (work pending) and B is prevoted in round 0."""
    return run(d, HeadAdvanced(1, 0, commit_for(1, A), ()), proposal(2, 0, B), BlockValidity(2, B, True))


# --- the catch-up race (issue 12) ---------------------------------------------------------


def test_catch_up_race_keeps_the_vote_signed_in_the_next_height() -> None:
    """Sync applied block 1, the node entered height 2 and prevoted B while waiting for a
    slow status peer; sync then ends (and may report block 1 again): the machine is
    the same, so the timeout that would make a fresh one prevote nil re-sends B."""
    d = booted()
    out = enter_height_2_and_prevote_b(d)
    assert signed(out) == [(2, PREVOTE, 0, B)]
    machine = d.machine
    assert run(d, HeadAdvanced(1, 0, commit_for(1, A), tuple(c for c in out if isinstance(c, PersistThenSend)))) == []
    assert run(d, SyncFinished()) == []
    assert d.machine is machine and d.machine.own_votes[(0, PREVOTE)].vote.block_hash == B
    assert signed(run(d, TimeoutFired("propose", 2, 0))) == []


def test_catch_up_keeps_the_lock_taken_in_the_next_height() -> None:
    d = booted()
    enter_height_2_and_prevote_b(d)
    run(d, VoteReceived(signed_vote(1, PREVOTE, 2, 0, B)), VoteReceived(signed_vote(3, PREVOTE, 2, 0, B)))
    assert (d.machine.locked_value, d.machine.locked_round) == (B, 0)
    run(d, HeadAdvanced(1, 0, commit_for(1, A), ()), SyncFinished(), TimeoutFired("precommit", 2, 0))
    assert d.machine.locked_value == B and d.machine.round == 1


def test_machine_left_behind_is_rebuilt_from_the_records_of_the_new_next_height() -> None:
    """Height 2 was entered (and signed in) by a process that crashed; the new one boots
    at head 0, and sync brings head 1: the machine resumes height 2 from its records."""
    first = booted()
    records = tuple(c for c in enter_height_2_and_prevote_b(first) if isinstance(c, PersistThenSend))
    d = booted(pending=0)
    out = run(d, HeadAdvanced(1, 0, commit_for(1, A), records))
    assert d.machine.height == 2 and d.machine.own_votes[(0, PREVOTE)].vote.block_hash == B
    assert signed(out) == [] and signed(run(d, TimeoutFired("propose", 2, 0))) == []


def test_boot_resumes_the_height_after_the_head_from_its_records() -> None:
    first = booted()
    records = tuple(c for c in enter_height_2_and_prevote_b(first) if isinstance(c, PersistThenSend))
    d = new_driver(config())
    out = run(d, Boot(1, 0, commit_for(1, A), records))
    assert d.machine.height == 2 and d.machine.round == 0
    assert signed(out) == [] and signed(run(d, TimeoutFired("propose", 2, 0))) == []


# --- starting heights ---------------------------------------------------------------------


def test_idle_boot_waits_for_the_heartbeat() -> None:
    d = new_driver(config())
    out = run(d, Boot(1, 5_000, commit_for(1, A), ()), TxsPending(0), now=6_000)
    assert d.machine.height == 1 and d.machine.decided == A  # waiting at the head
    assert out == [ArmHeartbeat(HEARTBEAT - 1_000)]
    assert run(d, HeartbeatFired(), now=14_000) == [ArmHeartbeat(1_000)]  # early: armed again
    run(d, HeartbeatFired(), now=15_000)
    assert d.machine.height == 2 and d.machine.decided is None


def test_pending_work_starts_the_next_height() -> None:
    d = new_driver(config())
    run(d, Boot(1, 5_000, commit_for(1, A), ()), TxsPending(0), now=6_000)
    run(d, TxsPending(3), now=6_100)
    assert d.machine.height == 2


def test_a_peer_that_started_the_next_height_starts_it_here() -> None:
    d = new_driver(config())
    run(d, Boot(1, 5_000, commit_for(1, A), ()), TxsPending(0), now=6_000)
    run(d, VoteReceived(signed_vote(2, PREVOTE, 2, 0, None)), now=6_100)
    assert d.machine.height == 2 and d.machine.book.count(0, PREVOTE, None) == 1  # the vote is kept


def test_only_the_driver_starts_heights() -> None:
    d = booted()
    run(d, StartHeight(5, None))
    assert d.machine.height == 1


def test_own_decision_then_head_advanced_starts_the_next_height_with_buffered_messages() -> None:
    d = booted()
    out = run(d, *(VoteReceived(signed_vote(i, PRECOMMIT, 1, 0, A)) for i in (1, 2, 3)))
    decide = next(c for c in out if isinstance(c, Decide))
    run(d, VoteReceived(signed_vote(2, PREVOTE, 2, 0, B)))  # buffered: height 2 not started
    run(d, HeadAdvanced(1, 0, decide.commit, ()))
    assert d.machine.height == 2 and d.machine.book.count(0, PREVOTE, B) == 1


# --- sync ---------------------------------------------------------------------------------


def test_a_peer_beyond_the_next_height_calls_for_one_sync_at_a_time() -> None:
    d = booted()
    assert run(d, PeerAt(2, 3)) == [StartSync()]
    assert run(d, VoteReceived(signed_vote(3, PREVOTE, 4, 0, None))) == []  # one at a time
    run(d, SyncFinished())
    assert run(d, SyncTick()) == [StartSync()]  # still behind


def test_stalled_height_syncs_on_the_tick_but_an_idle_node_does_not() -> None:
    """Regression (found by the simulator): an idle node synced on every tick after
    stall_ms, and the status replies (peer at head + 1) started an empty height every
    3 s instead of every heartbeat."""
    d = new_driver(config())
    run(d, Boot(1, 0, commit_for(1, A), ()), TxsPending(0), now=1_000)
    assert [run(d, SyncTick(), now=t) for t in range(1_000, 9_000, 1_000)] == [[]] * 8
    run(d, TxsPending(1), now=9_000)
    assert run(d, SyncTick(), now=9_000) == [StartSync()]  # in a height, no block for stall_ms


def test_certificate_decides_the_machine_height_and_one_further_ahead_syncs() -> None:
    d = booted()
    out = run(d, CommitSeen(2, commit_for(1, A)))
    assert [c for c in out if isinstance(c, Decide)] == [Decide(1, A, commit_for(1, A))]
    assert run(d, CommitSeen(2, commit_for(3, B))) == [StartSync()]


def test_decided_block_that_could_not_be_had_calls_for_sync() -> None:
    d = booted()
    assert run(d, DecideFailed(1)) == [StartSync()]


# --- the write-ahead log ------------------------------------------------------------------


def test_failed_wal_append_forgets_the_message() -> None:
    d = booted()
    out = run(d, TimeoutFired("propose", 1, 0))
    assert signed(out) == [(1, PREVOTE, 0, None)]
    run(d, WalWriteFailed(()))  # the prevote never reached the disk
    assert (0, PREVOTE) not in d.machine.own_votes
    rebroadcast = run(d, TimeoutFired("rebroadcast", 1, 0))
    assert not [c for c in rebroadcast if isinstance(c, Broadcast) and isinstance(c.message, SignedVote)]


def test_a_decided_certificate_goes_to_the_validators_whose_precommit_it_lacks() -> None:
    keys = [SigningKey.from_label(f"recipients-{i}") for i in range(7)]
    votes = [Vote("c", PRECOMMIT, 3, 0, b"\x01" * 32, i).sign(keys[i]) for i in (0, 2, 3, 4, 6)]
    commit = build_commit(votes)
    assert compute_commit_recipients(commit, 7, 0) == frozenset({1, 5})
    assert compute_commit_recipients(commit, 7, 1) == frozenset({5})


def test_only_a_vote_for_the_head_height_is_owed_the_certificate() -> None:
    assert is_commit_owed(5, 5)
    assert not is_commit_owed(4, 5)
    assert not is_commit_owed(6, 5)
    assert not is_commit_owed(0, 0)
