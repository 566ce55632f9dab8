"""Vote-set bookkeeping, quorum sizes and equivocation evidence."""

from __future__ import annotations

import pytest

from ledger.blocks import PRECOMMIT, PREVOTE, Proposal, Vote, compute_max_faulty, compute_quorum
from ledger.keys import SigningKey
from node.messages import SignedProposal, sign_proposal
from node.votes import MAX_CATCHUP_ROUNDS, MAX_EVIDENCE_PER_VALIDATOR, AddResult, VoteBook

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


C = b"\xcc" * 32


def test_a_third_value_from_one_validator_is_ignored() -> None:
    book = VoteBook()
    book.add_vote(vote(1, A))
    assert book.add_vote(vote(1, B))[0] is AddResult.CONFLICT
    assert book.add_vote(vote(1, C)) == (AddResult.IGNORED, None)
    assert book.add_vote(vote(1, None)) == (AddResult.IGNORED, None)
    assert (book.count(0, PREVOTE, A), book.count(0, PREVOTE, B), book.count(0, PREVOTE, C)) == (1, 1, 0)
    assert book.get_size() == 2 and len(book.evidence) == 1


def test_a_third_value_a_proposal_names_is_kept() -> None:
    """Regression (found by the simulator): an equivocator's prevote for A at round 0 was
    a third value at some validators and dropped there, so the re-proposal of A with
    pol_round 0 had 2f+1 prevotes at the validators locked on A and 2f at the others,
    for ever."""
    book = VoteBook()
    book.add_vote(vote(1, None))
    book.add_vote(vote(1, B))
    assert book.add_vote(vote(1, A))[0] is AddResult.IGNORED
    book.add_proposal(sign_proposal(Proposal("c", 1, 3, A, 0, 0), KEYS[0]))  # A re-proposed, pol_round 0
    assert book.add_vote(vote(1, A)) == (AddResult.CONFLICT, None)
    assert book.count(0, PREVOTE, A) == 1 and book.total(0, PREVOTE) == 1 and book.get_size() == 4
    assert book.add_vote(vote(1, C))[0] is AddResult.IGNORED
    book.add_proposal(sign_proposal(Proposal("c", 1, 0, C, -1, 1), KEYS[1]))  # C is round 0's proposal
    assert book.add_vote(vote(1, C, 0, PRECOMMIT))[0] is AddResult.ADDED
    book.add_vote(vote(1, B, 0, PRECOMMIT))
    book.add_vote(vote(1, None, 0, PRECOMMIT))
    assert book.add_vote(vote(1, A, 0, PRECOMMIT))[0] is AddResult.IGNORED  # re-proposals name prevotes only


def test_many_proposals_for_one_round_give_one_piece_of_evidence() -> None:
    book = VoteBook()
    for value in (A, B, C):
        book.add_proposal(sign_proposal(Proposal("c", 1, 0, value, -1, 1), KEYS[1]))
    assert len(book.evidence) == 1 and book.get_size() == 1


def test_rounds_up_to_the_horizon_are_always_taken() -> None:
    book = VoteBook()
    for round_ in range(6):
        assert book.add_vote(vote(2, A, round_), horizon=5)[0] is AddResult.ADDED
    assert not book.far_rounds


def test_far_rounds_are_bounded_per_validator_and_keep_the_newest() -> None:
    book = VoteBook()
    assert book.add_vote(vote(2, A, 10), horizon=1)[0] is AddResult.ADDED
    assert book.add_vote(vote(2, A, 20), horizon=1)[0] is AddResult.ADDED
    assert book.add_vote(vote(2, A, 20, PRECOMMIT), horizon=1)[0] is AddResult.ADDED  # a round it holds
    assert book.add_vote(vote(2, A, 5), horizon=1) == (AddResult.IGNORED, None)  # older than both
    assert book.add_vote(vote(2, A, 30), horizon=1)[0] is AddResult.ADDED  # replaces round 10
    assert book.count(10, PREVOTE, A) == 0 and book.count_senders(10) == 0 and (10, PREVOTE) not in book.rounds
    assert book.add_vote(vote(3, A, 10), horizon=1)[0] is AddResult.ADDED  # another validator's share
    assert sorted(book.far_rounds[2]) == [20, 30]


def test_a_far_round_within_the_horizon_is_ordinary_again() -> None:
    book = VoteBook()
    book.add_vote(vote(2, A, 4), horizon=1)
    book.add_vote(vote(2, A, 5), horizon=1)
    # the machine moved to round 4: rounds 4 and 5 no longer use the share
    assert book.add_vote(vote(2, A, 9), horizon=5)[0] is AddResult.ADDED
    assert book.add_vote(vote(2, A, 12), horizon=5)[0] is AddResult.ADDED
    assert book.count(4, PREVOTE, A) == 1 and book.count(5, PREVOTE, A) == 1


def test_far_proposals_share_the_bound() -> None:
    book = VoteBook()
    proposals = [sign_proposal(Proposal("c", 1, r, A, -1, 1), KEYS[1]) for r in (7, 11, 15)]
    for p in proposals:
        assert book.add_proposal(p, horizon=1)[0] is AddResult.ADDED
    assert sorted(book.proposals) == [11, 15]
    assert book.add_proposal(sign_proposal(Proposal("c", 1, 3, A, -1, 1), KEYS[1]), horizon=1)[0] is AddResult.IGNORED


def test_evidence_is_bounded_per_validator() -> None:
    book = VoteBook()
    for round_ in range(MAX_EVIDENCE_PER_VALIDATOR + 5):
        book.add_vote(vote(1, A, round_))
        book.add_vote(vote(1, B, round_))
    assert len(book.evidence) == MAX_EVIDENCE_PER_VALIDATOR


def test_book_size_stays_bounded_whatever_one_validator_signs() -> None:
    book = VoteBook()
    for round_ in range(2, 2_000):
        for value in (A, B, C, None):
            book.add_vote(vote(3, value, round_ * 499 % 1_000_003), horizon=1)
            book.add_vote(vote(3, value, round_ * 499 % 1_000_003, PRECOMMIT), horizon=1)
    assert book.get_size() <= MAX_CATCHUP_ROUNDS * 2 * 2
