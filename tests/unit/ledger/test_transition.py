"""The state transition's rules, each refused with its own code, and blocks that change nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ledger import errors
from ledger.blocks import Block, CommitCertificate
from ledger.chain import Chain
from ledger.encoding import H, compute_doc_hash, jcs
from ledger.keys import SigningKey
from ledger.membership import compute_genesis_records
from ledger.merkle import merkle_root
from ledger.smt import compute_root_naive
from ledger.store import LevelDBStore, MemoryStore
from ledger.transactions import Attachment
from ledger.transition import apply_block, build_block, execute_block
from scripts.devkit import Alliance, with_number

COO = "certificate_of_origin"
TEDA = "EG-TEDA"
STONE = "BY-GREATSTONE"


@pytest.fixture(scope="module")
def chafta(shared_dir: Path) -> dict[str, Any]:
    value: dict[str, Any] = json.loads((shared_dir / "samples" / "tradetrust_chafta_coo_raw_v2.json").read_text())
    return value


def certificate(chafta: dict[str, Any], number: str) -> dict[str, Any]:
    return with_number(chafta, COO, number)


def snapshot(chain: Chain) -> dict[bytes, bytes]:
    return dict(chain.store.iterate(b""))


def refused(chain: Chain, alliance: Alliance, entries: list[Any], error: type[errors.LedgerError]) -> None:
    """The proposer leaves the transaction out, and a block carrying it anyway is refused."""
    before = snapshot(chain)
    encoded = [(env.encode(), content) for env, content in entries]
    executed, rejected = build_block(chain, encoded, round_=0, time_ms=chain.time_ms + 1000, last_commit=chain.get_commit(chain.height) if chain.height else None)
    assert [type(r.error) for r in rejected] == [error] * len(entries) or any(
        isinstance(r.error, error) for r in rejected
    ), [r.error for r in rejected]
    # Force the transactions into a block whose header otherwise matches.
    forced = Block(
        executed.block.header.with_changes(tx_count=len(encoded)),
        executed.block.last_commit,
        tuple(t for t, _ in encoded),
        tuple(c for _, c in encoded),
    )
    with pytest.raises(error):
        execute_block(chain, forced)
    assert snapshot(chain) == before


def issue_one(alliance: Alliance, chain: Chain, chafta: dict[str, Any], number: str = "CO-1") -> tuple[str, bytes]:
    doc = certificate(chafta, number)
    alliance.commit_next(chain, [alliance.issue(TEDA, COO, doc, number)])
    return f"{TEDA}/{number}", compute_doc_hash(doc)


def test_issue_amend_revoke_lifecycle(alliance: Alliance, chafta: dict[str, Any]) -> None:
    chain = alliance.chain()
    doc_id, first_hash = issue_one(alliance, chain, chafta)
    record = chain.get_doc(doc_id)
    assert record is not None and (record.version, record.status, record.log_index) == (1, "active", 0)
    amended = certificate(chafta, "CO-1") | {"name": "amended"}
    alliance.commit_next(chain, [alliance.amend(TEDA, doc_id, amended, first_hash, "weights corrected")])
    record = chain.get_doc(doc_id)
    assert record is not None and (record.version, record.doc_hash) == (2, compute_doc_hash(amended))
    alliance.commit_next(chain, [(alliance.revoke(TEDA, doc_id, record.doc_hash, "goods not shipped"), None)])
    record = chain.get_doc(doc_id)
    assert record is not None and (record.status, record.revoke_reason, record.history_len) == (
        "revoked", "goods not shipped", 3,
    )
    history = chain.get_history(doc_id, record.history_len)
    assert [e.kind for e in history] == ["doc.issue", "doc.amend", "doc.revoke"]
    # Revocation changes the status; the state still points at the current version's leaf.
    assert record.log_index == history[1].log_index == 1
    assert history[2].log_index == 2
    assert chain.height == 3
    assert chain.documents_by_number("CO-1") == [doc_id]
    assert chain.get_content(first_hash) == jcs(certificate(chafta, "CO-1"))


def test_roots_recompute_from_scratch(alliance: Alliance, chafta: dict[str, Any]) -> None:
    chain = alliance.chain()
    leaves: list[bytes] = []
    for height in range(3):
        entries = [alliance.issue(TEDA, COO, certificate(chafta, f"R-{height}-{i}"), f"R-{height}-{i}") for i in range(4)]
        leaves += [env.encode() for env, _ in entries]
        alliance.commit_next(chain, entries)
    header = chain.head_header
    assert header is not None
    assert header.log_root == merkle_root(leaves)
    assert header.log_size == len(leaves) == 12
    zones, officers = compute_genesis_records(alliance.genesis)
    items = {record.state_key: record.state_value() for record in (*zones, *officers)}
    for height in range(3):
        for i in range(4):
            record = chain.get_doc(f"{TEDA}/R-{height}-{i}")
            assert record is not None
            items[H(record.doc_id.encode())] = record.state_value()
    assert header.state_root == compute_root_naive(items)


def test_officer_of_one_zone_cannot_issue_for_another(alliance: Alliance, chafta: dict[str, Any]) -> None:
    chain = alliance.chain()
    entry = alliance.issue(STONE, COO, certificate(chafta, "X-1"), "X-1", key=alliance.officer_keys[TEDA])
    refused(chain, alliance, [entry], errors.NotOfficerOfZoneError)


def test_revoked_officer_is_refused(alliance: Alliance, chafta: dict[str, Any]) -> None:
    chain = alliance.chain()
    officer = alliance.officer_keys[TEDA]
    alliance.commit_next(chain, [(alliance.revoke_officer(TEDA, officer.public), None)])
    refused(chain, alliance, [alliance.issue(TEDA, COO, certificate(chafta, "X-2"), "X-2")], errors.OfficerRevokedError)
    refused(chain, alliance, [(alliance.register_officer(TEDA, officer.public), None)], errors.OfficerRevokedError)


def test_registered_officer_may_issue(alliance: Alliance, chafta: dict[str, Any]) -> None:
    chain = alliance.chain()
    newcomer = SigningKey.from_label("new officer")
    refused(chain, alliance, [alliance.issue(TEDA, COO, certificate(chafta, "N-1"), "N-1", key=newcomer)],
            errors.NotOfficerOfZoneError)
    alliance.commit_next(chain, [(alliance.register_officer(TEDA, newcomer.public), None)])
    alliance.commit_next(chain, [alliance.issue(TEDA, COO, certificate(chafta, "N-1"), "N-1", key=newcomer)])
    assert chain.get_doc(f"{TEDA}/N-1") is not None


def test_only_the_zone_admin_manages_officers(alliance: Alliance) -> None:
    chain = alliance.chain()
    newcomer = SigningKey.from_label("new officer")
    from ledger.transactions import OfficerRegister

    forged = alliance.sign(alliance.admin_keys[STONE], OfficerRegister(TEDA, newcomer.public))
    refused(chain, alliance, [(forged, None)], errors.NotZoneAdminError)
    refused(chain, alliance, [(alliance.revoke_officer(TEDA, newcomer.public), None)], errors.OfficerNotActiveError)
    existing = alliance.officer_keys[TEDA].public
    refused(chain, alliance, [(alliance.register_officer(TEDA, existing), None)], errors.OfficerAlreadyActiveError)


def test_replayed_transaction_is_refused(alliance: Alliance, chafta: dict[str, Any]) -> None:
    chain = alliance.chain()
    entry = alliance.issue(TEDA, COO, certificate(chafta, "P-1"), "P-1")
    alliance.commit_next(chain, [entry])
    refused(chain, alliance, [entry], errors.ReplayedTransactionError)


def test_same_transaction_twice_in_one_block_is_refused(alliance: Alliance, chafta: dict[str, Any]) -> None:
    chain = alliance.chain()
    entry = (alliance.revoke_officer(TEDA, alliance.officer_keys[TEDA].public), None)
    before = snapshot(chain)
    executed = alliance.propose(chain, [entry])
    header = executed.block.header
    doubled = Block(header.with_changes(tx_count=2), None, executed.block.txs * 2, executed.block.documents * 2)
    with pytest.raises(errors.DuplicateInBlockError):
        execute_block(chain, doubled)
    assert snapshot(chain) == before


def test_amendment_with_stale_supersedes_is_refused(alliance: Alliance, chafta: dict[str, Any]) -> None:
    chain = alliance.chain()
    doc_id, first_hash = issue_one(alliance, chain, chafta)
    v2 = certificate(chafta, "CO-1") | {"name": "v2"}
    alliance.commit_next(chain, [alliance.amend(TEDA, doc_id, v2, first_hash, "fix")])
    v3 = certificate(chafta, "CO-1") | {"name": "v3"}
    refused(chain, alliance, [alliance.amend(TEDA, doc_id, v3, first_hash, "again")], errors.StaleSupersedesError)


def test_revoking_twice_is_refused(alliance: Alliance, chafta: dict[str, Any]) -> None:
    chain = alliance.chain()
    doc_id, doc_hash = issue_one(alliance, chain, chafta)
    alliance.commit_next(chain, [(alliance.revoke(TEDA, doc_id, doc_hash, "error"), None)])
    refused(chain, alliance, [(alliance.revoke(TEDA, doc_id, doc_hash, "again"), None)], errors.DocumentRevokedError)


def test_amending_a_revoked_or_unknown_document_is_refused(alliance: Alliance, chafta: dict[str, Any]) -> None:
    chain = alliance.chain()
    doc_id, doc_hash = issue_one(alliance, chain, chafta)
    refused(chain, alliance, [alliance.amend(TEDA, f"{TEDA}/NOPE", certificate(chafta, "NOPE"), doc_hash, "x")],
            errors.DocumentNotFoundError)
    alliance.commit_next(chain, [(alliance.revoke(TEDA, doc_id, doc_hash, "error"), None)])
    v2 = certificate(chafta, "CO-1") | {"name": "v2"}
    refused(chain, alliance, [alliance.amend(TEDA, doc_id, v2, doc_hash, "x")], errors.DocumentRevokedError)


def test_document_id_issued_twice_is_refused(alliance: Alliance, chafta: dict[str, Any]) -> None:
    chain = alliance.chain()
    issue_one(alliance, chain, chafta)
    again = certificate(chafta, "CO-1") | {"name": "different"}
    refused(chain, alliance, [alliance.issue(TEDA, COO, again, "CO-1")], errors.DocumentExistsError)


def test_doc_id_must_carry_the_documents_own_number(alliance: Alliance, chafta: dict[str, Any]) -> None:
    chain = alliance.chain()
    refused(chain, alliance, [alliance.issue(TEDA, COO, certificate(chafta, "REAL-1"), "OTHER-1")],
            errors.DocIdMismatchError)


def test_content_must_match_doc_hash_and_schema(alliance: Alliance, chafta: dict[str, Any]) -> None:
    chain = alliance.chain()
    envelope, content = alliance.issue(TEDA, COO, certificate(chafta, "H-1"), "H-1")
    refused(chain, alliance, [(envelope, content.replace(b"H-1", b"H-2"))], errors.DocumentHashMismatchError)
    refused(chain, alliance, [(envelope, None)], errors.DocumentMissingError)
    broken = certificate(chafta, "S-1")
    del broken["issuer"]
    refused(chain, alliance, [alliance.issue(TEDA, COO, broken, "S-1")], errors.DocumentSchemaError)


def test_non_canonical_document_bytes_are_refused(alliance: Alliance, chafta: dict[str, Any]) -> None:
    chain = alliance.chain()
    doc = certificate(chafta, "J-1")
    pretty = json.dumps(doc, indent=1).encode()
    from ledger.transactions import DocIssue

    envelope = alliance.sign(alliance.officer_keys[TEDA], DocIssue(COO, f"{TEDA}/J-1", H(pretty), ()))
    refused(chain, alliance, [(envelope, pretty)], errors.DocumentJsonError)


def test_wrong_chain_and_bad_signature(alliance: Alliance, chafta: dict[str, Any]) -> None:
    chain = alliance.chain()
    from ledger.transactions import DocIssue, Envelope

    doc = certificate(chafta, "W-1")
    body = DocIssue(COO, f"{TEDA}/W-1", compute_doc_hash(doc), ())
    other_chain = alliance.sign(alliance.officer_keys[TEDA], body, chain_id="another-chain")
    refused(chain, alliance, [(other_chain, jcs(doc))], errors.WrongChainError)
    good = alliance.sign(alliance.officer_keys[TEDA], body)
    forged = Envelope.create(good.tx, bytes(64))
    refused(chain, alliance, [(forged, jcs(doc))], errors.SignatureInvalidError)


def test_attachment_registered_to_another_document_is_refused(alliance: Alliance, chafta: dict[str, Any]) -> None:
    chain = alliance.chain()
    pdf = Attachment("certificate.pdf", "application/pdf", H(b"%PDF-1.7 ..."), 12)
    alliance.commit_next(chain, [alliance.issue(TEDA, COO, certificate(chafta, "A-1"), "A-1", attachments=(pdf,))])
    assert chain.get_attachment(pdf.sha256) is not None
    refused(chain, alliance, [alliance.issue(TEDA, COO, certificate(chafta, "A-2"), "A-2", attachments=(pdf,))],
            errors.AttachmentError)


BadHeader = Callable[[Block, Alliance, Chain], Block]


def _wrong_state_root(block: Block, alliance: Alliance, chain: Chain) -> Block:
    return Block(block.header.with_changes(state_root=bytes(32)), block.last_commit, block.txs, block.documents)


def _wrong_log_root(block: Block, alliance: Alliance, chain: Chain) -> Block:
    return Block(block.header.with_changes(log_root=H(b"x")), block.last_commit, block.txs, block.documents)


def _wrong_prev_hash(block: Block, alliance: Alliance, chain: Chain) -> Block:
    return Block(block.header.with_changes(prev_hash=H(b"elsewhere")), block.last_commit, block.txs, block.documents)


def _wrong_height(block: Block, alliance: Alliance, chain: Chain) -> Block:
    return Block(block.header.with_changes(height=block.height + 1), block.last_commit, block.txs, block.documents)


def _wrong_proposer(block: Block, alliance: Alliance, chain: Chain) -> Block:
    n = len(alliance.validator_keys)
    header = block.header.with_changes(proposer=(block.header.proposer + 1) % n)
    return Block(header, block.last_commit, block.txs, block.documents)


def _time_not_after_previous(block: Block, alliance: Alliance, chain: Chain) -> Block:
    assert chain.head_header is not None
    header = block.header.with_changes(time_ms=chain.head_header.time_ms)
    return Block(header, block.last_commit, block.txs, block.documents)


def _dropped_transaction(block: Block, alliance: Alliance, chain: Chain) -> Block:
    return Block(block.header, block.last_commit, block.txs[1:], block.documents[1:])


def _last_commit_below_quorum(block: Block, alliance: Alliance, chain: Chain) -> Block:
    lc = block.last_commit
    assert lc is not None
    short = CommitCertificate(lc.height, lc.round, lc.block_hash, lc.signatures[:2])
    return Block(block.header, short, block.txs, block.documents)


BAD_BLOCKS: dict[str, tuple[BadHeader, type[errors.LedgerError]]] = {
    "wrong state root": (_wrong_state_root, errors.StateRootMismatchError),
    "wrong log root": (_wrong_log_root, errors.LogRootMismatchError),
    "wrong prev_hash": (_wrong_prev_hash, errors.WrongPrevHashError),
    "wrong height": (_wrong_height, errors.WrongHeightError),
    "wrong proposer": (_wrong_proposer, errors.WrongProposerError),
    "time not after previous": (_time_not_after_previous, errors.BlockTimeError),
    "dropped transaction": (_dropped_transaction, errors.TxCountMismatchError),
    "last commit below quorum": (_last_commit_below_quorum, errors.LastCommitMismatchError),
}


@pytest.mark.parametrize("name", sorted(BAD_BLOCKS))
@pytest.mark.parametrize("backend", ["memory", "leveldb"])
def test_bad_block_is_refused_and_store_unchanged(
    alliance: Alliance, chafta: dict[str, Any], tmp_path: Path, name: str, backend: str
) -> None:
    store = MemoryStore() if backend == "memory" else LevelDBStore(tmp_path / "db")
    chain = alliance.chain(store)
    issue_one(alliance, chain, chafta, "B-0")
    entries = [alliance.issue(TEDA, COO, certificate(chafta, f"B-{i}"), f"B-{i}") for i in range(1, 4)]
    executed = alliance.propose(chain, entries)
    mutate, error = BAD_BLOCKS[name]
    bad = mutate(executed.block, alliance, chain)
    before = snapshot(chain)
    with pytest.raises(error):
        apply_block(chain, bad, alliance.certify(bad.block_hash, bad.height, bad.header.round))
    assert snapshot(chain) == before
    assert chain.height == 1
    store.close()


@pytest.mark.parametrize(
    ("signers", "error"),
    [([0, 1], errors.CommitQuorumError), ([0, 0, 1], errors.CommitDuplicateSignerError), ([2, 1, 0], errors.CommitOrderError)],
)
def test_bad_commit_certificate_is_refused_and_store_unchanged(
    alliance: Alliance, chafta: dict[str, Any], signers: list[int], error: type[errors.LedgerError]
) -> None:
    chain = alliance.chain()
    executed = alliance.propose(chain, [alliance.issue(TEDA, COO, certificate(chafta, "C-1"), "C-1")])
    block = executed.block
    good = alliance.certify(block.block_hash, 1, 0)
    by_index = {s.validator: s for s in good.signatures}
    bad = CommitCertificate(1, 0, block.block_hash, tuple(by_index[i] for i in signers))
    before = snapshot(chain)
    with pytest.raises(error):
        apply_block(chain, block, bad)
    assert snapshot(chain) == before and chain.height == 0


def test_commit_for_another_block_or_forged_is_refused(alliance: Alliance, chafta: dict[str, Any]) -> None:
    chain = alliance.chain()
    executed = alliance.propose(chain, [alliance.issue(TEDA, COO, certificate(chafta, "C-2"), "C-2")])
    block = executed.block
    with pytest.raises(errors.CommitTargetError):
        apply_block(chain, block, alliance.certify(H(b"other"), 1, 0))
    good = alliance.certify(block.block_hash, 1, 0)
    from ledger.blocks import CommitSignature

    forged = CommitCertificate(1, 0, block.block_hash, (*good.signatures[:-1], CommitSignature(3, bytes(64))))
    with pytest.raises(errors.CommitSignatureError):
        apply_block(chain, block, forged)
    assert chain.height == 0
    apply_block(chain, block, good)
    assert chain.height == 1


def test_store_of_another_genesis_is_refused(alliance: Alliance, tmp_path: Path) -> None:
    from scripts.devkit import make_alliance

    store = LevelDBStore(tmp_path / "db")
    alliance.chain(store)
    with pytest.raises(errors.GenesisError):
        make_alliance(4, chain_id="other-chain").chain(store)
    store.close()


def test_store_in_another_storage_format_is_refused_by_node_and_auditor(alliance: Alliance, tmp_path: Path) -> None:
    from ledger.audit import StoreSource
    from ledger.chain import KEY_FORMAT, STORE_FORMAT
    from ledger.store import WriteBatch

    store = LevelDBStore(tmp_path / "db")
    alliance.chain(store)
    assert store.get(KEY_FORMAT) == bytes([STORE_FORMAT])
    alliance.chain(store)  # the same format reopens
    batch = WriteBatch()
    batch.delete(KEY_FORMAT)  # as a store written before m/format existed
    store.write(batch)
    with pytest.raises(errors.StoreFormatError, match="got format 1"):
        alliance.chain(store)
    store.close()
    with pytest.raises(errors.StoreFormatError):
        StoreSource(tmp_path / "db")
    LevelDBStore(tmp_path / "db").close()  # the auditor let go of the store


def test_reopened_store_continues(alliance: Alliance, chafta: dict[str, Any], tmp_path: Path) -> None:
    store = LevelDBStore(tmp_path / "db")
    chain = alliance.chain(store)
    issue_one(alliance, chain, chafta, "O-1")
    head = chain.head_hash
    store.close()
    store = LevelDBStore(tmp_path / "db")
    chain = alliance.chain(store)
    assert (chain.height, chain.head_hash) == (1, head)
    issue_one(alliance, chain, chafta, "O-2")
    assert chain.height == 2
    commit = chain.get_commit(1)
    block2 = chain.get_block(2)
    assert commit is not None and block2 is not None and block2.last_commit == commit
    store.close()


def test_block_errors_stay_in_transaction_order_with_signatures_checked_first(
    alliance: Alliance, chafta: dict[str, Any]
) -> None:
    # execute_block verifies every signature before any rule runs; the error it raises
    # must still be the first transaction's in order, with that transaction's index.
    from ledger.transactions import DocIssue, Envelope

    chain = alliance.chain()
    issue_one(alliance, chain, chafta, "O-0")
    good = [alliance.issue(TEDA, COO, certificate(chafta, f"O-{i}"), f"O-{i}") for i in (1, 2)]
    doc = certificate(chafta, "O-3")
    body = DocIssue(COO, f"{TEDA}/O-3", compute_doc_hash(doc), ())
    forged = (Envelope.create(alliance.sign(alliance.officer_keys[TEDA], body).tx, bytes(64)), jcs(doc))
    replayed = good[0]
    executed = alliance.propose(chain, good)

    def block_of(entries: list[Any]) -> Block:
        return Block(
            executed.block.header.with_changes(tx_count=len(entries)), executed.block.last_commit,
            tuple(e.encode() for e, _ in entries), tuple(c for _, c in entries),
        )

    # A forged signature after a rule-breaking transaction: the rule is named, at index 2.
    with pytest.raises(errors.DuplicateInBlockError) as first:
        execute_block(chain, block_of([good[0], good[1], replayed, forged]))
    assert first.value.tx_index == 2
    # The forged signature itself, at its own index.
    with pytest.raises(errors.SignatureInvalidError) as second:
        execute_block(chain, block_of([good[0], forged, good[1]]))
    assert second.value.tx_index == 1


def test_checked_positions_skip_their_checks_and_only_theirs(alliance: Alliance, chafta: dict[str, Any]) -> None:
    # ``checked`` names positions whose signature and content were checked in full as
    # this block carries them (the auditor's workers). The trust is by position: the
    # same transaction one place over is checked again.
    from ledger.transactions import DocIssue, Envelope

    chain = alliance.chain()
    issue_one(alliance, chain, chafta, "P-0")
    good = alliance.issue(TEDA, COO, certificate(chafta, "P-1"), "P-1")
    doc = certificate(chafta, "P-2")
    body = DocIssue(COO, f"{TEDA}/P-2", compute_doc_hash(doc), ())
    forged = (Envelope.create(alliance.sign(alliance.officer_keys[TEDA], body).tx, bytes(64)), jcs(doc))
    executed = alliance.propose(chain, [good])

    def block_of(entries: list[Any]) -> Block:
        return Block(
            executed.block.header.with_changes(tx_count=len(entries)), executed.block.last_commit,
            tuple(e.encode() for e, _ in entries), tuple(c for _, c in entries),
        )

    block = block_of([forged, good])
    with pytest.raises(errors.SignatureInvalidError) as unchecked:
        execute_block(chain, block, checked=frozenset({1}))
    assert unchecked.value.tx_index == 0
    # Marked checked, the forged signature is taken as checked: the block then fails
    # only on its log root, which the header computed for another transaction.
    with pytest.raises(errors.LogRootMismatchError):
        execute_block(chain, block_of([forged]), checked=frozenset({0}))
    with pytest.raises(errors.DocumentHashMismatchError) as content:
        execute_block(chain, block_of([(good[0], good[1].replace(b"P-1", b"P-9"))]), checked=frozenset({1}))
    assert content.value.tx_index == 0
    assert execute_block(chain, block_of([good]), checked=frozenset({0})).log_size == executed.log_size
