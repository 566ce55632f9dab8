"""The contract's whole proof bundle (shared/vectors/contract.json) and its verdicts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ledger.encoding import compute_doc_hash
from ledger.genesis import Genesis
from ledger.proofs import CHECK_CODES, verify_bundle

VERDICT_CASES = {"for the amended JSON": "valid", "for the original JSON": "amended"}


def _original_hash(shared_dir: Path) -> bytes:
    sample = json.loads((shared_dir / "samples" / "tradetrust_chafta_coo_raw_v2.json").read_text())
    return compute_doc_hash(sample)


def test_contract_verdicts_are_the_ones_the_contract_names(contract: dict[str, Any]) -> None:
    assert contract["bundle_verdicts"] == VERDICT_CASES


def test_contract_bundle_is_amended_for_the_original_json(contract: dict[str, Any], shared_dir: Path) -> None:
    genesis = Genesis.from_json(contract["genesis"])
    result = verify_bundle(contract["bundle"], genesis, copy_hash=_original_hash(shared_dir))
    assert result.verdict == contract["bundle_verdicts"]["for the original JSON"] == "amended"
    assert [c.code for c in result.checks] == list(CHECK_CODES)
    assert all(c.ok for c in result.checks)
    assert (result.matched_version, result.version) == (1, 2)
    assert result.timeline[1].reason == "weights corrected"


def test_contract_bundle_is_valid_for_the_amended_json(contract: dict[str, Any]) -> None:
    genesis = Genesis.from_json(contract["genesis"])
    bundle = contract["bundle"]
    result = verify_bundle(bundle, genesis, copy_hash=bytes.fromhex(bundle["document_hash"]))
    assert result.verdict == contract["bundle_verdicts"]["for the amended JSON"] == "valid"
    assert result.doc_id == "EG-TEDA/wfa.org.au:coo:WBC208897"
    assert result.signer_in_genesis is True
    assert [v.index for v in result.signing_validators] == [0, 1, 2]
    assert result.commit_time_ms == bundle["header_fields"]["time_ms"]


def test_contract_bundle_is_original_json_hash_in_history(contract: dict[str, Any], shared_dir: Path) -> None:
    # The original JSON is the issued version: its hash is the first history entry's doc_hash.
    genesis = Genesis.from_json(contract["genesis"])
    result = verify_bundle(contract["bundle"], genesis, copy_hash=_original_hash(shared_dir))
    assert result.timeline[0].doc_hash == _original_hash(shared_dir).hex()
    assert result.timeline[0].kind == "doc.issue"
