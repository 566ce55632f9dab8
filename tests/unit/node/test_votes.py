"""Vote-set bookkeeping, quorum sizes and equivocation evidence."""

from __future__ import annotations

import pytest

from ledger.blocks import PRECOMMIT, PREVOTE, Proposal, Vote, compute_max_faulty, compute_quorum
from ledger.keys import SigningKey
from node.messages import SignedProposal, sign_proposal
from node.votes import AddResult, VoteBook

KEYS = [SigningKey.from_label(f"sim validator {i}") for i in range(4)]
A, B = b"\xaa" * 32, b"\xbb" * 32


def vote(validator: int, value: bytes | None, round_: int = 0, vote_type: str = PREVOTE):
    return Vote("c", vote_type, 1, round_, value, validator).sign(KEYS[validator])


@pytest.mark.parametrize("n", range(1, 101))
def test_two_quorums_share_f_plus_one_validators(n: int) -> None:
    q, f = compute_quorum(n), compute_max_faulty(n)
    assert q == (2 * n) // 3 + 1 and f == (n - 1) // 3
    assert q <= n  # a quorum exists among n validators
    assert 2 * q - n >= f + 1  # any two quorums overlap in at least one honest validator
    assert n - f >= q or n < 1  # the honest validators alone form a quorum (liveness)


def test_first_vote_counts_once_and_duplicates_are_ignored() -> None:
    book = VoteBook()
    assert book.add_vote(vote(0, A))[0] is AddResult.ADDED
    assert book.add_vote(vote(0, A))[0] is AddResult.DUPLICATE
    assert book.count(0, PREVOTE, A) == 1 and book.total(0, PREVOTE) == 1


def test_conflicting_vote_is_evidence_and_never_counted_twice() -> None:
    book = VoteBook()
    first, second = vote(1, A), vote(1, B)
    book.add_vote(first)
    result, evidence = book.add_vote(second)
    assert result is AddResult.CONFLICT
    assert evidence is not None and evidence.first == first and evidence.second == second
    assert evidence.key == (1, 1, 0, PREVOTE)
    assert book.total(0, PREVOTE) == 1  # one validator, one vote towards "2f+1 of any"
    assert book.count_senders(0) == 1
    # reporting the same equivocation again yields no new evidence
    assert book.add_vote(second) == (AddResult.DUPLICATE, None)
    assert len(book.evidence) == 1


def test_equivocator_counts_once_per_value() -> None:
    book = VoteBook()
    book.add_vote(vote(1, A))
    book.add_vote(vote(1, None))
    assert book.count(0, PREVOTE, A) == 1 and book.count(0, PREVOTE, None) == 1


def test_votes_of_other_round_or_type_do_not_conflict() -> None:
    book = VoteBook()
    assert book.add_vote(vote(2, A, 0, PREVOTE))[0] is AddResult.ADDED
    assert book.add_vote(vote(2, B, 1, PREVOTE))[0] is AddResult.ADDED
    assert book.add_vote(vote(2, None, 0, PRECOMMIT))[0] is AddResult.ADDED
    assert not book.evidence


def test_two_proposals_for_one_round_are_evidence() -> None:
    book = VoteBook()
    p1 = sign_proposal(Proposal("c", 1, 0, A, -1, 1), KEYS[1])
    p2 = sign_proposal(Proposal("c", 1, 0, B, -1, 1), KEYS[1])
    assert book.add_proposal(p1)[0] is AddResult.ADDED
    result, evidence = book.add_proposal(p2)
    assert result is AddResult.CONFLICT and evidence is not None and evidence.key == (1, 1, 0, "proposal")
    assert book.proposals[0] == p1


def test_quorum_value() -> None:
    book = VoteBook()
    for i in range(3):
        book.add_vote(vote(i, A, 0, PRECOMMIT))
    assert book.get_quorum_value(0, PRECOMMIT, 3) == (True, A)
    assert [sv.vote.validator for sv in book.get_votes_for(0, PRECOMMIT, A)] == [0, 1, 2]


def test_signed_proposal_round_trip_and_verify() -> None:
    p = sign_proposal(Proposal("c", 1, 0, A, -1, 1), KEYS[1])
    assert SignedProposal.decode(p.encode()) == p
    p.verify([k.public for k in KEYS])
    forged = SignedProposal(Proposal("c", 1, 0, A, -1, 2), p.sig)
    from ledger.errors import VoteSignatureError

    with pytest.raises(VoteSignatureError):
        forged.verify([k.public for k in KEYS])
