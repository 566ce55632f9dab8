"""ledger/proofs/: bundles built from a chain, and every verdict they lead to."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from ledger import errors
from ledger.chain import Chain
from ledger.encoding import H, compute_doc_hash
from ledger.proofs import (
    BUNDLE_FIELDS,
    CHECK_CODES,
    build_bundle,
    bundle_for_hash,
    verify_bundle,
    verify_checkpoint,
)
from ledger.store import MemoryStore
from ledger.transactions import Attachment, Envelope
from scripts.devkit import Alliance, load_example, make_alliance, with_number

COO = "certificate_of_origin"
TEDA = "EG-TEDA"
STONE = "BY-GREATSTONE"
PDF_V1 = b"%PDF-1.7 certificate PB-1, first issue"
PDF_V2 = b"%PDF-1.7 certificate PB-1, weights corrected"


@dataclass
class Built:
    """A small chain with one document in each interesting state."""

    alliance: Alliance
    chain: Chain
    versions: list[dict[str, Any]]  # PB-1's three versions
    revoked: dict[str, Any]  # BY-GREATSTONE/PB-2
    active: dict[str, Any]  # EG-TEDA/PB-3, never changed


def coo(number: str, statement: str | None = None) -> dict[str, Any]:
    document = with_number(load_example("coo_preferential.json"), COO, number)
    if statement is not None:
        document["firstSignatoryAuthentication"]["statement"] = statement
    return document


def pdf(data: bytes, name: str) -> Attachment:
    return Attachment(name, "application/pdf", H(data), len(data))


def build_chain(store: MemoryStore | None = None, filler: int = 3) -> Built:
    alliance = make_alliance(4)
    chain = alliance.chain(store)
    v1, v2, v3 = coo("PB-1"), coo("PB-1", "weights corrected"), coo("PB-1", "consignee address corrected")
    revoked, active = coo("PB-2"), coo("PB-3")
    alliance.commit_next(chain, [
        alliance.issue(TEDA, COO, v1, "PB-1", attachments=(pdf(PDF_V1, "pb-1.pdf"),)),
        alliance.issue(STONE, COO, revoked, "PB-2"),
        alliance.issue(TEDA, COO, active, "PB-3"),
    ])
    alliance.commit_next(chain, [
        alliance.amend(TEDA, f"{TEDA}/PB-1", v2, compute_doc_hash(v1), "gross weight corrected",
                       attachments=(pdf(PDF_V2, "pb-1-v2.pdf"),)),
        (alliance.revoke(STONE, f"{STONE}/PB-2", compute_doc_hash(revoked), "contract cancelled"), None),
    ])
    fill = [alliance.issue(TEDA, COO, coo(f"FILL-{i}"), f"FILL-{i}") for i in range(filler)]
    alliance.commit_next(chain, [
        *fill,
        alliance.amend(TEDA, f"{TEDA}/PB-1", v3, compute_doc_hash(v2), "consignee address corrected"),
    ])
    return Built(alliance, chain, [v1, v2, v3], revoked, active)


@pytest.fixture(scope="module")
def built() -> Built:
    return build_chain()


def test_bundle_has_exactly_the_design_fields_in_lowercase_hex(built: Built) -> None:
    bundle = build_bundle(built.chain, f"{TEDA}/PB-1")
    assert bundle.keys() == BUNDLE_FIELDS
    assert bundle["format"] == "zoneledger-proof/2"
    assert bundle["validator_history"] == []  # no change of the set yet
    assert bundle["issuer"].keys() == {"officer_record", "officer_proof", "zone_record", "zone_proof"}
    assert bundle["chain_id"] == built.alliance.genesis.chain_id
    assert bundle["document_hash"] == compute_doc_hash(built.versions[2]).hex()
    assert bundle["header_fields"]["height"] == built.chain.height == bundle["commit"]["height"]
    assert bundle["validators"] == [v.hex() for v in built.alliance.genesis.validators]
    for name in ("genesis_hash", "document_hash", "tx", "header", "state_value"):
        assert re.fullmatch(r"(?:[0-9a-f]{2})+", bundle[name]), name
    assert [Envelope.decode(bytes.fromhex(e["tx"])).tx.kind for e in bundle["history"]] == [
        "doc.issue", "doc.amend", "doc.amend",
    ]
    assert bundle["tx"] == bundle["history"][-1]["tx"]
    assert bundle["log_index"] == bundle["history"][-1]["log_index"]
    assert bundle["state_proof"]["leaf"]["key"] == H(f"{TEDA}/PB-1".encode()).hex()


def test_revoked_bundle_keeps_the_issue_as_current_and_the_revocation_in_history(built: Built) -> None:
    bundle = build_bundle(built.chain, f"{STONE}/PB-2")
    kinds = [Envelope.decode(bytes.fromhex(e["tx"])).tx.kind for e in bundle["history"]]
    assert kinds == ["doc.issue", "doc.revoke"]
    assert bundle["tx"] == bundle["history"][0]["tx"]
    assert bundle["log_index"] == bundle["history"][0]["log_index"]


def verdict(built: Built, doc_id: str, copy_hash: bytes) -> str:
    result = verify_bundle(build_bundle(built.chain, doc_id), built.alliance.genesis, copy_hash=copy_hash)
    assert [c.code for c in result.checks] == list(CHECK_CODES)
    return result.verdict


def test_current_version_is_valid_and_every_check_passes(built: Built) -> None:
    result = verify_bundle(build_bundle(built.chain, f"{TEDA}/PB-1"), built.alliance.genesis,
                           copy_hash=compute_doc_hash(built.versions[2]))
    assert result.verdict == "valid"
    assert all(c.ok for c in result.checks), [c for c in result.checks if not c.ok]
    assert (result.doc_id, result.doc_type, result.zone_id, result.version) == (f"{TEDA}/PB-1", COO, TEDA, 3)
    assert result.signer == built.alliance.officer_keys[TEDA].public.hex() and result.signer_in_genesis
    assert result.matched == "document" and result.matched_version == 3
    assert result.height == built.chain.height and result.commit_time_ms == built.chain.time_ms
    assert [v.zone_id for v in result.signing_validators] == [z.zone_id for z in built.alliance.genesis.zones]
    assert [(t.kind, t.version, t.reason) for t in result.timeline] == [
        ("doc.issue", 1, None), ("doc.amend", 2, "gross weight corrected"), ("doc.amend", 3, "consignee address corrected"),
    ]
    assert "officer listed in genesis" in result.checks[CHECK_CODES.index("issuer")].detail


@pytest.mark.parametrize("version", [0, 1])
def test_older_version_is_amended(built: Built, version: int) -> None:
    result = verify_bundle(build_bundle(built.chain, f"{TEDA}/PB-1"), built.alliance.genesis,
                           copy_hash=compute_doc_hash(built.versions[version]))
    assert result.verdict == "amended"
    assert (result.matched_version, result.version) == (version + 1, 3)


def test_revoked_document_is_revoked_with_its_reason(built: Built) -> None:
    result = verify_bundle(build_bundle(built.chain, f"{STONE}/PB-2"), built.alliance.genesis,
                           copy_hash=compute_doc_hash(built.revoked))
    assert result.verdict == "revoked"
    assert all(c.ok for c in result.checks)
    assert result.revocation_reason == "contract cancelled"
    assert [t.kind for t in result.timeline] == ["doc.issue", "doc.revoke"]


def test_changed_copy_is_tampered_and_only_integrity_fails(built: Built) -> None:
    changed = coo("PB-3", "goods of Australian origin, 40 t")
    result = verify_bundle(build_bundle(built.chain, f"{TEDA}/PB-3"), built.alliance.genesis,
                           copy_hash=compute_doc_hash(changed))
    assert result.verdict == "tampered"
    assert [c.code for c in result.checks if not c.ok] == ["integrity"]
    assert "proof.copy_mismatch" in result.checks[CHECK_CODES.index("integrity")].detail


def test_attachments_verify_as_their_version(built: Built) -> None:
    doc_id = f"{TEDA}/PB-1"
    assert verdict(built, doc_id, H(PDF_V1)) == "amended"  # registered with version 1
    result = verify_bundle(build_bundle(built.chain, doc_id), built.alliance.genesis, copy_hash=H(PDF_V2))
    assert result.verdict == "amended" and result.matched == "attachment" and result.matched_attachment == "pb-1-v2.pdf"


def test_attachment_of_the_current_version_is_valid() -> None:
    alliance = make_alliance(4)
    chain = alliance.chain()
    data = b"%PDF-1.7 a certificate"
    alliance.commit_next(chain, [alliance.issue(TEDA, COO, coo("PDF-1"), "PDF-1", attachments=(pdf(data, "c.pdf"),))])
    result = verify_bundle(build_bundle(chain, f"{TEDA}/PDF-1"), alliance.genesis, copy_hash=H(data))
    assert (result.verdict, result.matched, result.matched_attachment) == ("valid", "attachment", "c.pdf")


def test_bundle_for_hash_finds_any_version_and_attachments(built: Built) -> None:
    for document in built.versions:
        assert bundle_for_hash(built.chain, compute_doc_hash(document)) == (f"{TEDA}/PB-1", "document")
    assert bundle_for_hash(built.chain, H(PDF_V1)) == (f"{TEDA}/PB-1", "attachment")
    assert bundle_for_hash(built.chain, compute_doc_hash(built.revoked)) == (f"{STONE}/PB-2", "document")
    assert bundle_for_hash(built.chain, bytes(32)) is None


def test_unknown_document_and_empty_chain_are_not_found(built: Built) -> None:
    with pytest.raises(errors.NotFoundError):
        build_bundle(built.chain, f"{TEDA}/NOPE")
    with pytest.raises(errors.NotFoundError):
        build_bundle(make_alliance(4).chain(), f"{TEDA}/PB-1")


def test_another_genesis_makes_the_bundle_unsound(built: Built) -> None:
    other = make_alliance(4, chain_id="sez-alliance-other")
    result = verify_bundle(build_bundle(built.chain, f"{TEDA}/PB-3"), other.genesis,
                           copy_hash=compute_doc_hash(built.active))
    assert result.verdict == "unsound"
    assert not result.checks[0].ok and "proof.genesis_mismatch" in result.checks[0].detail


def test_officer_registered_after_genesis_is_named_as_such() -> None:
    alliance = make_alliance(4, officers_per_zone=0)
    from ledger.keys import SigningKey

    officer = SigningKey.from_label("late officer")
    chain = alliance.chain()
    alliance.commit_next(chain, [(alliance.register_officer(TEDA, officer.public), None)])
    alliance.commit_next(chain, [alliance.issue(TEDA, COO, coo("LATE-1"), "LATE-1", key=officer)])
    result = verify_bundle(build_bundle(chain, f"{TEDA}/LATE-1"), alliance.genesis,
                           copy_hash=compute_doc_hash(coo("LATE-1")))
    assert result.verdict == "valid" and result.signer_in_genesis is False
    assert "registered at height 1" in result.checks[CHECK_CODES.index("issuer")].detail


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.gets = 0
        self.scans = 0

    def get(self, key: bytes) -> bytes | None:
        self.gets += 1
        return super().get(key)

    def iterate(self, prefix: bytes, *, reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        self.scans += 1
        return super().iterate(prefix, reverse=reverse)


def test_building_a_bundle_reads_o_log_n_records_and_never_scans() -> None:
    store = CountingStore()
    built = build_chain(store, filler=300)
    store.gets = store.scans = 0
    build_bundle(built.chain, f"{TEDA}/PB-1")
    size = built.chain.head_header.log_size if built.chain.head_header else 0
    versions = 3
    # per version: history entry, tx location, block, inclusion proof (<= 2 log n reads);
    # plus document, commit, state proof and the current version's inclusion proof.
    bound = (versions + 1) * (3 + 2 * math.ceil(math.log2(size))) + 2 * 256 // 8 + 10
    assert store.scans == 0
    assert store.gets <= bound, (store.gets, bound)


def test_checkpoint_verifies_and_a_forged_one_does_not(built: Built) -> None:
    chain = built.chain
    assert chain.head_header is not None
    commit = chain.get_commit(chain.height)
    assert commit is not None
    genesis = built.alliance.genesis
    checkpoint = {
        "header": chain.head_header.encode().hex(), "header_fields": chain.head_header.to_json(),
        "block_hash": chain.head_header.block_hash.hex(), "commit": commit.to_json(),
        "validators": [v.hex() for v in genesis.validators], "chain_id": genesis.chain_id,
        "genesis_hash": genesis.genesis_hash.hex(),
    }
    assert verify_checkpoint(checkpoint, genesis) == chain.head_header
    forked = chain.head_header.with_changes(log_root=bytes(32))
    forged = dict(checkpoint, header=forked.encode().hex(), header_fields=forked.to_json(),
                  block_hash=forked.block_hash.hex())
    with pytest.raises(errors.CommitError):
        verify_checkpoint(forged, genesis)
    with pytest.raises(errors.BundleHeaderError):
        verify_checkpoint(dict(checkpoint, block_hash=forked.block_hash.hex()), genesis)


@pytest.mark.parametrize("module", ["ledger.proofs.verify", "ledger.proofs"])
def test_the_offline_verifier_loads_no_storage(module: str) -> None:
    # Verifying needs the genesis file only: importing the verifier (or the package, whose
    # building side loads on first use) must not bring in the chain, the store or LevelDB.
    import subprocess
    import sys

    code = (
        f"import sys, {module}\n"
        "from ledger.proofs import verify_bundle, verify_checkpoint\n"
        "print(sorted(m for m in ('ledger.chain', 'ledger.store', 'ledger.smt_store', 'plyvel') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_building_names_still_load_from_the_package() -> None:
    import ledger.proofs
    from ledger.proofs import build

    assert (ledger.proofs.build_bundle, ledger.proofs.bundle_for_hash) == (build.build_bundle, build.bundle_for_hash)
    with pytest.raises(AttributeError):
        ledger.proofs.no_such_name  # noqa: B018
