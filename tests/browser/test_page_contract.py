"""The page's verifier (api/static/verify.js) in Chromium on contract.json's bundle.

The same bundle and verdicts as tests/vectors: the amended JSON is ``valid``, the
original JSON ``amended``; the page's canonical encoder reproduces the vote's signing
bytes and the genesis hash; WebCrypto's Ed25519 verifies the contract's signatures;
one flipped byte anywhere that matters makes the bundle unverifiable.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from api.page import make_static_page_router

SAMPLE = "samples/tradetrust_chafta_coo_raw_v2.json"


@pytest.fixture(scope="module")
def verifier(browser: Any, app_server: Any, contract: dict[str, Any]) -> Iterator[Any]:
    """A page whose origin serves the static files, with verify.js loaded as window.V."""
    app = FastAPI()
    app.include_router(make_static_page_router(
        {"chain_id": contract["genesis"]["chain_id"], "genesis_hash": contract["genesis_hash"],
         "genesis": contract["genesis"], "node": ""}))
    with app_server(app) as url:
        context = browser.new_context()
        page = context.new_page()
        page.goto(url + "/config.json")
        page.evaluate("async () => { window.V = await import('/static/verify.js'); }")
        yield page
        context.close()


def run(page: Any, bundle: Any, contract: dict[str, Any], copy: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(
        "([bundle, genesis, genesisHash, copy]) => V.verifyBundle(bundle, {genesis, genesisHash}, copy)",
        [bundle, contract["genesis"], contract["genesis_hash"], copy],
    )
    return result


def test_page_computes_contract_genesis_and_document_hashes(verifier: Any, contract: dict[str, Any], shared_dir: Path) -> None:
    assert verifier.evaluate("(g) => V.computeGenesisHash(g)", contract["genesis"]) == contract["genesis_hash"]
    original = json.loads((shared_dir / SAMPLE).read_text())
    assert verifier.evaluate("(d) => V.computeDocumentHash(d)", original) == contract["document"]["doc_hash"]


def test_page_encoder_gives_contract_vote_signing_bytes(verifier: Any, contract: dict[str, Any]) -> None:
    vote = contract["vote"]["vote"]
    got = verifier.evaluate(
        """(v) => V.bytesToHex(V.computePrecommitSigningBytes(
            v.chain_id, v.height, v.round, V.hexToBytes(v.block_hash), v.validator))""",
        vote,
    )
    assert got == contract["vote"]["signing_bytes"]


def test_chromium_webcrypto_ed25519_verifies_contract_signatures(verifier: Any, contract: dict[str, Any]) -> None:
    ok = verifier.evaluate(
        """([keyHex, msgHex, sigHex]) => V.isValidEd25519(V.hexToBytes(keyHex), V.hexToBytes(msgHex), V.hexToBytes(sigHex))""",
        [contract["keys"]["validators"][0]["public"], contract["vote"]["signing_bytes"], contract["vote"]["sig"]],
    )
    assert ok is True
    tx = contract["transaction"]
    signer = tx["tx"]["signer"]
    assert verifier.evaluate(
        "([k, m, s]) => V.isValidEd25519(V.hexToBytes(k), V.hexToBytes(m), V.hexToBytes(s))",
        [signer, tx["signing_bytes"], tx["sig"]],
    ) is True


def test_page_rejects_non_canonical_encodings(verifier: Any, contract: dict[str, Any]) -> None:
    for name, data in contract["canonical_encoding"]["reject"].items():
        error = verifier.evaluate(
            "(h) => { try { V.decodeCanonical(V.hexToBytes(h), 'x'); return null; } catch (e) { return e.message; } }", data
        )
        assert error is not None, f"accepted the {name} case"
    for case in contract["canonical_encoding"]["accept"]:
        assert verifier.evaluate(
            "(h) => V.bytesToHex(V.encodeCanonical(V.decodeCanonical(V.hexToBytes(h), 'x')))", case["cb"]
        ) == case["cb"]


def test_contract_bundle_verdict_for_the_amended_json_is_valid(verifier: Any, contract: dict[str, Any]) -> None:
    assert contract["bundle_verdicts"]["for the amended JSON"] == "valid"
    result = run(verifier, contract["bundle"], contract, {"documentHash": contract["bundle"]["document_hash"]})
    assert result["verdict"] == "valid", result["reason"]
    assert [c["code"] for c in result["checks"]] == [
        "genesis", "validators", "header", "commit", "signature", "inclusion", "issuer", "history", "status", "integrity"
    ]
    assert all(c["ok"] for c in result["checks"])
    assert result["facts"]["docId"] == "EG-TEDA/wfa.org.au:coo:WBC208897"
    assert [t["kind"] for t in result["facts"]["timeline"]] == ["doc.issue", "doc.amend"]


def test_contract_bundle_verdict_for_the_original_json_is_amended(
    verifier: Any, contract: dict[str, Any], shared_dir: Path
) -> None:
    assert contract["bundle_verdicts"]["for the original JSON"] == "amended"
    original = json.loads((shared_dir / SAMPLE).read_text())
    copy = {"documentHash": contract["document"]["doc_hash"], "document": original}
    assert run(verifier, contract["bundle"], contract, copy)["verdict"] == "amended"


def flip(hex_text: str, at: int) -> str:
    """``hex_text`` with the byte at ``at`` XORed with 1."""
    value = int(hex_text[2 * at:2 * at + 2], 16) ^ 1
    return hex_text[:2 * at] + f"{value:02x}" + hex_text[2 * at + 2:]


@pytest.mark.parametrize("doctor", [
    "commit signature", "header byte", "inclusion proof", "state proof sibling", "state value",
    "current tx signature", "history tx", "validators", "genesis hash", "fewer signers",
])
def test_doctored_contract_bundle_is_never_valid(verifier: Any, contract: dict[str, Any], doctor: str) -> None:
    bundle = json.loads(json.dumps(contract["bundle"]))
    if doctor == "commit signature":
        bundle["commit"]["signatures"][1]["sig"] = flip(bundle["commit"]["signatures"][1]["sig"], 5)
    elif doctor == "header byte":
        bundle["header"] = flip(bundle["header"], len(bundle["header"]) // 2 - 3)
    elif doctor == "inclusion proof":
        bundle["inclusion_proof"][0] = flip(bundle["inclusion_proof"][0], 0)
    elif doctor == "state proof sibling":
        bundle["state_proof"]["siblings"][0] = flip(bundle["state_proof"]["siblings"][0], 31)
    elif doctor == "state value":
        bundle["state_value"] = flip(bundle["state_value"], 10)
    elif doctor == "current tx signature":
        bundle["tx"] = flip(bundle["tx"], 8)
    elif doctor == "history tx":
        bundle["history"][0]["tx"] = flip(bundle["history"][0]["tx"], 100)
    elif doctor == "validators":
        bundle["validators"][0] = flip(bundle["validators"][0], 0)
    elif doctor == "genesis hash":
        bundle["genesis_hash"] = flip(bundle["genesis_hash"], 0)
    elif doctor == "fewer signers":
        bundle["commit"]["signatures"] = bundle["commit"]["signatures"][:2]
    result = run(verifier, bundle, contract, {"documentHash": contract["bundle"]["document_hash"]})
    assert result["verdict"] == "could not be verified", doctor
    assert any(not c["ok"] for c in result["checks"])


def test_page_verifies_the_contract_v2_bundle_across_the_change_of_set(verifier: Any, contract: dict[str, Any]) -> None:
    """DESIGN §12's bundle: HU-CSEPEL joined at height 3; block 5 is signed by five
    validators; the page, holding only genesis, follows the history and says valid."""
    from ledger.encoding import compute_doc_hash

    gov = contract["governance"]
    bundle = gov["bundle_v2"]
    copy = {"documentHash": compute_doc_hash(gov["hu_certificate"]).hex()}
    result = run(verifier, bundle, contract, copy)
    assert result["verdict"] == gov["bundle_v2_verdict"] == "valid", result["reason"]
    assert result["facts"]["zone"]["zone_id"] == "HU-CSEPEL"
    assert result["facts"]["officerInGenesis"] is False
    assert "HU-CSEPEL" in [s["zone_id"] for s in result["facts"]["signers"]]
    skipped = {**bundle, "validator_history": []}
    result = run(verifier, skipped, contract, copy)
    assert result["verdict"] == "could not be verified"
    forged_set = [*bundle["validator_history"][0]["validators"][:4], "11" * 32]
    forged = {**bundle, "validator_history": [{**bundle["validator_history"][0], "validators": forged_set}],
              "validators": forged_set}
    assert run(verifier, forged, contract, copy)["verdict"] == "could not be verified"
    other_zone = {**bundle, "issuer": {**bundle["issuer"], "zone_record": gov["records"]["zone:EG-TEDA"]["value_cb"]}}
    assert run(verifier, other_zone, contract, copy)["verdict"] == "could not be verified"
