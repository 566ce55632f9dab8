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
from ledger.governance import compute_officer_state_key, compute_zone_state_key
from ledger.proofs.bundle import FORMAT, MATCH_ATTACHMENT, MATCH_DOCUMENT
from ledger.transactions import Envelope, doc_id_parts


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


def build_validator_history(chain: Chain, height: int) -> list[dict[str, Any]]:
    """``validator_history`` (DESIGN §12) for a header at ``height``: for each change of
    the set that governs a height up to ``height``, the header that announced it (c + 1),
    that header's certificate and the new set, oldest first."""
    entries = []
    for change in chain.validator_history[1:]:
        if change.from_height > height:
            break
        announcing = change.from_height - 1
        header = chain.get_header(announcing)
        commit = chain.get_commit(announcing)
        if header is None or commit is None:
            raise StoreCorruptError(f"expected header and certificate {announcing} (a change of the set), got none")
        entries.append({
            "header": header.encode().hex(), "commit": commit.to_json(), "validators": [v.hex() for v in change.validators],
        })
    return entries


def build_issuer(chain: Chain, signer: bytes, zone_id: str) -> dict[str, Any]:
    """``issuer`` (DESIGN §12): the signing officer's and its zone's records with their proofs."""
    tree = chain.state_tree()
    officer_key, zone_key = compute_officer_state_key(signer), compute_zone_state_key(zone_id)
    officer_record, zone_record = tree.get(officer_key), tree.get(zone_key)
    if officer_record is None or zone_record is None:
        raise StoreCorruptError(f"expected the records of officer {signer.hex()} and zone {zone_id}, got none")
    return {
        "officer_record": officer_record.hex(), "officer_proof": tree.prove(officer_key).to_json(),
        "zone_record": zone_record.hex(), "zone_proof": tree.prove(zone_key).to_json(),
    }


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
        "validators": [v.hex() for v in chain.validators_for(header.height)],
        "inclusion_proof": [p.hex() for p in log.inclusion_proof(record.log_index, size)],
        "state_value": state_value.hex(),
        "state_proof": tree.prove(key).to_json(),
        "history": history,
        "validator_history": build_validator_history(chain, header.height),
        "issuer": build_issuer(chain, Envelope.decode(current).tx.signer, doc_id_parts(doc_id)[0]),
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
