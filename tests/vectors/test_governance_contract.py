"""DESIGN §12's worked examples (shared/vectors/contract-governance.json), reproduced:
the join claim and its possession signatures, every record's bytes and state key,
the proposal id, blocks 3-5 across the change from four validators to five.
"""

from __future__ import annotations

from typing import Any

import pytest

from ledger.blocks import CommitCertificate, Header, validate_commit
from ledger.encoding import H, cb
from ledger.genesis import Genesis, compute_validators_hash
from ledger.governance import (
    OfficerRecord,
    Possession,
    ProposalRecord,
    ZoneRecord,
    compute_join_signing_bytes,
    decode_action,
    validate_possession,
)
from ledger.keys import SigningKey
from ledger.membership import compute_genesis_records
from ledger.transactions import Envelope, GovPropose


def _gov(contract: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = contract["governance"]
    return value


def _with_bytes(value: dict[str, Any], fields: set[str]) -> dict[str, Any]:
    return {k: bytes.fromhex(v) if k in fields and isinstance(v, str) else v for k, v in value.items()}


def _envelope(entry: dict[str, Any]) -> Envelope:
    """An envelope from the vector's JSON form (bytes as hex)."""
    tx = dict(entry["tx"])
    tx["signer"] = bytes.fromhex(tx["signer"])
    body = _hexed(tx["body"])
    raw = cb({"tx": {**tx, "body": body}, "sig": bytes.fromhex(entry["sig"])})
    return Envelope.decode(raw)


_HEX_FIELDS = {
    "admin_key", "validator_key", "admin_sig", "validator_sig", "proposal_id", "officer_key", "doc_hash",
    "supersedes", "auditor_key",
}


def _hexed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: bytes.fromhex(v) if k in _HEX_FIELDS and isinstance(v, str) else _hexed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_hexed(v) for v in value]
    return value


def test_join_claim_signing_bytes_and_possession(contract: dict[str, Any]) -> None:
    claim = _gov(contract)["join_claim"]
    value = claim["value"]
    admin, validator = bytes.fromhex(value["admin_key"]), bytes.fromhex(value["validator_key"])
    message = compute_join_signing_bytes(value["chain_id"], value["zone_id"], admin, validator)
    assert message.hex() == claim["signing_bytes"]
    possession = Possession.from_wire(_hexed(claim["possession"]), "possession")
    validate_possession(possession, value["chain_id"], value["zone_id"], admin, validator, new_admin=True, new_validator=True)
    assert possession.to_wire() == _hexed(claim["possession"])
    resigned = Possession.sign(
        value["chain_id"], value["zone_id"], admin, validator,
        new_admin=SigningKey.from_label(f"zoneledger example admin {value['zone_id']}"),
        new_validator=SigningKey.from_label(f"zoneledger example validator {value['zone_id']}"),
    )
    assert resigned == possession


def test_possession_for_another_zone_is_refused(contract: dict[str, Any]) -> None:
    from ledger.errors import GovPossessionError

    claim = _gov(contract)["join_claim"]
    value = claim["value"]
    possession = Possession.from_wire(_hexed(claim["possession"]), "possession")
    with pytest.raises(GovPossessionError):
        validate_possession(
            possession, value["chain_id"], "HU-OTHER", bytes.fromhex(value["admin_key"]),
            bytes.fromhex(value["validator_key"]), new_admin=True, new_validator=True,
        )


def test_genesis_records_in_the_state(contract: dict[str, Any]) -> None:
    genesis = Genesis.from_json(contract["genesis"])
    zones, officers = compute_genesis_records(genesis)
    expected = contract["state"]["genesis_records"]
    ours = {f"zone:{z.zone_id}": z.state_value() for z in zones}
    ours.update({f"officer:{o.officer_key.hex()}": o.state_value() for o in officers})
    assert {label: value.hex() for label, value in ours.items()} == {k: v["value_cb"] for k, v in expected.items()}


@pytest.mark.parametrize("label", [
    "zone:EG-TEDA", "zone:BY-GREATSTONE", "zone:DJ-DIFTZ", "zone:LK-HAMBANTOTA", "zone:HU-CSEPEL",
    "officer:c600a9080109084707a70181f1e2ff5cf9089e758bb425b1b1b6a8559b6e2335",
    "officer:0fd3c26c048fc0995394e6ae0cd7e84215fc4b9d7f962f0e7d003452ad66256c",
    "proposal:1f0ebb7332f048fcc2101d1fb96bcad410e8ef7bc120c44ecca4a1764c475216",
])
def test_record_bytes_and_keys(contract: dict[str, Any], label: str) -> None:
    record = _gov(contract)["records"][label]
    kind, _, name = label.partition(":")
    value = record["value"]
    ours: ZoneRecord | OfficerRecord | ProposalRecord
    if kind == "zone":
        ours = ZoneRecord.from_wire(_hexed(value))
    elif kind == "officer":
        ours = OfficerRecord.from_wire(bytes.fromhex(name), value)
    else:
        approvals = tuple(bytes.fromhex(k) for k in value["approvals"])
        ours = ProposalRecord(bytes.fromhex(name), decode_action(_hexed(value["action"])), approvals, value["status"], 3, 100, 4)
    assert ours.state_value().hex() == record["value_cb"]
    assert ours.state_key.hex() == record["key"]
    assert H(label.encode()).hex() == record["key"]


def test_proposal_id_is_the_propose_transaction_hash(contract: dict[str, Any]) -> None:
    gov = _gov(contract)
    envelope = _envelope(gov["blocks"][0]["txs"][0])
    assert isinstance(envelope.tx.body, GovPropose)
    assert envelope.tx_hash.hex() == gov["proposal_id"]


def test_blocks_3_to_5_across_the_change_of_set(contract: dict[str, Any]) -> None:
    """Header 4 (c + 1) announces the five, block 5 (c + 2) is signed by them."""
    gov = _gov(contract)
    genesis = Genesis.from_json(contract["genesis"])
    before = list(genesis.validators)
    after = [bytes.fromhex(k) for k in gov["bundle_v2"]["validators"]]
    assert compute_validators_hash(after).hex() == gov["validators_hash_after"]
    sets = {3: (before, before), 4: (before, after), 5: (after, after)}
    previous = bytes.fromhex(contract["blocks"][-1]["block_hash"])
    for block in gov["blocks"]:
        header = Header.from_wire(_with_bytes(block["header"], set(Header.HASH_FIELDS)))
        assert header.encode().hex() == block["header_cb"]
        assert header.block_hash.hex() == block["block_hash"]
        assert header.prev_hash == previous
        validators, following = sets[header.height]
        assert header.validators_hash == compute_validators_hash(validators)
        assert header.next_validators_hash == compute_validators_hash(following)
        commit = CommitCertificate.from_json(block["commit"])
        validate_commit(
            commit, chain_id=genesis.chain_id, validators=validators, height=header.height, block_hash=header.block_hash
        )
        previous = header.block_hash


def test_the_ledger_runs_the_change_as_the_contract_does(contract: dict[str, Any]) -> None:
    """The contract's transactions of blocks 3-5, run by our rules after two empty blocks:
    the same records, the set changing at the same height, the new zone's officer writing."""
    from ledger.encoding import jcs
    from scripts.devkit import Alliance

    gov = _gov(contract)
    genesis = Genesis.from_json(contract["genesis"])
    keys = [SigningKey.from_label(v["seed_label"]) for v in contract["keys"]["validators"]]
    alliance = Alliance(genesis, keys, {}, {})
    alliance.known_keys.update({
        SigningKey.from_label(f"zoneledger example validator {z}").public: SigningKey.from_label(f"zoneledger example validator {z}")
        for z in ("HU-CSEPEL",)
    })
    chain = alliance.chain()
    alliance.commit_next(chain, [])
    alliance.commit_next(chain, [])
    hu_validator = bytes.fromhex(gov["join_claim"]["value"]["validator_key"])
    if hu_validator not in alliance.known_keys:
        pytest.fail("the contract's HU-CSEPEL validator key is not the label 'zoneledger example validator HU-CSEPEL'")
    for block in gov["blocks"]:
        entries = []
        for entry in block["txs"]:
            envelope = _envelope(entry)
            content = jcs(gov["hu_certificate"]) if envelope.tx.kind == "doc.issue" else None
            entries.append((envelope, content))
        built = alliance.commit_next(chain, entries)
        assert built.header.validators_hash == bytes.fromhex(block["header"]["validators_hash"])
        assert built.header.next_validators_hash == bytes.fromhex(block["header"]["next_validators_hash"])
        assert built.header.proposer == block["header"]["proposer"]
    for label, record in gov["records"].items():
        kind, _, name = label.partition(":")
        ours: ZoneRecord | OfficerRecord | ProposalRecord | None
        if kind == "zone":
            ours = chain.get_zone(name)
        elif kind == "officer":
            ours = chain.get_officer(bytes.fromhex(name))
        else:
            ours = chain.get_proposal(bytes.fromhex(name))
        assert ours is not None and ours.state_value().hex() == record["value_cb"], label
    assert compute_validators_hash(chain.validators_for(5)).hex() == gov["validators_hash_after"]
    assert chain.validators_for(4) == genesis.validators


def test_bundle_v2_verdict(contract: dict[str, Any]) -> None:
    """A verifier holding only genesis follows the change of set and names the new zone."""
    from ledger.encoding import compute_doc_hash
    from ledger.proofs import verify_bundle

    gov = _gov(contract)
    genesis = Genesis.from_json(contract["genesis"])
    result = verify_bundle(gov["bundle_v2"], genesis, copy_hash=compute_doc_hash(gov["hu_certificate"]))
    assert result.verdict == gov["bundle_v2_verdict"], [c.detail for c in result.checks if not c.ok]
    assert result.zone_name == "Csepel Free Port Logistics Zone"
    assert "HU-CSEPEL" in [v.zone_id for v in result.signing_validators]
