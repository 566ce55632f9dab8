"""A precommit signature is verified once per node; every other rule of a certificate
is checked each time, and the cache stays bounded whatever a Byzantine validator signs."""

from __future__ import annotations

from typing import Any

import pytest

import ledger.blocks
from ledger.blocks import PRECOMMIT, PREVOTE, Vote, build_commit, validate_commit
from ledger.errors import CommitSignatureError, CommitTargetError
from ledger.keys import SigningKey
from node.verified_precommits import HEIGHTS_AHEAD, VerifiedPrecommits

CHAIN = "test-chain"
KEYS = [SigningKey.from_label(f"verified-precommits-{i}") for i in range(4)]
VALIDATORS = tuple(k.public for k in KEYS)
BLOCK = b"\x11" * 32


def _precommit(height: int, validator: int, block_hash: bytes | None = BLOCK, vote_type: str = PRECOMMIT) -> Any:
    return Vote(CHAIN, vote_type, height, 0, block_hash, validator).sign(KEYS[validator])


def _validate(commit: Any, cache: VerifiedPrecommits) -> None:
    validate_commit(
        commit, chain_id=CHAIN, validators=VALIDATORS, height=commit.height, block_hash=commit.block_hash,
        verified=cache.digests,
    )


@pytest.fixture
def no_verification(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every signature verification in ledger.blocks fails (and is counted)."""
    calls: list[int] = []

    def refuse(public: bytes, message: bytes, sig: bytes, error: type[Exception], what: str) -> None:
        calls.append(1)
        raise error(f"{what}: verification was attempted")

    monkeypatch.setattr(ledger.blocks, "verify_bytes", refuse)
    return calls


def test_a_certificate_of_remembered_precommits_is_not_verified_again(no_verification: list[int]) -> None:
    cache = VerifiedPrecommits(VALIDATORS, head=0)
    votes = [_precommit(1, v) for v in (0, 1, 2)]
    for vote in votes:
        cache.add_vote(vote)
    _validate(build_commit(votes), cache)
    assert no_verification == []


def test_a_signature_not_remembered_is_verified(no_verification: list[int]) -> None:
    cache = VerifiedPrecommits(VALIDATORS, head=0)
    for v in (0, 1):
        cache.add_vote(_precommit(1, v))
    with pytest.raises(CommitSignatureError, match="precommit of validator 2"):
        _validate(build_commit([_precommit(1, v) for v in (0, 1, 2)]), cache)
    assert no_verification == [1]


def test_a_forged_signature_beside_a_remembered_one_is_refused() -> None:
    cache = VerifiedPrecommits(VALIDATORS, head=0)
    votes = [_precommit(1, v) for v in (0, 1, 2)]
    for vote in votes:
        cache.add_vote(vote)
    forged = build_commit(votes)
    entries = list(forged.signatures)
    entries[1] = type(entries[1])(entries[1].validator, bytes(64))
    with pytest.raises(CommitSignatureError, match="precommit of validator 1"):
        _validate(type(forged)(forged.height, forged.round, forged.block_hash, tuple(entries)), cache)


def test_other_rules_are_still_checked_for_remembered_signatures() -> None:
    cache = VerifiedPrecommits(VALIDATORS, head=0)
    votes = [_precommit(1, v) for v in (0, 1, 2)]
    for vote in votes:
        cache.add_vote(vote)
    with pytest.raises(CommitTargetError):
        validate_commit(
            build_commit(votes), chain_id=CHAIN, validators=VALIDATORS, height=2, block_hash=BLOCK,
            verified=cache.digests,
        )


def test_prevotes_and_nil_precommits_are_not_remembered() -> None:
    cache = VerifiedPrecommits(VALIDATORS, head=0)
    cache.add_vote(_precommit(1, 0, vote_type=PREVOTE))
    cache.add_vote(_precommit(1, 1, block_hash=None))
    assert len(cache.digests) == 0


def test_only_heights_near_the_head_are_remembered_and_old_ones_are_forgotten() -> None:
    cache = VerifiedPrecommits(VALIDATORS, head=5)
    cache.add_vote(_precommit(4, 0))
    cache.add_vote(_precommit(5 + HEIGHTS_AHEAD + 1, 0))
    assert len(cache.digests) == 0
    for height in range(5, 5 + HEIGHTS_AHEAD + 1):
        cache.add_vote(_precommit(height, 0))
    assert len(cache.digests) == HEIGHTS_AHEAD + 1
    cache.forget_below(6)
    assert len(cache.digests) == HEIGHTS_AHEAD
    cache.add_commit(build_commit([_precommit(6, v) for v in (0, 1, 2)]), CHAIN)
    assert len(cache.digests) == HEIGHTS_AHEAD + 2  # validator 0's height-6 signature was already there
