"""Equivocation evidence: the independent check, and the durable, bounded, de-duplicated log."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from ledger.blocks import PRECOMMIT, PREVOTE, Proposal, SignedVote, Vote
from ledger.errors import EvidenceInvalidError, StoreWriteError, VoteError, VoteSignatureError
from ledger.keys import SigningKey
from node.evidence import FILE_NAME, EvidenceEntry, EvidenceLog, validate_evidence
from node.messages import SignedProposal, sign_proposal
from node.votes import Evidence, VoteBook

CHAIN = "evidence-test"
KEYS = [SigningKey.from_label(f"evidence validator {i}") for i in range(4)]
VALIDATORS = [k.public for k in KEYS]
A, B, C = b"\xaa" * 32, b"\xbb" * 32, b"\xcc" * 32


def vote(validator: int, value: bytes | None, *, height: int = 5, round_: int = 0, type_: str = PREVOTE,
         key: SigningKey | None = None, chain: str = CHAIN) -> SignedVote:
    return Vote(chain, type_, height, round_, value, validator).sign(key or KEYS[validator])


def proposal(proposer: int, value: bytes, *, pol_round: int = -1) -> SignedProposal:
    return sign_proposal(Proposal(CHAIN, 5, 1, value, pol_round, proposer), KEYS[proposer])


def equivocation(validator: int = 1, *, height: int = 5, round_: int = 0, type_: str = PREVOTE) -> Evidence:
    return Evidence(vote(validator, A, height=height, round_=round_, type_=type_),
                    vote(validator, B, height=height, round_=round_, type_=type_))


# --- validate_evidence ---------------------------------------------------------------


def test_evidence_from_the_vote_book_validates() -> None:
    book = VoteBook()
    book.add_vote(vote(2, A))
    _, evidence = book.add_vote(vote(2, None))
    assert evidence is not None
    validate_evidence(evidence, CHAIN, VALIDATORS)


def test_two_proposals_validate() -> None:
    validate_evidence(Evidence(proposal(2, A), proposal(2, B)), CHAIN, VALIDATORS)
    # Same block, another proof-of-lock round: still two different signed proposals.
    validate_evidence(Evidence(proposal(2, A), proposal(2, A, pol_round=0)), CHAIN, VALIDATORS)


@pytest.mark.parametrize(
    ("second", "match"),
    [
        (vote(2, B), "expected one"),                               # another validator
        (vote(1, B, height=6), "expected one"),                     # another height
        (vote(1, B, round_=1), "expected one"),                     # another round
        (vote(1, B, type_=PRECOMMIT), "expected one"),              # another type
        (vote(1, A), "different"),                                  # the same vote twice
        (vote(1, B, chain="other-chain"), "expected chain"),
    ],
)
def test_not_an_equivocation(second: SignedVote, match: str) -> None:
    with pytest.raises(EvidenceInvalidError, match=match) as caught:
        validate_evidence(Evidence(vote(1, A), second), CHAIN, VALIDATORS)
    assert caught.value.code == "vote.evidence_invalid"


def test_a_vote_and_a_proposal_are_not_evidence() -> None:
    with pytest.raises(EvidenceInvalidError, match="two votes or two proposals"):
        validate_evidence(Evidence(vote(1, A), proposal(1, B)), CHAIN, VALIDATORS)


def test_forged_signature_is_refused() -> None:
    # Validator 3 frames validator 1: the second vote names 1 but is signed by 3.
    with pytest.raises(VoteSignatureError):
        validate_evidence(Evidence(vote(1, A), vote(1, B, key=KEYS[3])), CHAIN, VALIDATORS)
    with pytest.raises(VoteSignatureError):
        validate_evidence(Evidence(vote(1, A, key=KEYS[3]), vote(1, B)), CHAIN, VALIDATORS)


def test_validator_outside_the_set_is_refused() -> None:
    outsider = SigningKey.from_label("outsider")
    with pytest.raises(VoteError):
        validate_evidence(Evidence(vote(9, A, key=outsider), vote(9, B, key=outsider)), CHAIN, VALIDATORS)


# --- the log -------------------------------------------------------------------------


def test_entries_survive_restart_byte_for_byte(tmp_path: Path) -> None:
    log = EvidenceLog(tmp_path / "evidence", clock=lambda: 1234)
    first = log.append(equivocation(1))
    second = log.append(Evidence(proposal(2, A), proposal(2, B)))
    assert first is not None and second is not None and (first.seq, second.seq) == (0, 1)
    log.close()
    again = EvidenceLog(tmp_path / "evidence")
    assert again.entries() == [first, second]
    for entry in again.entries():
        validate_evidence(entry.evidence, CHAIN, VALIDATORS)
    item = again.entries()[1].to_json()
    assert item["type"] == "proposal" and item["validator"] == 2 and item["seen_ms"] == 1234
    assert SignedProposal.decode(bytes.fromhex(item["second"])) == proposal(2, B)
    again.close()


def test_each_line_is_the_canonical_messages_in_json(tmp_path: Path) -> None:
    log = EvidenceLog(tmp_path, clock=lambda: 7)
    evidence = equivocation(1, height=9, round_=2, type_=PRECOMMIT)
    log.append(evidence)
    log.close()
    line = json.loads((tmp_path / FILE_NAME).read_text())
    assert line == {
        "validator": 1, "height": 9, "round": 2, "type": "precommit", "seen_ms": 7,
        "first": evidence.first.encode().hex(), "second": evidence.second.encode().hex(),
    }


def test_deduplicated_by_validator_height_round_type_across_restart(tmp_path: Path) -> None:
    log = EvidenceLog(tmp_path)
    assert log.append(equivocation(1)) is not None
    # A third value from the same equivocator, same (validator, height, round, type): not kept.
    assert log.append(Evidence(vote(1, A), vote(1, C))) is None
    assert log.append(equivocation(1, type_=PRECOMMIT)) is not None
    log.close()
    again = EvidenceLog(tmp_path)
    assert again.append(equivocation(1)) is None
    assert len(again) == 2
    again.close()


def test_bounded_in_all_and_per_validator(tmp_path: Path) -> None:
    log = EvidenceLog(tmp_path, max_entries=5, max_per_validator=2)
    kept = [log.append(equivocation(1, height=h)) for h in range(1, 5)]
    assert [e is not None for e in kept] == [True, True, False, False]
    for validator in (2, 3):
        for height in (1, 2):
            log.append(equivocation(validator, height=height))
    assert len(log) == 5 and log.dropped == 3
    assert (tmp_path / FILE_NAME).read_bytes().count(b"\n") == 5
    log.close()


def test_pages_by_seq(tmp_path: Path) -> None:
    log = EvidenceLog(tmp_path)
    for height in range(1, 8):
        log.append(equivocation(1, height=height))
    assert [e.seq for e in log.entries(since=0, limit=3)] == [0, 1, 2]
    assert [e.seq for e in log.entries(since=3, limit=3)] == [3, 4, 5]
    assert [e.seq for e in log.entries(since=6, limit=3)] == [6]
    assert log.entries(since=7) == []
    log.close()


def test_torn_last_line_is_cut_and_a_damaged_line_skipped(tmp_path: Path) -> None:
    log = EvidenceLog(tmp_path)
    for height in (1, 2, 3):
        log.append(equivocation(1, height=height))
    log.close()
    path = tmp_path / FILE_NAME
    lines = path.read_bytes().split(b"\n")
    lines[1] = lines[1][:40] + b"#" + lines[1][41:]  # a damaged middle line
    path.write_bytes(b"\n".join(lines[:3]) + b"\n" + b'{"validator": 1, "hei')  # and a torn tail
    again = EvidenceLog(tmp_path)
    assert [(e.seq, e.key[1]) for e in again.entries()] == [(0, 1), (2, 3)]
    entry = again.append(equivocation(1, height=4))
    assert entry is not None and entry.seq == 3  # seq is the line number, damaged lines included
    again.close()
    assert [e.seq for e in EvidenceLog(tmp_path).entries()] == [0, 2, 3]


def test_entry_whose_stated_key_disagrees_with_its_messages_is_refused() -> None:
    entry = EvidenceEntry(0, 1, equivocation(1))
    value = json.loads(entry.encode())
    value["validator"] = 2
    with pytest.raises(EvidenceInvalidError, match="own"):
        EvidenceEntry.decode(json.dumps(value).encode(), 0)


def test_failed_append_raises_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = EvidenceLog(tmp_path)
    log.append(equivocation(1, height=1))
    size = (tmp_path / FILE_NAME).stat().st_size
    real_fsync = os.fsync
    failed: list[int] = []

    def fsync(fd: int) -> None:
        if not failed:  # the entry's fsync fails; cutting it back succeeds
            failed.append(fd)
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(StoreWriteError):
        log.append(equivocation(1, height=2))
    assert (tmp_path / FILE_NAME).stat().st_size == size and len(log) == 1
    # Not remembered, so the same evidence is kept when it is seen again.
    assert log.append(equivocation(1, height=2)) is not None
    log.close()
