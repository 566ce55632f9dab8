"""The state tree reproduces the contract's worked example byte for byte (DESIGN §6, §9)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ledger.encoding import H
from ledger.errors import StateProofError
from ledger.smt import StateProof, StateTree, compute_root_naive, verify_state_proof
from ledger.store import MemoryStore, Overlay, WriteBatch

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
CONTRACT: dict[str, Any] = json.loads((SHARED / "vectors" / "contract-governance.json").read_text())
STATE = CONTRACT["state"]
BUNDLE = CONTRACT["bundle"]
ROOT = bytes.fromhex(STATE["root"])


def contract_items() -> dict[bytes, bytes]:
    """The documents' entries and, beside them, the genesis zone and officer records."""
    items = {H(entry["doc_id"].encode("utf-8")): bytes.fromhex(entry["value_cb"]) for entry in STATE["entries"]}
    items.update({H(label.encode("utf-8")): bytes.fromhex(r["value_cb"]) for label, r in STATE["genesis_records"].items()})
    return items


def contract_tree() -> StateTree:
    store = MemoryStore()
    batch = WriteBatch()
    StateTree(Overlay(store, batch)).update(batch, contract_items())
    store.write(batch)
    return StateTree(store)


def absence_proof_json() -> dict[str, Any]:
    return {"leaf": STATE["absence_proof"]["leaf"], "siblings": STATE["absence_proof"]["siblings"]}


def test_naive_root_matches_contract() -> None:
    assert compute_root_naive(contract_items()) == ROOT


def test_persisted_root_matches_contract() -> None:
    assert contract_tree().root() == ROOT


def test_absence_proof_matches_contract() -> None:
    key = bytes.fromhex(STATE["absence_proof"]["key"])
    proof = contract_tree().prove(key)
    assert proof.to_json() == absence_proof_json()
    verify_state_proof(key, None, StateProof.from_json(absence_proof_json()), ROOT)


def test_bundle_presence_proof_verifies_against_state_root() -> None:
    proof = StateProof.from_json(BUNDLE["state_proof"])
    value = bytes.fromhex(BUNDLE["state_value"])
    assert proof.leaf is not None
    key = proof.leaf[0]
    verify_state_proof(key, value, proof, ROOT)
    assert contract_tree().prove(key).to_json() == BUNDLE["state_proof"]
    assert contract_tree().get(key) == value


def test_bundle_presence_proof_is_not_an_absence_proof() -> None:
    proof = StateProof.from_json(BUNDLE["state_proof"])
    assert proof.leaf is not None
    with pytest.raises(StateProofError):
        verify_state_proof(proof.leaf[0], None, proof, ROOT)


def test_absence_proof_is_not_a_presence_proof() -> None:
    key = bytes.fromhex(STATE["absence_proof"]["key"])
    with pytest.raises(StateProofError):
        verify_state_proof(key, b"anything", StateProof.from_json(absence_proof_json()), ROOT)
