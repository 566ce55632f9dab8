"""One test per upon-clause of Algorithm 1 (Buchman, Kwon, Milosevic 2018), plus the
write-ahead restore, catch-up by certificate, re-broadcast and evidence."""

from __future__ import annotations

from typing import Any

from ledger.blocks import PRECOMMIT, PREVOTE, Proposal, SignedVote, Vote, validate_commit
from ledger.keys import SigningKey
from node.consensus import (
    PRECOMMIT_STEP,
    PREVOTE_STEP,
    PROPOSE_STEP,
    BlockReady,
    BlockValidity,
    Broadcast,
    CommitReceived,
    ConsensusConfig,
    ConsensusState,
    Decide,
    PersistThenSend,
    ProposalReceived,
    ReportEvidence,
    RequestBlock,
    ScheduleTimeout,
    StartHeight,
    TimeoutFired,
    ValidateBlock,
    VoteReceived,
    compute_timeout,
    is_free_to_prevote,
    is_pol_shown,
    new_state,
    restore,
    step,
)
from node.messages import sign_proposal

CHAIN = "test-chain"
KEYS = [SigningKey.from_label(f"sim validator {i}") for i in range(4)]
VALIDATORS = tuple(k.public for k in KEYS)
A, B = b"\xaa" * 32, b"\xbb" * 32
# height 1: proposer of round r is (1 + r) % 4, so validator 0 proposes in round 3.


def machine(index: int = 0) -> tuple[ConsensusState, list[Any]]:
    config = ConsensusConfig(CHAIN, VALIDATORS, index, KEYS[index])
    return step(new_state(config), StartHeight(1, None))


def vote(validator: int, vote_type: str, value: bytes | None, round_: int = 0, height: int = 1) -> VoteReceived:
    return VoteReceived(Vote(CHAIN, vote_type, height, round_, value, validator).sign(KEYS[validator]))


def proposal(value: bytes, round_: int = 0, pol_round: int = -1) -> ProposalReceived:
    proposer = (1 + round_) % 4
    return ProposalReceived(sign_proposal(Proposal(CHAIN, 1, round_, value, pol_round, proposer), KEYS[proposer]))


def feed(state: ConsensusState, *events: Any) -> list[Any]:
    actions: list[Any] = []
    for event in events:
        state, out = step(state, event)
        actions.extend(out)
    return actions


def signed(actions: list[Any]) -> list[tuple[str, int, bytes | None]]:
    """(type, round, value) of every vote the machine signed."""
    return [
        (a.message.vote.type, a.message.vote.round, a.message.vote.block_hash)
        for a in actions
        if isinstance(a, PersistThenSend) and isinstance(a.message, SignedVote)
    ]


def lock_on_a_in_round_0(state: ConsensusState) -> None:
    feed(state, proposal(A), BlockValidity(1, A, True), vote(1, PREVOTE, A), vote(2, PREVOTE, A))
    assert state.locked_value == A and state.locked_round == 0


def test_start_round_arms_timeout_propose() -> None:  # lines 11-21
    state, actions = machine(0)
    assert ScheduleTimeout("propose", 1, 0, 1000) in actions
    assert not any(isinstance(a, RequestBlock) for a in actions)
    assert (state.round, state.step) == (0, PROPOSE_STEP)


def test_proposer_gets_a_value_and_proposes_it() -> None:  # lines 14-19
    state, actions = machine(1)
    assert RequestBlock(1, 0) in actions
    out = feed(state, BlockReady(1, 0, A))
    sent = [a.message for a in out if isinstance(a, PersistThenSend)]
    assert sent[0].proposal.block_hash == A and sent[0].proposal.pol_round == -1
    assert ("prevote", 0, A) in signed(out)  # it prevotes its own proposal (line 22)


def test_on_proposal_prevotes_a_valid_value() -> None:  # lines 22-27
    state, _ = machine(0)
    out = feed(state, proposal(A))
    assert ValidateBlock(1, A) in out and state.step == PROPOSE_STEP  # waits for valid(v)
    out = feed(state, BlockValidity(1, A, True))
    assert signed(out) == [("prevote", 0, A)] and state.step == PREVOTE_STEP


def test_on_proposal_prevotes_nil_for_an_invalid_value() -> None:  # line 26
    state, _ = machine(0)
    out = feed(state, proposal(A), BlockValidity(1, A, False))
    assert signed(out) == [("prevote", 0, None)]


def test_on_proposal_respects_the_lock() -> None:  # line 23: lockedRound = -1 or lockedValue = v
    state, _ = machine(0)
    lock_on_a_in_round_0(state)
    feed(state, TimeoutFired("precommit", 1, 0))  # move to round 1 without deciding
    out = feed(state, proposal(B, round_=1), BlockValidity(1, B, True))
    assert signed(out) == [("prevote", 1, None)]


def test_on_proposal_with_pol_unlocks() -> None:  # lines 28-33: lockedRound <= vr
    state, _ = machine(0)
    lock_on_a_in_round_0(state)
    feed(state, TimeoutFired("precommit", 1, 0))
    # round 1: the others see a polka for B; we time out and precommit nil
    feed(state, vote(1, PREVOTE, B, 1), vote(2, PREVOTE, B, 1), vote(3, PREVOTE, B, 1))
    feed(state, TimeoutFired("propose", 1, 1), TimeoutFired("prevote", 1, 1))
    feed(state, vote(1, PRECOMMIT, None, 1), vote(2, PRECOMMIT, None, 1), TimeoutFired("precommit", 1, 1))
    assert state.round == 2 and state.locked_value == A
    # round 2: proposer 3 re-proposes B with the proof-of-lock of round 1 >= our lock round 0
    out = feed(state, proposal(B, round_=2, pol_round=1), BlockValidity(1, B, True))
    assert signed(out) == [("prevote", 2, B)]


def test_on_proposal_with_pol_older_than_lock_prevotes_nil() -> None:  # line 32
    state, _ = machine(0)
    feed(state, vote(1, PREVOTE, B, 0), vote(2, PREVOTE, B, 0), vote(3, PREVOTE, B, 0))  # polka B in round 0
    feed(state, TimeoutFired("propose", 1, 0), TimeoutFired("prevote", 1, 0))
    for r in (0,):
        feed(state, vote(1, PRECOMMIT, None, r), vote(2, PRECOMMIT, None, r), TimeoutFired("precommit", 1, r))
    # round 1: lock on A
    feed(state, proposal(A, 1), BlockValidity(1, A, True), vote(2, PREVOTE, A, 1), vote(3, PREVOTE, A, 1))
    assert state.locked_round == 1
    feed(state, vote(2, PRECOMMIT, None, 1), vote(3, PRECOMMIT, None, 1), TimeoutFired("precommit", 1, 1))
    out = feed(state, proposal(B, round_=2, pol_round=0), BlockValidity(1, B, True))
    assert signed(out) == [("prevote", 2, None)]


def test_on_prevote_any_quorum_arms_timeout_prevote() -> None:  # lines 34-35
    state, _ = machine(0)
    feed(state, TimeoutFired("propose", 1, 0))
    out = feed(state, vote(1, PREVOTE, A), vote(2, PREVOTE, B))
    assert ScheduleTimeout("prevote", 1, 0, 500) in out
    later = feed(state, vote(3, PREVOTE, A))
    assert not any(isinstance(a, ScheduleTimeout) and a.kind == "prevote" for a in later)  # only the first time


def test_on_prevote_quorum_locks_and_precommits() -> None:  # lines 36-43
    state, _ = machine(0)
    out = feed(state, proposal(A), BlockValidity(1, A, True), vote(1, PREVOTE, A), vote(2, PREVOTE, A))
    assert ("precommit", 0, A) in signed(out)
    assert (state.locked_value, state.locked_round, state.valid_value, state.valid_round) == (A, 0, A, 0)
    record = [a for a in out if isinstance(a, PersistThenSend)][-1]
    assert record.lock.locked_value == A and len(record.lock.pol) == 3
    assert state.step == PRECOMMIT_STEP


def test_on_prevote_quorum_after_precommit_only_updates_valid_value() -> None:  # lines 36, 42-43
    state, _ = machine(0)
    feed(state, TimeoutFired("propose", 1, 0), vote(1, PREVOTE, None), vote(2, PREVOTE, None))
    assert state.step == PRECOMMIT_STEP
    out = feed(state, proposal(A), BlockValidity(1, A, True), vote(1, PREVOTE, A, 0), vote(3, PREVOTE, A))
    assert state.locked_value is None and state.valid_value is None  # validator 1 counted once for nil...
    feed(state, vote(2, PREVOTE, A))  # ...and once for A: now A has 3 prevotes
    assert state.valid_value == A and state.valid_round == 0 and state.locked_value is None
    assert not [s for s in signed(out) if s[0] == "precommit" and s[2] == A]


def test_on_nil_prevote_quorum_precommits_nil() -> None:  # lines 44-46
    state, _ = machine(0)
    out = feed(state, TimeoutFired("propose", 1, 0), vote(1, PREVOTE, None), vote(2, PREVOTE, None))
    assert signed(out) == [("prevote", 0, None), ("precommit", 0, None)]


def test_on_precommit_any_quorum_arms_timeout_precommit() -> None:  # lines 47-48
    state, _ = machine(0)
    out = feed(state, vote(1, PRECOMMIT, A), vote(2, PRECOMMIT, None), vote(3, PRECOMMIT, B))
    assert ScheduleTimeout("precommit", 1, 0, 500) in out


def test_on_precommit_quorum_decides_with_a_valid_certificate() -> None:  # lines 49-54
    state, _ = machine(0)
    out = feed(state, vote(1, PRECOMMIT, A), vote(2, PRECOMMIT, A), vote(3, PRECOMMIT, A))
    decide = [a for a in out if isinstance(a, Decide)]
    assert len(decide) == 1 and decide[0].block_hash == A
    validate_commit(decide[0].commit, chain_id=CHAIN, validators=VALIDATORS, height=1, block_hash=A)
    assert feed(state, vote(0, PRECOMMIT, A)) == []  # decided: waits for StartHeight


def test_on_f_plus_one_higher_round_skips() -> None:  # lines 55-56
    state, _ = machine(0)
    feed(state, vote(2, PREVOTE, A, 5))
    assert state.round == 0
    out = feed(state, vote(3, PRECOMMIT, None, 5))
    assert state.round == 5 and ScheduleTimeout("propose", 1, 5, compute_timeout(state.config, "propose", 5)) in out


def test_on_timeout_propose_prevotes_nil() -> None:  # lines 57-60
    state, _ = machine(0)
    assert signed(feed(state, TimeoutFired("propose", 1, 0))) == [("prevote", 0, None)]
    assert feed(state, TimeoutFired("propose", 1, 7)) == []  # stale timeouts are ignored


def test_on_timeout_prevote_precommits_nil() -> None:  # lines 61-64
    state, _ = machine(0)
    out = feed(state, TimeoutFired("propose", 1, 0), TimeoutFired("prevote", 1, 0))
    assert signed(out)[-1] == ("precommit", 0, None)


def test_on_timeout_precommit_starts_next_round() -> None:  # lines 65-67
    state, _ = machine(0)
    out = feed(state, TimeoutFired("precommit", 1, 0))
    assert state.round == 1 and ScheduleTimeout("propose", 1, 1, 1500) in out


def test_timeouts_grow_linearly() -> None:
    state, _ = machine(0)
    assert [compute_timeout(state.config, "propose", r) for r in range(3)] == [1000, 1500, 2000]
    assert [compute_timeout(state.config, "precommit", r) for r in range(3)] == [500, 1000, 1500]


def test_proposer_reproposes_valid_value_with_its_proof_of_lock() -> None:  # lines 15-16
    state, _ = machine(2)  # proposer of round 1 at height 1
    feed(state, proposal(A), BlockValidity(1, A, True), vote(0, PREVOTE, A), vote(1, PREVOTE, A))
    out = feed(state, TimeoutFired("precommit", 1, 0))
    sent = [a.message for a in out if isinstance(a, PersistThenSend)]
    assert sent[0].proposal.block_hash == A and sent[0].proposal.pol_round == 0
    assert sum(isinstance(a, Broadcast) and isinstance(a.message, SignedVote) for a in out) == 3


def test_commit_certificate_decides_a_lagging_machine() -> None:
    other, _ = machine(1)
    out = feed(other, vote(0, PRECOMMIT, A), vote(2, PRECOMMIT, A), vote(3, PRECOMMIT, A))
    commit = next(a for a in out if isinstance(a, Decide)).commit
    state, _ = machine(0)
    assert feed(state, CommitReceived(commit)) == [Decide(1, A, commit)]


def test_restore_never_signs_a_second_different_vote() -> None:
    state, _ = machine(0)
    records = [a for a in feed(state, proposal(A), BlockValidity(1, A, True)) if isinstance(a, PersistThenSend)]
    assert signed(records) == [("prevote", 0, A)]
    restored, out = restore(state.config, 1, None, records)
    assert restored.step == PREVOTE_STEP
    # the timeout that would make a fresh machine prevote nil re-sends the old vote instead
    again = feed(restored, TimeoutFired("propose", 1, 0))
    assert signed(again) == []
    fresh, _ = machine(0)
    assert signed(feed(fresh, TimeoutFired("propose", 1, 0))) == [("prevote", 0, None)]  # what amnesia does


def test_restore_keeps_the_lock() -> None:
    state, _ = machine(0)
    out = feed(state, proposal(A), BlockValidity(1, A, True), vote(1, PREVOTE, A), vote(2, PREVOTE, A))
    restored, _ = restore(state.config, 1, None, [a for a in out if isinstance(a, PersistThenSend)])
    assert (restored.locked_value, restored.locked_round, restored.step) == (A, 0, PRECOMMIT_STEP)


def test_rebroadcast_resends_latest_messages() -> None:
    state, _ = machine(0)
    feed(state, TimeoutFired("propose", 1, 0))
    out = feed(state, TimeoutFired("rebroadcast", 1, 0))
    assert [a.message.vote.type for a in out if isinstance(a, Broadcast)] == ["prevote"]
    # A round that keeps stalling re-broadcasts after twice the wait each time, up to 8 x.
    waits = [
        next(a.delay_ms for a in feed(state, TimeoutFired("rebroadcast", 1, 0)) if isinstance(a, ScheduleTimeout))
        for _ in range(4)
    ]
    assert ScheduleTimeout("rebroadcast", 1, 0, 4000) in out
    assert waits == [8000, 16000, 16000, 16000]


def test_round_change_proof_goes_only_to_validators_still_in_the_previous_round() -> None:
    state, _ = machine(0)
    # Round 0: 2f+1 precommits (validators 1, 2, 3), validator 3 also prevoted there.
    feed(state, vote(1, PRECOMMIT, None), vote(2, PRECOMMIT, None), vote(3, PRECOMMIT, None))
    feed(state, TimeoutFired("rebroadcast", 1, 0))  # round 0 stalled once: its next wait doubled
    started = feed(state, TimeoutFired("precommit", 1, 0))
    assert state.round == 1
    assert ScheduleTimeout("rebroadcast", 1, 1, 2000) in started  # a new round starts over
    feed(state, vote(1, PREVOTE, None, 1), vote(2, PREVOTE, None, 1))  # 1 and 2 have left round 0
    out = feed(state, TimeoutFired("rebroadcast", 1, 1))
    relayed = [a for a in out if isinstance(a, Broadcast) and a.to is not None]
    assert [a.message.vote.validator for a in relayed] == [1, 2, 3]
    assert {a.to for a in relayed} == {frozenset({3})}
    assert all(a.to is None for a in out if isinstance(a, Broadcast) and a not in relayed)


def test_equivocation_is_reported_and_not_counted() -> None:
    state, _ = machine(0)
    out = feed(state, vote(1, PRECOMMIT, A), vote(1, PRECOMMIT, B), vote(1, PRECOMMIT, B))
    assert sum(isinstance(a, ReportEvidence) for a in out) == 1
    assert state.book.total(0, PRECOMMIT) == 1


def test_next_height_messages_are_replayed() -> None:
    state, _ = machine(0)
    feed(state, vote(1, PRECOMMIT, A), vote(2, PRECOMMIT, A), vote(3, PRECOMMIT, A))
    feed(state, vote(1, PREVOTE, B, 0, height=2), vote(2, PREVOTE, B, 0, height=2))
    feed(state, StartHeight(2, None))
    assert state.book.count(0, PREVOTE, B) == 2


def test_wrong_proposer_and_wrong_chain_are_ignored() -> None:
    state, _ = machine(0)
    bad = ProposalReceived(sign_proposal(Proposal(CHAIN, 1, 0, A, -1, 2), KEYS[2]))
    other = VoteReceived(Vote("other", PREVOTE, 1, 0, A, 1).sign(KEYS[1]))
    assert feed(state, bad, other) == [] and not state.book.proposals


def test_fake_proof_of_lock_is_prevoted_nil() -> None:  # line 28: 2f+1 PREVOTE(h, vr, v) required
    state, _ = machine(0)
    lock_on_a_in_round_0(state)
    feed(state, TimeoutFired("precommit", 1, 0))
    # round 1: proposer 2 re-proposes B claiming pol_round 0, where B has one prevote (its own)
    out = feed(state, vote(2, PREVOTE, B, 0), proposal(B, round_=1, pol_round=0), BlockValidity(1, B, True))
    assert signed(out) == [] and state.step == PROPOSE_STEP
    assert signed(feed(state, TimeoutFired("propose", 1, 1))) == [("prevote", 1, None)]


def test_fake_proof_of_lock_is_prevoted_nil_when_unlocked() -> None:
    state, _ = machine(0)
    feed(state, TimeoutFired("precommit", 1, 0))
    out = feed(state, vote(2, PREVOTE, B, 0), vote(3, PREVOTE, B, 0), proposal(B, round_=1, pol_round=0))
    assert signed(out) == []  # two prevotes are not 2f+1 = 3
    assert signed(feed(state, TimeoutFired("propose", 1, 1))) == [("prevote", 1, None)]


def test_proof_of_lock_from_a_round_not_before_this_one_is_refused() -> None:  # line 28: vr < r
    state, _ = machine(0)
    feed(state, vote(1, PREVOTE, B, 1), vote(2, PREVOTE, B, 1), vote(3, PREVOTE, B, 1))
    feed(state, TimeoutFired("precommit", 1, 0))
    assert state.round == 1
    assert signed(feed(state, proposal(B, round_=1, pol_round=1), BlockValidity(1, B, True))) == []


def test_far_future_votes_take_at_most_two_rounds_per_validator() -> None:
    state, _ = machine(0)
    feed(state, *[vote(3, PREVOTE, A, r) for r in (10, 1_000, 5, 999_999, 7)])
    far = sorted(r for (r, _), box in state.book.rounds.items() if 3 in box.votes and r > 1)
    assert far == [1_000, 999_999]  # the two highest; lower ones were forgotten or ignored
    feed(state, vote(3, PREVOTE, A, 1), vote(2, PREVOTE, A, 1))  # round + 1 is always taken
    assert state.book.count(1, PREVOTE, A) == 2


def test_round_skip_still_works_when_far_rounds_are_bounded() -> None:  # lines 55-56
    state, _ = machine(0)
    for r in range(2, 40):  # a Byzantine validator fills its share of far rounds
        feed(state, vote(1, PREVOTE, None, r))
    feed(state, vote(2, PRECOMMIT, None, 30), vote(3, PRECOMMIT, None, 30))
    assert state.round == 30


def test_mutant_hooks_are_the_rules() -> None:
    """The rules the planted bugs of node.sim.mutants replace behave as Algorithm 1 says."""
    state, _ = machine(0)
    assert is_free_to_prevote(state, A, -1)
    lock_on_a_in_round_0(state)
    assert is_free_to_prevote(state, A, -1) and not is_free_to_prevote(state, B, -1)
    assert is_free_to_prevote(state, B, 0) and not is_free_to_prevote(state, B, -1)
    feed(state, TimeoutFired("precommit", 1, 0))
    assert is_pol_shown(state, A, 0) and not is_pol_shown(state, B, 0) and not is_pol_shown(state, A, 1)


def test_valid_block_answered_unavailable_is_asked_again_next_round() -> None:
    """Regression (found by the simulator): the driver answers valid(v) = false when it
    cannot fetch the block; the machine kept that for the whole height and prevoted nil
    for a good block in every later round, which stalled the chain once a Byzantine
    validator fell silent."""
    state, _ = machine(0)
    feed(state, proposal(A), BlockValidity(1, A, False), TimeoutFired("precommit", 1, 0))
    assert state.round == 1 and A not in state.validity
    out = feed(state, proposal(A, round_=1))
    assert ValidateBlock(1, A) in out
    assert signed(feed(state, BlockValidity(1, A, True))) == [("prevote", 1, A)]


def test_precommits_that_ended_the_previous_round_are_relayed() -> None:
    """Regression (found by the simulator): a Byzantine validator showed its round-0
    precommit to one validator only and fell silent; that one left round 0, the others
    waited forever for a third precommit. The machine now re-sends the 2f+1 precommits
    that let it leave a round."""
    state, _ = machine(0)
    feed(state, vote(1, PRECOMMIT, None), vote(2, PRECOMMIT, None), vote(3, PRECOMMIT, B))
    feed(state, TimeoutFired("precommit", 1, 0))
    out = feed(state, TimeoutFired("rebroadcast", 1, 1))
    relayed = [a.message.vote for a in out if isinstance(a, Broadcast) and isinstance(a.message, SignedVote)]
    assert [(v.validator, v.round, v.type) for v in relayed] == [(1, 0, PRECOMMIT), (2, 0, PRECOMMIT), (3, 0, PRECOMMIT)]
