"""The contract's worked examples (shared/vectors/contract.json), reproduced byte for byte."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ledger import errors
from ledger.blocks import CommitCertificate, Header, Vote, validate_commit
from ledger.encoding import H, cb, compute_doc_hash, decode_cb, jcs
from ledger.genesis import Genesis, compute_validators_hash
from ledger.keys import SigningKey
from ledger.transactions import Envelope, validate_signature


def _with_bytes(value: dict[str, Any], fields: set[str]) -> dict[str, Any]:
    return {k: bytes.fromhex(v) if k in fields and isinstance(v, str) else v for k, v in value.items()}


def test_canonical_encodings_accepted(contract: dict[str, Any]) -> None:
    for case in contract["canonical_encoding"]["accept"]:
        value = _with_bytes(case["value"], {"bin"})
        assert cb(value).hex() == case["cb"]
        assert decode_cb(bytes.fromhex(case["cb"])) == value


REJECT_CODES = {
    "unsorted keys": errors.UnsortedKeysError,
    "non-minimal integer": errors.NonMinimalIntegerError,
    "float": errors.FloatError,
    "trailing bytes": errors.TrailingBytesError,
    "duplicate key": errors.DuplicateKeyError,
}


@pytest.mark.parametrize("name", sorted(REJECT_CODES))
def test_canonical_encodings_rejected(contract: dict[str, Any], name: str) -> None:
    with pytest.raises(REJECT_CODES[name]):
        decode_cb(bytes.fromhex(contract["canonical_encoding"]["reject"][name]))


def test_keys_from_labels(contract: dict[str, Any]) -> None:
    officer = contract["keys"]["officer EG-TEDA"]
    assert SigningKey.from_label(officer["seed_label"]).public.hex() == officer["public"]
    for validator in contract["keys"]["validators"]:
        assert SigningKey.from_label(validator["seed_label"]).public.hex() == validator["public"]


def test_genesis_and_validators_hash(contract: dict[str, Any]) -> None:
    genesis = Genesis.from_json(contract["genesis"])
    assert genesis.genesis_hash.hex() == contract["genesis_hash"]
    assert compute_validators_hash(genesis.validators).hex() == contract["validators_hash"]
    assert [v.hex() for v in genesis.validators] == [v["public"] for v in contract["keys"]["validators"]]


def test_document_hash(contract: dict[str, Any], shared_dir: Any) -> None:
    path = shared_dir / contract["document"]["json"].removeprefix("shared/")
    document = json.loads(path.read_text())
    assert compute_doc_hash(document).hex() == contract["document"]["doc_hash"]
    assert H(jcs(document)).hex() == contract["document"]["doc_hash"]


def test_transaction(contract: dict[str, Any]) -> None:
    case = contract["transaction"]
    envelope = Envelope.decode(bytes.fromhex(case["envelope_cb"]))
    assert envelope.tx.signing_bytes().hex() == case["signing_bytes"]
    assert envelope.sig.hex() == case["sig"]
    assert envelope.tx_hash.hex() == case["tx_hash"]
    validate_signature(envelope)
    resigned = envelope.tx.sign(SigningKey.from_label(contract["keys"]["officer EG-TEDA"]["seed_label"]))
    assert resigned.encode().hex() == case["envelope_cb"]
    tx = case["tx"]
    assert envelope.tx.chain_id == tx["chain_id"]
    assert envelope.tx.kind == tx["kind"]
    assert envelope.tx.nonce == tx["nonce"]


def test_vote(contract: dict[str, Any]) -> None:
    case = contract["vote"]
    vote = Vote.from_wire(_with_bytes(case["vote"], {"block_hash"}))
    assert vote.signing_bytes().hex() == case["signing_bytes"]
    key = SigningKey.from_label(contract["keys"]["validators"][vote.validator]["seed_label"])
    assert vote.sign(key).sig.hex() == case["sig"]


def test_blocks_and_commits(contract: dict[str, Any]) -> None:
    genesis = Genesis.from_json(contract["genesis"])
    previous_hash = genesis.genesis_hash
    previous_commit: CommitCertificate | None = None
    for block in contract["blocks"]:
        fields = block["header"]
        header = Header.from_wire(_with_bytes(fields, set(Header.HASH_FIELDS)))
        assert header.encode().hex() == block["header_cb"]
        assert header.block_hash.hex() == block["block_hash"]
        assert header.to_json() == fields
        assert header.prev_hash == previous_hash
        expected_last = bytes(32) if previous_commit is None else previous_commit.commit_hash
        assert header.last_commit_hash == expected_last
        commit = CommitCertificate.from_json(block["commit"])
        assert commit.to_json() == block["commit"]
        validate_commit(
            commit, chain_id=genesis.chain_id, validators=genesis.validators,
            height=header.height, block_hash=header.block_hash,
        )
        previous_hash, previous_commit = header.block_hash, commit


def test_commit_below_quorum_is_refused(contract: dict[str, Any]) -> None:
    genesis = Genesis.from_json(contract["genesis"])
    block = contract["blocks"][0]
    commit = CommitCertificate.from_json(block["commit"])
    short = CommitCertificate(commit.height, commit.round, commit.block_hash, commit.signatures[:2])
    with pytest.raises(errors.CommitQuorumError):
        validate_commit(
            short, chain_id=genesis.chain_id, validators=genesis.validators,
            height=1, block_hash=bytes.fromhex(block["block_hash"]),
        )


def test_commit_signature_for_other_chain_is_refused(contract: dict[str, Any]) -> None:
    genesis = Genesis.from_json(contract["genesis"])
    block = contract["blocks"][0]
    with pytest.raises(errors.CommitSignatureError):
        validate_commit(
            CommitCertificate.from_json(block["commit"]), chain_id="another-chain", validators=genesis.validators,
            height=1, block_hash=bytes.fromhex(block["block_hash"]),
        )


def test_state_values(contract: dict[str, Any]) -> None:
    from ledger.chain import compute_state_value

    for entry in contract["state"]["entries"]:
        v = entry["value"]
        value = compute_state_value(bytes.fromhex(v["doc_hash"]), v["status"], v["version"], v["log_index"])
        assert value.hex() == entry["value_cb"]


def test_state_value_fast_path_equals_cb() -> None:
    from ledger.chain import compute_state_value
    from ledger.encoding import cb as canonical

    for status in ("active", "revoked"):
        for version, index in ((1, 0), (2, 300), (70000, 2**40)):
            fast = compute_state_value(bytes(range(32)), status, version, index)
            assert fast == canonical({"doc_hash": bytes(range(32)), "status": status, "version": version, "log_index": index})
