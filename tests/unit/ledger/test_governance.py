"""Governance on a running chain (DESIGN §12): proposals, approvals, the set changing
two heights after the block that commits a change, and every refusal."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from ledger import errors
from ledger.chain import Chain
from ledger.encoding import compute_doc_hash
from ledger.genesis import compute_validators_hash
from ledger.governance import (
    PROPOSAL_EXECUTED,
    PROPOSAL_EXPIRED,
    PROPOSAL_OPEN,
    ZONE_REMOVED,
    AuditorAdd,
    ConsensusSet,
    Possession,
    ZoneAdd,
    ZoneRemove,
    ZoneRotate,
)
from ledger.keys import SigningKey
from ledger.proofs import build_bundle, verify_bundle
from ledger.transactions import Envelope, GovPropose
from scripts.devkit import Alliance, load_example, make_alliance, with_number

COO = "certificate_of_origin"
ZONES = ["EG-TEDA", "BY-GREATSTONE", "DJ-DIFTZ", "LK-HAMBANTOTA"]


def coo(number: str, country: str = "EG") -> dict[str, Any]:
    document = with_number(load_example("coo_preferential.json"), COO, number)
    document["issuer"]["postalAddress"]["countryCode"] = country
    document["supplyChainConsignment"]["exportCountry"]["code"] = country
    return document


def refused(alliance: Alliance, chain: Chain, entries: list[tuple[Envelope, bytes | None]], error: type[Exception]) -> str:
    """The next block with ``entries`` is refused with ``error``; nothing changes."""
    height, root = chain.height, chain.head_hash
    with pytest.raises(error) as caught:
        alliance.propose(chain, entries)
    assert (chain.height, chain.head_hash) == (height, root)
    return str(caught.value)


def add_zone(alliance: Alliance, chain: Chain, zone_id: str = "HU-CSEPEL", country: str = "HU") -> int:
    """Propose and approve ``zone.add`` (three of four admins) in one block; its height."""
    action = alliance.zone_add(zone_id, "Csepel Free Port", country)
    propose = alliance.gov_propose("EG-TEDA", action)
    alliance.commit_next(chain, [
        (propose, None),
        (alliance.gov_approve("BY-GREATSTONE", propose.tx_hash), None),
        (alliance.gov_approve("DJ-DIFTZ", propose.tx_hash), None),
    ])
    return chain.height


@pytest.fixture
def alliance() -> Alliance:
    return make_alliance(4)


def test_a_zone_joins_and_the_set_changes_two_heights_later(alliance: Alliance) -> None:
    chain = alliance.chain()
    genesis_set = alliance.genesis.validators
    c = add_zone(alliance, chain)
    zone = chain.get_zone("HU-CSEPEL")
    assert zone is not None and zone.is_active and zone.since_height == c
    new_set = (*genesis_set, zone.validator_key)
    assert chain.validators_for(c + 1) == genesis_set
    assert chain.validators_for(c + 2) == new_set
    block = alliance.commit_next(chain, [])  # c + 1: announces the new set, decided by the old
    assert block.header.validators_hash == compute_validators_hash(genesis_set)
    assert block.header.next_validators_hash == compute_validators_hash(new_set)
    block = alliance.commit_next(chain, [])  # c + 2: decided by the five
    assert block.header.validators_hash == compute_validators_hash(new_set)
    commit = chain.get_commit(chain.height)
    assert commit is not None and 4 in [s.validator for s in commit.signatures]
    proposal = chain.get_proposal(next(p.proposal_id for p in chain.get_proposals()))
    assert proposal is not None and proposal.status == PROPOSAL_EXECUTED and len(proposal.approvals) == 3


def test_the_new_zone_registers_an_officer_whose_certificate_verifies_from_genesis(alliance: Alliance) -> None:
    chain = alliance.chain()
    add_zone(alliance, chain)
    officer = alliance.make_key("officer HU-CSEPEL")
    alliance.commit_next(chain, [(alliance.register_officer("HU-CSEPEL", officer.public), None)])
    document = coo("HU-1", "HU")
    alliance.commit_next(chain, [alliance.issue("HU-CSEPEL", COO, document, "HU-1", key=officer)])
    alliance.commit_next(chain, [])
    bundle = build_bundle(chain, "HU-CSEPEL/HU-1")
    assert bundle["format"] == "zoneledger-proof/2" and len(bundle["validator_history"]) == 1
    result = verify_bundle(bundle, alliance.genesis, copy_hash=compute_doc_hash(document))
    assert result.verdict == "valid", [c.detail for c in result.checks if not c.ok]
    assert result.zone_name == "Csepel Free Port"
    issuer = next(c for c in result.checks if c.code == "issuer")
    assert "HU-CSEPEL" in issuer.detail and "registered at height" in issuer.detail
    assert "HU-CSEPEL" in [v.zone_id for v in result.signing_validators]


def test_a_bundle_whose_history_skips_a_change_is_refused(alliance: Alliance) -> None:
    chain = alliance.chain()
    add_zone(alliance, chain)
    alliance.commit_next(chain, [])
    alliance.commit_next(chain, [])
    change = alliance.key_change(chain, "DJ-DIFTZ", validator=True)
    alliance.commit_next(chain, [(alliance.rotate_keys("DJ-DIFTZ", change), None)])
    alliance.commit_next(chain, [])
    document = coo("EG-9")
    alliance.commit_next(chain, [alliance.issue("EG-TEDA", COO, document, "EG-9")])
    bundle = build_bundle(chain, "EG-TEDA/EG-9")
    assert len(bundle["validator_history"]) == 2
    assert verify_bundle(bundle, alliance.genesis, copy_hash=compute_doc_hash(document)).verdict == "valid"
    for skipped in (0, 1):
        history = [e for i, e in enumerate(bundle["validator_history"]) if i != skipped]
        result = verify_bundle({**bundle, "validator_history": history}, alliance.genesis,
                               copy_hash=compute_doc_hash(document))
        assert result.verdict == "unsound"
        assert not next(c for c in result.checks if c.code == "validators").ok


def test_a_bundle_made_before_a_change_still_verifies_after_it(alliance: Alliance) -> None:
    chain = alliance.chain()
    document = coo("EG-1")
    alliance.commit_next(chain, [alliance.issue("EG-TEDA", COO, document, "EG-1")])
    before = build_bundle(chain, "EG-TEDA/EG-1")
    add_zone(alliance, chain)
    alliance.commit_next(chain, [])
    alliance.commit_next(chain, [])
    after = build_bundle(chain, "EG-TEDA/EG-1")
    for bundle in (before, after):
        assert verify_bundle(bundle, alliance.genesis, copy_hash=compute_doc_hash(document)).verdict == "valid"
    v1 = {k: v for k, v in before.items() if k not in ("validator_history", "issuer")} | {"format": "zoneledger-proof/1"}
    assert verify_bundle(v1, alliance.genesis, copy_hash=compute_doc_hash(document)).verdict == "valid"


def test_a_removed_zone_leaves_the_set_and_its_officers_stop_writing(alliance: Alliance) -> None:
    chain = alliance.chain()
    document = coo("LK-1", "LK")
    alliance.commit_next(chain, [alliance.issue("LK-HAMBANTOTA", COO, document, "LK-1")])
    add_zone(alliance, chain)
    alliance.commit_next(chain, [])
    alliance.commit_next(chain, [])
    propose = alliance.gov_propose("EG-TEDA", ZoneRemove("LK-HAMBANTOTA"))
    approvals = [alliance.gov_approve(z, propose.tx_hash) for z in ("BY-GREATSTONE", "DJ-DIFTZ", "HU-CSEPEL")]
    alliance.commit_next(chain, [(propose, None), *((a, None) for a in approvals)])
    c = chain.height
    lk = chain.get_zone("LK-HAMBANTOTA")
    assert lk is not None and lk.status == ZONE_REMOVED and lk.since_height == c
    assert len(chain.validators_for(c + 2)) == 4 and lk.validator_key not in chain.validators_for(c + 2)
    refused(alliance, chain, [alliance.issue("LK-HAMBANTOTA", COO, coo("LK-2", "LK"), "LK-2")], errors.ZoneRemovedError)
    alliance.commit_next(chain, [])
    alliance.commit_next(chain, [])
    bundle = build_bundle(chain, "LK-HAMBANTOTA/LK-1")
    result = verify_bundle(bundle, alliance.genesis, copy_hash=compute_doc_hash(document))
    assert result.verdict == "valid"
    assert "left the alliance" in next(c for c in result.checks if c.code == "issuer").detail


def test_a_rotated_validator_key_keeps_its_place(alliance: Alliance) -> None:
    chain = alliance.chain()
    change = alliance.key_change(chain, "DJ-DIFTZ", validator=True, admin=True)
    alliance.commit_next(chain, [(alliance.rotate_keys("DJ-DIFTZ", change), None)])
    c = chain.height
    assert change.validator_key is not None
    assert chain.validators_for(c + 2)[2] == change.validator_key
    alliance.commit_next(chain, [])
    alliance.commit_next(chain, [])  # signed by the new key at index 2
    commit = chain.get_commit(chain.height)
    assert commit is not None and 2 in [s.validator for s in commit.signatures]
    # the new admin key governs; the old one no longer does
    old_signer = alliance.known_keys[alliance.genesis.zones[2].admin_key]
    refused(alliance, chain, [(alliance.sign(old_signer, GovPropose(AuditorAdd(b"\x01" * 32), 100)), None)],
            errors.GovNotAdminError)


def test_every_refusal_names_its_rule(alliance: Alliance) -> None:
    chain = alliance.chain()
    officer = alliance.officer_keys["EG-TEDA"]
    action = alliance.zone_add("HU-CSEPEL", "Csepel", "HU")
    # not an admin
    refused(alliance, chain, [(alliance.sign(officer, alliance.gov_propose("EG-TEDA", action).tx.body), None)],
            errors.GovNotAdminError)
    # expiry in the past
    refused(alliance, chain, [(alliance.gov_propose("EG-TEDA", action, expires_height=0), None)], errors.GovExpiryError)
    # possession signed by another key
    intruder = Possession.sign(alliance.genesis.chain_id, action.zone_id, action.admin_key, action.validator_key,
                               new_admin=SigningKey.from_label("intruder"), new_validator=None)
    forged = dataclasses.replace(action, possession=Possession(intruder.admin_sig, action.possession.validator_sig))
    refused(alliance, chain, [(alliance.gov_propose("EG-TEDA", forged), None)], errors.GovPossessionError)
    # a key already serving
    taken = ZoneAdd("HU-TAKEN", "Taken", "HU", alliance.genesis.zones[1].validator_key, action.validator_key, action.possession)
    refused(alliance, chain, [(alliance.gov_propose("EG-TEDA", taken), None)], errors.GovDuplicateKeyError)
    # a zone id in use
    again = alliance.zone_add("DJ-DIFTZ", "Djibouti again", "DJ")
    refused(alliance, chain, [(alliance.gov_propose("EG-TEDA", again), None)], errors.GovZoneExistsError)
    # fewer than four validators
    refused(alliance, chain, [(alliance.gov_propose("EG-TEDA", ZoneRemove("DJ-DIFTZ")), None)],
            errors.GovTooFewValidatorsError)
    # unknown proposal
    refused(alliance, chain, [(alliance.gov_approve("EG-TEDA", b"\x07" * 32), None)], errors.GovProposalUnknownError)
    # approve twice
    propose = alliance.gov_propose("EG-TEDA", action, expires_height=3)
    alliance.commit_next(chain, [(propose, None)])
    refused(alliance, chain, [(alliance.gov_approve("EG-TEDA", propose.tx_hash), None)], errors.GovAlreadyApprovedError)
    alliance.commit_next(chain, [(alliance.gov_approve("BY-GREATSTONE", propose.tx_hash), None)])  # height 2
    alliance.commit_next(chain, [])  # height 3: the last height it may be approved
    record = chain.get_proposal(propose.tx_hash)
    assert record is not None and record.status == PROPOSAL_OPEN
    alliance.commit_next(chain, [])  # height 4: expired at the start of the block
    record = chain.get_proposal(propose.tx_hash)
    assert record is not None and record.status == PROPOSAL_EXPIRED
    message = refused(alliance, chain, [(alliance.gov_approve("DJ-DIFTZ", propose.tx_hash), None)],
                      errors.GovProposalExpiredError)
    assert "expired after height 3" in message
    assert chain.get_zone("HU-CSEPEL") is None


def test_an_officer_key_serves_one_zone_once(alliance: Alliance) -> None:
    chain = alliance.chain()
    admin_key = alliance.genesis.zones[1].admin_key
    refused(alliance, chain, [(alliance.register_officer("EG-TEDA", admin_key), None)], errors.GovDuplicateKeyError)
    teda_officer = alliance.officer_keys["EG-TEDA"].public
    refused(alliance, chain, [(alliance.register_officer("BY-GREATSTONE", teda_officer), None)],
            errors.OfficerAlreadyActiveError)
    alliance.commit_next(chain, [(alliance.revoke_officer("EG-TEDA", teda_officer), None)])
    refused(alliance, chain, [(alliance.register_officer("EG-TEDA", teda_officer), None)], errors.OfficerRevokedError)
    record = chain.get_officer(teda_officer)
    assert record is not None and record.revoked_height == chain.height


def test_auditors_and_consensus_settings_change_by_proposal(alliance: Alliance) -> None:
    chain = alliance.chain()
    auditor = SigningKey.from_label("new auditor").public
    for action in (AuditorAdd(auditor), ConsensusSet((("timeout_propose_ms", 2500),))):
        propose = alliance.gov_propose("EG-TEDA", action)
        alliance.commit_next(chain, [(propose, None), *((alliance.gov_approve(z, propose.tx_hash), None)
                                                        for z in ("BY-GREATSTONE", "DJ-DIFTZ"))])
    assert auditor in chain.get_auditors()
    assert chain.consensus.timeout_propose_ms == 2500
    assert chain.consensus.timeout_delta_ms == alliance.genesis.consensus.timeout_delta_ms
    refused(alliance, chain, [(alliance.gov_propose("EG-TEDA", AuditorAdd(auditor)), None)], errors.GovAuditorExistsError)
    with pytest.raises(errors.GovParamsError):
        ConsensusSet.from_wire({"type": "consensus.set", "timeout_propose_ms": 5})


def test_the_alliance_rotates_a_zone_that_lost_its_keys(alliance: Alliance) -> None:
    chain = alliance.chain()
    change = alliance.key_change(chain, "LK-HAMBANTOTA", admin=True, validator=True)
    propose = alliance.gov_propose("EG-TEDA", ZoneRotate(change))
    alliance.commit_next(chain, [(propose, None), *((alliance.gov_approve(z, propose.tx_hash), None)
                                                    for z in ("BY-GREATSTONE", "DJ-DIFTZ"))])
    zone = chain.get_zone("LK-HAMBANTOTA")
    assert zone is not None and zone.admin_key == change.admin_key and zone.validator_key == change.validator_key
    assert zone.since_height == 0  # a rotation changes keys, not membership


def test_a_checkpoint_after_a_change_carries_the_history_a_monitor_follows(alliance: Alliance) -> None:
    """``zoneledger watch`` verifies checkpoints with genesis only: after a change of the
    set the checkpoint must carry the history, and one without it is refused."""
    from ledger.proofs import verify_checkpoint
    from ledger.proofs.build import build_validator_history

    chain = alliance.chain()
    add_zone(alliance, chain)
    alliance.commit_next(chain, [])
    alliance.commit_next(chain, [])
    header = chain.head_header
    commit = chain.get_commit(chain.height)
    assert header is not None and commit is not None
    checkpoint = {
        "header": header.encode().hex(), "header_fields": header.to_json(), "block_hash": header.block_hash.hex(),
        "commit": commit.to_json(), "validators": [v.hex() for v in chain.validators_for(header.height)],
        "chain_id": alliance.genesis.chain_id, "genesis_hash": alliance.genesis.genesis_hash.hex(),
        "validator_history": build_validator_history(chain, header.height),
    }
    assert verify_checkpoint(checkpoint, alliance.genesis) == header
    without = {k: v for k, v in checkpoint.items() if k != "validator_history"}
    with pytest.raises(errors.BundleValidatorsError):
        verify_checkpoint(without, alliance.genesis)


def test_the_block_limit_in_force_binds_every_validator(alliance: Alliance) -> None:
    """After consensus.set lowers max_block_txs, the proposer stops at it, and a block
    over it (a proposer that ignores it) is refused by the others."""
    from ledger.transition import build_block, execute_block

    chain = alliance.chain()
    propose = alliance.gov_propose("EG-TEDA", ConsensusSet((("max_block_txs", 2),)))
    alliance.commit_next(chain, [(propose, None), *((alliance.gov_approve(z, propose.tx_hash), None)
                                                    for z in ("BY-GREATSTONE", "DJ-DIFTZ"))])
    entries = [alliance.issue("EG-TEDA", COO, coo(f"LIM-{i}"), f"LIM-{i}") for i in range(3)]
    assert alliance.propose(chain, entries[:2]).block.header.tx_count == 2
    last_commit = chain.get_commit(chain.height)
    oversized, _ = build_block(
        chain, [(e.encode(), c) for e, c in entries], round_=0, time_ms=chain.time_ms + 1000,
        last_commit=last_commit, max_txs=10,
    )
    assert oversized.block.header.tx_count == 3
    with pytest.raises(errors.BlockTooManyTxsError):
        execute_block(chain, oversized.block)
