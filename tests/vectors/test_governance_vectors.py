"""The project's own worked examples of DESIGN §12's formats (tests/vectors/governance/):
a governance transaction of each kind, the header that announces a changed set (its
``next_validators_hash`` differs from its ``validators_hash``), and a
``zoneledger-proof/2`` bundle across two changes of the set, with its verdict.

The chain is rebuilt from labelled keys (deterministic signatures, nonces and times), so
every byte must come out the same. ``python tests/vectors/test_governance_vectors.py
--record`` rewrites the file after a deliberate change of format.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ledger.chain import Chain
from ledger.encoding import compute_doc_hash, jcs
from ledger.genesis import compute_validators_hash
from ledger.proofs import build_bundle, verify_bundle
from scripts.devkit import Alliance, load_example, make_alliance, with_number

VECTORS = Path(__file__).resolve().parent / "governance" / "two_changes.json"
COO = "certificate_of_origin"


def build() -> tuple[Alliance, Chain, dict[str, Any]]:
    """Heights 1-6: HU-CSEPEL proposed and approved (3 of 4) at 1, the five decide from
    3; DJ-DIFTZ rotates its validator key at 3, the new key signs from 5; 6 holds the
    certificate the bundle proves."""
    alliance = make_alliance(4)
    chain = alliance.chain()
    txs: dict[str, Any] = {}
    propose = alliance.gov_propose("EG-TEDA", alliance.zone_add("HU-CSEPEL", "Csepel Free Port", "HU"))
    approvals = [alliance.gov_approve(z, propose.tx_hash) for z in ("BY-GREATSTONE", "DJ-DIFTZ")]
    alliance.commit_next(chain, [(propose, None), *((a, None) for a in approvals)])
    alliance.commit_next(chain, [])
    change = alliance.key_change(chain, "DJ-DIFTZ", validator=True)
    rotate = alliance.rotate_keys("DJ-DIFTZ", change)
    alliance.commit_next(chain, [(rotate, None)])
    alliance.commit_next(chain, [])
    alliance.commit_next(chain, [])
    document = with_number(load_example("coo_preferential.json"), COO, "GV-1")
    alliance.commit_next(chain, [alliance.issue("EG-TEDA", COO, document, "GV-1")])
    for name, envelope in (("gov.propose", propose), ("gov.approve", approvals[0]), ("zone.rotate_keys", rotate)):
        txs[name] = {"envelope_cb": envelope.encode().hex(), "tx_hash": envelope.tx_hash.hex()}
    headers = {}
    for height in range(1, chain.height + 1):
        header = chain.get_header(height)
        assert header is not None
        headers[str(height)] = {
            "header_cb": header.encode().hex(), "block_hash": header.block_hash.hex(),
            "announces_a_new_set": header.next_validators_hash != header.validators_hash,
        }
    bundle = build_bundle(chain, "EG-TEDA/GV-1")
    verdict = verify_bundle(bundle, alliance.genesis, copy_hash=compute_doc_hash(document)).verdict
    value = {
        "about": __doc__.split("\n\n")[0].replace("\n", " "),
        "genesis": alliance.genesis.raw,
        "document_jcs": jcs(document).decode("utf-8"),
        "transactions": txs,
        "headers": headers,
        "validators_hash_by_height": {
            str(h): compute_validators_hash(chain.validators_for(h)).hex() for h in range(1, chain.height + 2)
        },
        "bundle_v2": bundle,
        "bundle_v2_verdict": verdict,
    }
    return alliance, chain, value


def test_the_chain_reproduces_the_project_vectors() -> None:
    expected = json.loads(VECTORS.read_text())
    _, _, value = build()
    assert value == expected


def test_the_vectors_show_each_format() -> None:
    expected = json.loads(VECTORS.read_text())
    announcing = [h for h, v in expected["headers"].items() if v["announces_a_new_set"]]
    assert announcing == ["2", "4"]  # changes committed at 1 and 3, announced by the next header
    assert len(expected["bundle_v2"]["validator_history"]) == 2
    assert expected["bundle_v2"]["format"] == "zoneledger-proof/2" and expected["bundle_v2_verdict"] == "valid"
    assert set(expected["transactions"]) == {"gov.propose", "gov.approve", "zone.rotate_keys"}


if __name__ == "__main__" and sys.argv[1:] == ["--record"]:
    VECTORS.parent.mkdir(parents=True, exist_ok=True)
    VECTORS.write_text(json.dumps(build()[2], indent=1, sort_keys=True) + "\n")
    print(f"wrote {VECTORS}")
