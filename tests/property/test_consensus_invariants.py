"""Hypothesis: whatever events arrive, and across restarts from the write-ahead records,
a machine never signs two different votes for one height, round and type."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.blocks import PRECOMMIT, PREVOTE, Proposal, SignedVote, Vote
from ledger.keys import SigningKey
from node.consensus import (
    BlockValidity,
    ConsensusConfig,
    PersistThenSend,
    ProposalReceived,
    StartHeight,
    TimeoutFired,
    VoteReceived,
    new_state,
    restore,
    step,
)
from node.messages import sign_proposal
from node.sim.invariants import compute_book_bound

KEYS = [SigningKey.from_label(f"sim validator {i}") for i in range(4)]
CONFIG = ConsensusConfig("c", tuple(k.public for k in KEYS), 0, KEYS[0])
VALUES = [b"\x01" * 32, b"\x02" * 32, None]

votes = st.builds(
    lambda i, t, r, v: VoteReceived(Vote("c", t, 1, r, v, i).sign(KEYS[i])),
    st.integers(1, 3), st.sampled_from([PREVOTE, PRECOMMIT]), st.integers(0, 3), st.sampled_from(VALUES),
)
proposals = st.builds(
    lambda r, v, pol: ProposalReceived(sign_proposal(Proposal("c", 1, r, v, pol, (1 + r) % 4), KEYS[(1 + r) % 4])),
    st.integers(0, 3), st.sampled_from(VALUES[:2]), st.integers(-1, 2),
)
timeouts = st.builds(
    lambda k, r: TimeoutFired(k, 1, r), st.sampled_from(["propose", "prevote", "precommit", "rebroadcast"]),
    st.integers(0, 3),
)
validity = st.builds(lambda v, ok: BlockValidity(1, v, ok), st.sampled_from(VALUES[:2]), st.booleans())
events = st.lists(st.one_of(votes, proposals, timeouts, validity, st.just("restart")), max_size=60)


@settings(max_examples=150, deadline=None)
@given(events)
def test_never_signs_two_different_votes(script: list[Any]) -> None:
    state, actions = step(new_state(CONFIG), StartHeight(1, None))
    wal = [a for a in actions if isinstance(a, PersistThenSend)]
    for event in script:
        if event == "restart":
            state, actions = restore(CONFIG, 1, None, list(wal))
        else:
            state, actions = step(state, event)
        wal.extend(a for a in actions if isinstance(a, PersistThenSend))
        if state.decided is not None:
            break
    signed: dict[tuple[int, str], SignedVote] = {}
    for record in wal:
        if isinstance(record.message, SignedVote):
            v = record.message.vote
            assert signed.setdefault((v.round, v.type), record.message) == record.message


far_votes = st.builds(
    lambda i, t, r, v: VoteReceived(Vote("c", t, 1, r, v, i).sign(KEYS[i])),
    st.integers(1, 3), st.sampled_from([PREVOTE, PRECOMMIT]),
    st.one_of(st.integers(0, 6), st.integers(7, 1_000_000)), st.sampled_from([*VALUES, b"\x03" * 32, b"\x04" * 32]),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(far_votes, proposals, timeouts, validity), max_size=80))
def test_vote_book_stays_bounded(script: list[Any]) -> None:
    """Whatever votes arrive, for whatever rounds and values, the book never holds more
    than the bound the simulator checks (decision 0011)."""
    state, _ = step(new_state(CONFIG), StartHeight(1, None))
    for event in script:
        state, _ = step(state, event)
        assert state.book.get_size() <= compute_book_bound(4, state.round)
