"""The auditor's replay: a clean chain passes with the right counts; each kind of corruption
written straight into a stopped node's LevelDB is caught at the right height, by the right rule."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ledger.audit import AuditReport, StoreSource, audit_chain
from ledger.blocks import PREVOTE, Block, CommitCertificate, CommitSignature, Vote
from ledger.chain import (
    KEY_HEAD,
    Chain,
    StoredBlock,
    encode_head,
    key_block,
    key_commit,
    key_content,
    key_header,
)
from ledger.encoding import H, compute_doc_hash
from ledger.keys import SigningKey
from ledger.store import LevelDBStore, MemoryStore, WriteBatch
from node.evidence import EvidenceLog
from node.votes import Evidence
from scripts.devkit import Alliance, load_example, make_alliance, with_number

COO = "certificate_of_origin"
TEDA = "EG-TEDA"
HEAD = 6
NEW_OFFICER = SigningKey.from_label("audit test officer")


def build_chain(alliance: Alliance, chain: Chain, *, until: int = HEAD, fork_at: int | None = None) -> None:
    """Six blocks with every kind of transaction; ``fork_at`` makes that block differ."""
    template = load_example("coo_preferential.json")
    declaration = load_example("decl_free_zone_entry.json")

    def coo(number: str, key: SigningKey | None = None) -> Any:
        return alliance.issue(TEDA, COO, with_number(template, COO, number), number, key=key)

    def block(height: int, entries: list[Any]) -> None:
        if height > until:
            return
        if height == fork_at:
            entries = [coo("FORK-1")]
        alliance.commit_next(chain, entries)

    amended = with_number(template, COO, "A-2")
    amended["name"] = "Certificate of Origin (corrected)"
    block(1, [
        (alliance.register_officer(TEDA, NEW_OFFICER.public), None),
        coo("A-1"), coo("A-2"),
        alliance.issue("DJ-DIFTZ", "customs_declaration", declaration, declaration["declarationId"]),
    ])
    block(2, [coo("B-1"), coo("B-2", NEW_OFFICER), coo("B-3")])
    block(3, [
        alliance.amend(TEDA, f"{TEDA}/A-2", amended, compute_doc_hash(with_number(template, COO, "A-2")), "name corrected"),
        (alliance.revoke(TEDA, f"{TEDA}/A-1", compute_doc_hash(with_number(template, COO, "A-1")), "goods not shipped"), None),
    ])
    block(4, [(alliance.revoke_officer(TEDA, NEW_OFFICER.public), None), coo("D-1"), coo("D-2")])
    block(5, [coo("E-1"), coo("E-2")])
    block(6, [coo("F-1")])


@pytest.fixture(scope="module")
def template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("audit-template")
    alliance = make_alliance(4)
    chain = alliance.chain(LevelDBStore(root / "ledger"))
    build_chain(alliance, chain)
    chain.store.close()
    return root


@pytest.fixture
def data_dir(template_dir: Path, tmp_path: Path) -> Path:
    """A fresh copy of the stopped node's data directory for each test to corrupt."""
    target = tmp_path / "node"
    shutil.copytree(template_dir, target)
    return target


def audit(data_dir: Path, *, workers: int = 1, alliance: Alliance | None = None) -> AuditReport:
    source = StoreSource(data_dir)
    try:
        return audit_chain(source, (alliance or make_alliance(4)).genesis, workers=workers)
    finally:
        source.close()


def corrupt(data_dir: Path, edit: Callable[[LevelDBStore], None]) -> None:
    """Write straight into the stopped node's LevelDB."""
    store = LevelDBStore(data_dir / "ledger", create=False)
    try:
        edit(store)
    finally:
        store.close()


def put(store: LevelDBStore, key: bytes, value: bytes | None) -> None:
    batch = WriteBatch()
    if value is None:
        batch.delete(key)
    else:
        batch.put(key, value)
    store.write(batch)


def read_block(store: LevelDBStore, height: int) -> Block:
    raw = store.get(key_block(height))
    assert raw is not None
    return StoredBlock.decode(raw, height).assemble(store)


def write_block(store: LevelDBStore, block: Block) -> None:
    """As a node stores a block: the record names each content by hash; contents under x/."""
    hashes = tuple(None if doc is None else H(doc) for doc in block.documents)
    put(store, key_block(block.height), StoredBlock.from_block(block, hashes).encode())
    for index, doc in enumerate(block.documents):
        put(store, key_content(block.height, index), doc)


def copy_block(source: LevelDBStore | MemoryStore, target: LevelDBStore, height: int) -> None:
    raw = source.get(key_block(height))
    assert raw is not None
    write_block(target, StoredBlock.decode(raw, height).assemble(source))


def rewrite_block(height: int, change: Callable[[Block], Block]) -> Callable[[LevelDBStore], None]:
    def edit(store: LevelDBStore) -> None:
        write_block(store, change(read_block(store, height)))

    return edit


def rewrite_header(height: int, **fields: Any) -> Callable[[LevelDBStore], None]:
    return rewrite_block(height, lambda b: replace(b, header=b.header.with_changes(**fields)))


def stored_commit(store: LevelDBStore, height: int) -> CommitCertificate:
    raw = store.get(key_commit(height))
    assert raw is not None
    return CommitCertificate.decode(raw)


def flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1:]


# --- a clean chain ---------------------------------------------------------


def test_clean_chain_passes_with_the_right_counts(data_dir: Path) -> None:
    (data_dir / "evidence.jsonl").write_text(json.dumps({"time_ms": 1, "evidence": "Evidence(...)"}) + "\n")
    report = audit(data_dir)
    assert report.failure is None, report.failure
    assert (report.claimed_head, report.first_height, report.last_height, report.blocks) == (HEAD, 1, HEAD, HEAD)
    assert report.transactions == 4 + 3 + 2 + 3 + 2 + 1
    assert report.documents_by_type == {COO: 10, "customs_declaration": 1}
    assert report.documents_by_zone == {TEDA: 10, "DJ-DIFTZ": 1}
    assert report.amendments == 1
    officer = make_alliance(4).officer_keys[TEDA].public.hex()
    assert report.officer_activity[TEDA][officer] == {"issues": 9, "amends": 1, "revokes": 1}
    assert report.officer_activity[TEDA][NEW_OFFICER.public.hex()] == {"issues": 1, "amends": 0, "revokes": 0}
    assert [(r["doc_id"], r["reason"], r["height"]) for r in report.revocations] == [
        (f"{TEDA}/A-1", "goods not shipped", 3)
    ]
    assert [(c["kind"], c["height"]) for c in report.officer_changes] == [("officer.register", 1), ("officer.revoke", 4)]
    assert report.evidence == [{"time_ms": 1, "evidence": "Evidence(...)"}]
    json.dumps(report.to_json())  # JSON-able


def test_worker_pool_and_plain_path_agree(data_dir: Path) -> None:
    plain = audit(data_dir, workers=1).to_json()
    pooled = audit(data_dir, workers=2).to_json()
    for report in (plain, pooled):
        for volatile in ("elapsed_s", "docs_per_s", "workers"):
            report.pop(volatile)
    assert plain == pooled


def test_another_genesis_is_refused_before_replay(data_dir: Path) -> None:
    report = audit(data_dir, alliance=make_alliance(4, chain_id="sez-alliance-other"))
    assert report.failure is not None
    assert (report.failure.height, report.failure.rule) == (0, "audit.genesis_mismatch")


# --- corruption written into the store ---------------------------------------


def _doc_byte(store: LevelDBStore) -> None:
    # The content's only copy, beside block 2's stored record, which names it by hash.
    doc = read_block(store, 2).documents[1]
    assert doc is not None
    at = doc.index(b'"name":"') + 9
    put(store, key_content(2, 1), flip(doc, at))


def _content_missing(store: LevelDBStore) -> None:
    put(store, key_content(2, 2), None)


def _tx_signature_byte(store: LevelDBStore) -> None:
    # The envelope is {"sig": bin64, "tx": ...}: bytes 7..70 are the signature.
    rewrite_block(2, lambda b: replace(b, txs=b.txs[:2] + (flip(b.txs[2], 20),)))(store)


def _reorder(store: LevelDBStore) -> None:
    rewrite_block(2, lambda b: replace(b, txs=(b.txs[1], b.txs[0], *b.txs[2:]),
                                       documents=(b.documents[1], b.documents[0], *b.documents[2:])))(store)


def _header_time_back(store: LevelDBStore) -> None:
    previous = read_block(store, 2).header.time_ms
    rewrite_header(3, time_ms=previous)(store)


def _header_time_forward(store: LevelDBStore) -> None:
    rewrite_header(3, time_ms=read_block(store, 3).header.time_ms + 1)(store)


def _header_proposer(store: LevelDBStore) -> None:
    rewrite_header(4, proposer=(read_block(store, 4).header.proposer + 1) % 4)(store)


def _header_state_root(store: LevelDBStore) -> None:
    rewrite_header(4, state_root=b"\x42" * 32)(store)


def _deleted_block(store: LevelDBStore) -> None:
    put(store, key_block(3), None)


def _commit_signed_for_another_block(store: LevelDBStore) -> None:
    own, other = stored_commit(store, HEAD), stored_commit(store, HEAD - 1)
    put(store, key_commit(HEAD), replace(own, signatures=other.signatures).encode())


def _commit_below_quorum(store: LevelDBStore) -> None:
    own = stored_commit(store, HEAD)
    put(store, key_commit(HEAD), replace(own, signatures=own.signatures[:2]).encode())


def _commit_one_forged_signature(store: LevelDBStore) -> None:
    own = stored_commit(store, 4)
    forged = CommitSignature(own.signatures[1].validator, flip(own.signatures[1].sig, 5))
    put(store, key_commit(4), replace(own, signatures=(own.signatures[0], forged, *own.signatures[2:])).encode())


def _commit_for_wrong_height(store: LevelDBStore) -> None:
    put(store, key_commit(4), store.get(key_commit(3)))


def _commit_not_canonical(store: LevelDBStore) -> None:
    # A valid certificate of block 3, but not the one block 4 carries.
    alliance = make_alliance(4)
    own = stored_commit(store, 3)
    put(store, key_commit(3), alliance.certify(own.block_hash, 3, own.round, signers=[0, 1, 2]).encode())


def _foreign_chain_block(store: LevelDBStore) -> None:
    # Same validator keys, another chain id: every signature in it is valid.
    other = make_alliance(4, chain_id="sez-alliance-other")
    chain = other.chain(MemoryStore())
    build_chain(other, chain, until=3)
    copy_block(chain.store, store, 3)
    put(store, key_commit(3), chain.store.get(key_commit(3)))


def _fork_block(store: LevelDBStore) -> None:
    # Same genesis and validators, another block 3 with a valid certificate (header replaced too).
    alliance = make_alliance(4)
    chain = alliance.chain(MemoryStore())
    build_chain(alliance, chain, until=3, fork_at=3)
    copy_block(chain.store, store, 3)
    for key in (key_header(3), key_commit(3)):
        put(store, key, chain.store.get(key))


def _extra_block_after_head(store: LevelDBStore) -> None:
    put(store, KEY_HEAD, encode_head(HEAD - 1, read_block(store, HEAD - 1).block_hash))


def _last_commit_altered(store: LevelDBStore) -> None:
    def change(b: Block) -> Block:
        assert b.last_commit is not None
        sigs = b.last_commit.signatures
        forged = CommitSignature(sigs[2].validator, flip(sigs[2].sig, 9))
        return replace(b, last_commit=replace(b.last_commit, signatures=(*sigs[:2], forged, *sigs[3:])))

    rewrite_block(5, change)(store)


def _stored_header(store: LevelDBStore) -> None:
    raw = store.get(key_header(2))
    assert raw is not None
    put(store, key_header(2), flip(raw, len(raw) - 3))


def _head_hash(store: LevelDBStore) -> None:
    put(store, KEY_HEAD, encode_head(HEAD, b"\x07" * 32))


def _non_canonical_block(store: LevelDBStore) -> None:
    raw = store.get(key_block(2))
    assert raw is not None
    # 0xde = map16 for a 4-entry map: same value, not the smallest encoding.
    put(store, key_block(2), b"\xde\x00\x04" + raw[1:])


CORRUPTIONS: list[tuple[str, Callable[[LevelDBStore], None], int, int | None, str]] = [
    ("document byte in a block", _doc_byte, 2, 1, "doc.hash_mismatch"),
    ("document content deleted", _content_missing, 2, None, "store.corrupt"),
    ("transaction signature byte", _tx_signature_byte, 2, 2, "tx.signature_invalid"),
    ("two transactions reordered", _reorder, 2, None, "block.log_root"),
    ("header time before the previous block", _header_time_back, 3, None, "block.time"),
    ("header time moved forward", _header_time_forward, 3, None, "commit.target_mismatch"),
    ("header proposer", _header_proposer, 4, None, "block.proposer"),
    ("header state_root", _header_state_root, 4, None, "block.state_root"),
    ("deleted block", _deleted_block, 3, None, "audit.missing_block"),
    ("certificate with another block's signatures", _commit_signed_for_another_block, HEAD, None, "commit.signature_invalid"),
    ("certificate below quorum", _commit_below_quorum, HEAD, None, "commit.quorum"),
    ("certificate with one forged signature", _commit_one_forged_signature, 4, None, "commit.signature_invalid"),
    ("stored certificate of the wrong height", _commit_for_wrong_height, 4, None, "commit.target_mismatch"),
    ("stored certificate not the canonical one", _commit_not_canonical, 3, None, "audit.commit_mismatch"),
    ("block of another chain, validly signed", _foreign_chain_block, 3, None, "block.chain_id"),
    ("fork block with a valid certificate", _fork_block, 4, None, "block.prev_hash"),
    ("extra block after the claimed head", _extra_block_after_head, HEAD, None, "audit.extra_block"),
    ("last_commit inside a block altered", _last_commit_altered, 5, None, "block.last_commit"),
    ("stored header differs from the block's", _stored_header, 2, None, "audit.header_mismatch"),
    ("head pointer names another hash", _head_hash, HEAD, None, "audit.head_mismatch"),
    ("block bytes not canonical", _non_canonical_block, 2, None, "block.malformed"),
]


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize(("what", "edit", "height", "tx_index", "rule"), CORRUPTIONS, ids=[c[0] for c in CORRUPTIONS])
def test_corruption_is_caught_at_its_height_by_its_rule(
    data_dir: Path, what: str, edit: Callable[[LevelDBStore], None], height: int, tx_index: int | None, rule: str,
    workers: int,
) -> None:
    corrupt(data_dir, edit)
    report = audit(data_dir, workers=workers)
    failure = report.failure
    assert failure is not None, what
    assert (failure.height, failure.rule, failure.tx_index) == (height, rule, tx_index), failure
    assert report.last_height < max(height, HEAD) or rule in {"audit.extra_block", "audit.head_mismatch"}


def test_state_root_failure_shows_both_roots(data_dir: Path) -> None:
    corrupt(data_dir, _header_state_root)
    failure = audit(data_dir).failure
    assert failure is not None
    assert failure.found == "42" * 32
    assert failure.expected is not None and len(failure.expected) == 64 and failure.expected != failure.found


def test_signature_failure_names_the_signature_found(data_dir: Path) -> None:
    corrupt(data_dir, _tx_signature_byte)
    failure = audit(data_dir, workers=2).failure
    assert failure is not None and failure.found is not None and failure.expected is not None
    assert len(failure.found) == 128 and "signature by" in failure.expected


def test_document_failure_shows_both_hashes(data_dir: Path) -> None:
    corrupt(data_dir, _doc_byte)
    failure = audit(data_dir).failure
    assert failure is not None and failure.expected is not None and failure.found is not None
    assert len(failure.expected) == len(failure.found) == 64


@pytest.mark.parametrize(
    ("edit", "expected", "found"),
    [
        (_head_hash, None, "07" * 32),
        (_header_proposer, "0", "1"),
        (_commit_below_quorum, "at least 3 signatures", "2"),
    ],
    ids=["head hash", "proposer", "quorum"],
)
def test_failure_values_come_from_the_error(
    data_dir: Path, edit: Callable[[LevelDBStore], None], expected: str | None, found: str
) -> None:
    corrupt(data_dir, edit)
    failure = audit(data_dir).failure
    assert failure is not None and failure.found == found
    assert failure.expected is not None
    assert expected is None or failure.expected == expected


def test_report_reads_values_only_from_error_attributes() -> None:
    # A message in the "expected X, got Y" form is for people: the report never parses it.
    from ledger.audit.report import compute_failure
    from ledger.errors import LastCommitMismatchError, StateRootMismatchError

    plain = compute_failure(3, StateRootMismatchError("header.state_root: expected aa, got bb"))
    assert (plain.expected, plain.found) == (None, None)
    shown = compute_failure(3, StateRootMismatchError("differs", expected=b"\xaa", found=b"\xbb"))
    assert (shown.expected, shown.found) == ("aa", "bb")
    inner = StateRootMismatchError("differs", expected=1, found=2)
    try:
        raise LastCommitMismatchError(f"last_commit: {inner}") from inner
    except LastCommitMismatchError as exc:
        wrapped = compute_failure(4, exc)
    assert (wrapped.rule, wrapped.cause, wrapped.expected, wrapped.found) == (
        "block.last_commit", "block.state_root", "1", "2"
    )


def test_altered_last_commit_names_the_inner_rule(data_dir: Path) -> None:
    corrupt(data_dir, _last_commit_altered)
    failure = audit(data_dir, workers=2).failure
    assert failure is not None
    assert (failure.rule, failure.cause) == ("block.last_commit", "commit.signature_invalid")


@pytest.mark.parametrize("chunk_size", [1, 2, 5])
def test_chunks_cut_across_blocks_map_passes_back_to_their_positions(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, chunk_size: int
) -> None:
    # Chunks are cut at CHUNK_SIZE whatever the block size: a block's transactions may
    # span chunks and a chunk hold several blocks. Every pass must land on its own
    # block and position: here every transaction a worker can check, and nothing else.
    from ledger.audit import pipeline, replay
    from ledger.transactions import DocAmend, Envelope

    seen: dict[int, frozenset[int]] = {}
    execute = replay.execute_block

    def recording(chain: Chain, block: Block, **kwargs: Any) -> Any:
        seen[block.header.height] = kwargs["checked"]
        return execute(chain, block, **kwargs)

    monkeypatch.setattr(pipeline, "CHUNK_SIZE", chunk_size)
    monkeypatch.setattr(replay, "execute_block", recording)
    report = audit(data_dir, workers=2)
    assert report.passed, report.failure
    store = LevelDBStore(data_dir / "ledger", create=False)
    try:
        for height in range(1, HEAD + 1):
            txs = read_block(store, height).txs
            expected = {i for i, tx in enumerate(txs) if not isinstance(Envelope.decode(tx).tx.body, DocAmend)}
            assert seen[height] == expected, height
    finally:
        store.close()


@pytest.mark.parametrize(("edit", "tx_index", "rule"), [(_tx_signature_byte, 2, "tx.signature_invalid"), (_doc_byte, 1, "doc.hash_mismatch")])
def test_small_chunks_still_name_the_transaction(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, edit: Callable[[LevelDBStore], None], tx_index: int, rule: str
) -> None:
    from ledger.audit import pipeline

    monkeypatch.setattr(pipeline, "CHUNK_SIZE", 2)
    corrupt(data_dir, edit)
    failure = audit(data_dir, workers=2).failure
    assert failure is not None and (failure.height, failure.tx_index, failure.rule) == (2, tx_index, rule)


def test_a_node_home_its_data_dir_and_its_store_all_audit(data_dir: Path, tmp_path: Path) -> None:
    # The devnet lays a node out as <home>/data/ledger: any of the three may be named.
    home = tmp_path / "home"
    home.mkdir()
    (data_dir / "evidence.jsonl").write_text(json.dumps({"time_ms": 2, "evidence": "seen"}) + "\n")
    shutil.move(str(data_dir), str(home / "data"))
    for path in (home, home / "data", home / "data" / "ledger"):
        report = audit(path, workers=1)
        assert report.passed and report.last_height == HEAD, path
        assert report.source == str(home / "data" / "ledger")
    assert audit(home).evidence == audit(home / "data").evidence == [{"time_ms": 2, "evidence": "seen"}]


def test_evidence_log_entries_are_reported_beside_the_old_file(data_dir: Path) -> None:
    key = SigningKey.from_label("equivocator")
    votes = [Vote("c", PREVOTE, 2, 0, bytes([b]) * 32, 1).sign(key) for b in (1, 2)]
    log = EvidenceLog(data_dir / "evidence", clock=lambda: 5)
    entry = log.append(Evidence(votes[0], votes[1]))
    log.close()
    (data_dir / "evidence.jsonl").write_text(json.dumps({"time_ms": 2, "evidence": "seen"}) + "\n")
    assert entry is not None
    reported = audit(data_dir, workers=1).evidence
    assert reported == [json.loads(entry.encode()), {"time_ms": 2, "evidence": "seen"}]


def test_a_directory_without_a_store_is_refused_plainly(tmp_path: Path) -> None:
    from ledger.errors import StoreError

    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreError, match="expected a stopped node's data directory"):
        StoreSource(tmp_path / "empty")
    assert not (tmp_path / "empty" / "CURRENT").exists()  # nothing was created there
