"""The machine under a validator set that changes between heights (DESIGN §12): each
height runs with its own set, quorum and proposer rotation, and a validator outside a
height's set follows it without signing."""

from __future__ import annotations

from typing import Any

from ledger.blocks import PRECOMMIT, PREVOTE, Proposal, SignedVote, Vote
from ledger.keys import SigningKey
from node.consensus import (
    NOT_A_MEMBER,
    BlockValidity,
    ConsensusConfig,
    Decide,
    PersistThenSend,
    ProposalReceived,
    RequestBlock,
    StartHeight,
    VoteReceived,
    new_state,
    step,
)
from node.messages import SignedProposal, sign_proposal

CHAIN = "test-chain"
KEYS = [SigningKey.from_label(f"sim validator {i}") for i in range(6)]
FOUR = tuple(k.public for k in KEYS[:4])
FIVE = tuple(k.public for k in KEYS[:5])
BLOCK = b"\xaa" * 32


def config(validators: tuple[bytes, ...], key: SigningKey) -> ConsensusConfig:
    index = validators.index(key.public) if key.public in validators else NOT_A_MEMBER
    return ConsensusConfig(CHAIN, validators, index, key)


def feed(state: Any, *events: Any) -> list[Any]:
    out: list[Any] = []
    for event in events:
        state, actions = step(state, event)
        out.extend(actions)
    return out


def own_messages(actions: list[Any]) -> list[Any]:
    return [a.message for a in actions if isinstance(a, PersistThenSend)]


def votes(validators: tuple[bytes, ...], signers: range, vote_type: str, height: int) -> list[VoteReceived]:
    keys = {k.public: k for k in KEYS}
    return [
        VoteReceived(Vote(CHAIN, vote_type, height, 0, BLOCK, i).sign(keys[validators[i]])) for i in signers
    ]


def test_a_height_under_a_larger_set_needs_its_larger_quorum_and_rotates_over_it() -> None:
    key = KEYS[0]
    state = new_state(config(FOUR, key))
    # height 4 under five validators: proposer (4 + 0) mod 5 = 4, not (4 + 0) mod 4 = 0
    actions = feed(state, StartHeight(4, None, config(FIVE, key)))
    assert not any(isinstance(a, RequestBlock) for a in actions)
    proposal = sign_proposal(Proposal(CHAIN, 4, 0, BLOCK, -1, 4), KEYS[4])
    actions = feed(state, ProposalReceived(proposal), BlockValidity(4, BLOCK, True))
    assert [m.vote.type for m in own_messages(actions)] == [PREVOTE]
    actions += feed(state, *votes(FIVE, range(1, 4), PREVOTE, 4))  # 3 of 5 + own = 4 = quorum
    actions += feed(state, *votes(FIVE, range(1, 3), PRECOMMIT, 4))  # 2 of 5 + own = 3 < 4
    assert not any(isinstance(a, Decide) for a in actions)
    actions = feed(state, *votes(FIVE, range(3, 4), PRECOMMIT, 4))  # the fourth
    assert any(isinstance(a, Decide) for a in actions)


def test_a_validator_outside_the_set_follows_without_signing() -> None:
    outsider = KEYS[5]
    state = new_state(config(FOUR, outsider))
    actions = feed(state, StartHeight(1, None, config(FOUR, outsider)))
    proposal: SignedProposal = sign_proposal(Proposal(CHAIN, 1, 0, BLOCK, -1, 1), KEYS[1])
    actions += feed(state, ProposalReceived(proposal), *votes(FOUR, range(4), PREVOTE, 1),
                    *votes(FOUR, range(3), PRECOMMIT, 1))
    assert own_messages(actions) == []
    assert any(isinstance(a, Decide) for a in actions)


def test_a_removed_validator_stops_signing_at_the_height_it_leaves() -> None:
    key = KEYS[4]
    state = new_state(config(FIVE, key))
    first = feed(
        state, StartHeight(1, None, config(FIVE, key)),
        ProposalReceived(sign_proposal(Proposal(CHAIN, 1, 0, BLOCK, -1, 1), KEYS[1])), BlockValidity(1, BLOCK, True),
    )
    assert [m.vote.type for m in own_messages(first) if isinstance(m, SignedVote)] == [PREVOTE]
    later = feed(
        state, StartHeight(2, None, config(FOUR, key)),
        ProposalReceived(sign_proposal(Proposal(CHAIN, 2, 0, BLOCK, -1, 2), KEYS[2])), BlockValidity(2, BLOCK, True),
        *votes(FOUR, range(4), PREVOTE, 2),
    )
    assert own_messages(later) == []
