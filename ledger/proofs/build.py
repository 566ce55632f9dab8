"""Building proof bundles beside the node: one document's proof out of a :class:`~ledger.chain.Chain`.

:func:`build_bundle` reads the DESIGN §9 bundle on the newest committed header: the
current version's transaction with its inclusion proof, the state value and state proof,
every transaction of the document (issue, amendments, revocation) each with its
inclusion proof, the header and its commit certificate. It costs O(versions x log n)
storage reads, never a scan. :func:`bundle_for_hash` finds which document a hash belongs
to. This is the side that reads storage; the verifier (:mod:`ledger.proofs.verify`)
never imports it.
"""

from __future__ import annotations

from typing import Any

from ledger.chain import Chain, HistoryEntry
from ledger.encoding import H
from ledger.errors import NotFoundError, StoreCorruptError
from ledger.proofs.bundle import FORMAT, MATCH_ATTACHMENT, MATCH_DOCUMENT


def _get_tx_bytes(chain: Chain, entry: HistoryEntry, blocks: dict[int, tuple[bytes, ...]]) -> bytes:
    """The envelope bytes of a history entry: its location, then its block (one read per block)."""
    location = chain.get_tx_location(entry.tx_hash)
    if location is None:
        raise StoreCorruptError(f"expected a location for transaction {entry.tx_hash.hex()}, got none")
    txs = blocks.get(location.height)
    if txs is None:
        stored = chain.get_stored_block(location.height)
        if stored is None:
            raise StoreCorruptError(f"expected block {location.height}, got none")
        txs = blocks[location.height] = stored.txs
    if not 0 <= location.index < len(txs) or H(txs[location.index]) != entry.tx_hash:
        raise StoreCorruptError(f"expected transaction {entry.tx_hash.hex()} at {location}, got another")
    return txs[location.index]


def build_bundle(chain: Chain, doc_id: str) -> dict[str, Any]:
    """The DESIGN §9 bundle of ``doc_id`` on the newest committed header; NotFoundError if unknown."""
    header = chain.head_header
    if header is None:
        raise NotFoundError("expected a committed block, got an empty chain")
    commit = chain.get_commit(chain.height)
    if commit is None:
        raise StoreCorruptError(f"expected the commit certificate of height {chain.height}, got none")
    record = chain.get_doc(doc_id)
    if record is None:
        raise NotFoundError(f"expected a registered document, got no {doc_id!r}")
    log = chain.log()
    size = header.log_size
    blocks: dict[int, tuple[bytes, ...]] = {}
    history = []
    current: bytes | None = None
    for entry in chain.get_history(doc_id, record.history_len):
        tx = _get_tx_bytes(chain, entry, blocks)
        if entry.log_index == record.log_index:
            current = tx
        history.append({
            "tx": tx.hex(),
            "log_index": entry.log_index,
            "inclusion_proof": [p.hex() for p in log.inclusion_proof(entry.log_index, size)],
        })
    if current is None:
        raise StoreCorruptError(f"{doc_id}: expected its current version in its history, got none")
    key = H(doc_id.encode("utf-8"))
    tree = chain.state_tree()
    if tree.root() != header.state_root:
        raise StoreCorruptError(f"expected state root {header.state_root.hex()}, got {tree.root().hex()}")
    state_value = tree.get(key)
    if state_value is None:
        raise StoreCorruptError(f"{doc_id}: expected a state tree value, got none")
    return {
        "format": FORMAT,
        "chain_id": chain.genesis.chain_id,
        "genesis_hash": chain.genesis.genesis_hash.hex(),
        "document_hash": record.doc_hash.hex(),
        "tx": current.hex(),
        "log_index": record.log_index,
        "header": header.encode().hex(),
        "header_fields": header.to_json(),
        "commit": commit.to_json(),
        "validators": [v.hex() for v in chain.genesis.validators],
        "inclusion_proof": [p.hex() for p in log.inclusion_proof(record.log_index, size)],
        "state_value": state_value.hex(),
        "state_proof": tree.prove(key).to_json(),
        "history": history,
    }


def bundle_for_hash(chain: Chain, h: bytes) -> tuple[str, str] | None:
    """``(doc_id, "document" | "attachment")`` for a document hash of any version or an attachment's sha256."""
    found = chain.get_doc_by_hash(h)
    if found is not None:
        return found[0], MATCH_DOCUMENT
    attachment = chain.get_attachment(h)
    if attachment is not None:
        return str(attachment["doc_id"]), MATCH_ATTACHMENT
    return None
