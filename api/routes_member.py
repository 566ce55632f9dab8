"""Member endpoints: documents and whole blocks, for officers and auditors only.

``GET /v1/blocks?from=&count=`` is how an observer (``node/observer.py``) follows the
chain: up to ``SYNC_BATCH`` committed blocks with their certificates in one signed
request, the reply a validator's ``get_blocks`` peer request gets, bounded the same way.

Every request is signed with the request domain (``ledger.requests``) and addressed to
this node by its zone id; the dependency refuses unsigned, misaddressed, stale,
replayed and non-member requests before a handler runs.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Response

from api.auth import MemberAuth
from api.routes_public import MAX_HEIGHT, Height
from ledger.chain import key_commit
from ledger.encoding import bounded_repr, cb, parse_canonical_json
from ledger.errors import DocumentNotFoundError, NotFoundError
from ledger.limits import SYNC_BATCH
from ledger.transactions import Envelope
from node.runtime import Node
from node.sync import serve_blocks

MSGPACK = "application/msgpack"


def is_member(node: Node, key: bytes) -> bool:
    """An auditor now, or an officer active now in a zone still in the alliance."""
    chain = node.chain
    if key in chain.get_auditors():
        return True
    officer = chain.get_officer(key)
    if officer is None or not officer.is_active:
        return False
    zone = chain.get_zone(officer.zone_id)
    return zone is not None and zone.is_active


def document_view(node: Node, doc_id: str) -> dict[str, Any]:
    record = node.chain.get_doc(doc_id)
    if record is None:
        raise DocumentNotFoundError(f"no document {bounded_repr(doc_id)} is registered")
    history = []
    for entry in node.chain.get_history(doc_id, record.history_len):
        item: dict[str, Any] = {
            "kind": entry.kind,
            "tx_hash": entry.tx_hash.hex(),
            "log_index": entry.log_index,
            "height": entry.height,
            "doc_hash": entry.doc_hash.hex(),
            "version": entry.version,
        }
        location = node.chain.get_tx_location(entry.tx_hash)
        if location is not None:
            block = node.chain.get_stored_block(location.height)
            if block is not None:
                tx = Envelope.decode(block.txs[location.index]).tx
                item["signer"] = tx.signer.hex()
                item["time_ms"] = block.header.time_ms
                reason = getattr(tx.body, "reason", None)
                if reason is not None:
                    item["reason"] = reason
                attachments = getattr(tx.body, "attachments", ())
                item["attachments"] = [
                    {"name": a.name, "media_type": a.media_type, "sha256": a.sha256.hex(), "size": a.size}
                    for a in attachments
                ]
        history.append(item)
    content = node.chain.get_content(record.doc_hash)
    return {
        "doc_id": record.doc_id,
        "doc_type": record.doc_type,
        "status": record.status,
        "version": record.version,
        "doc_hash": record.doc_hash.hex(),
        "log_index": record.log_index,
        "revoke_reason": record.revoke_reason,
        "document": None if content is None else parse_canonical_json(content),
        "history": history,
    }


def make_member_router(node: Node) -> APIRouter:
    auth = MemberAuth(lambda key: is_member(node, key), node_id=node.zone_id)
    router = APIRouter(tags=["members"])

    @router.get("/v1/documents/{doc_id:path}")
    async def document(doc_id: str, member: bytes = Depends(auth)) -> dict[str, Any]:
        """A document's current version, status and full history (signed member request)."""
        return document_view(node, doc_id)

    @router.get("/v1/blocks", response_class=Response)
    async def blocks(
        from_: int = Query(..., alias="from", ge=1, le=MAX_HEIGHT),
        count: int = Query(SYNC_BATCH, ge=1, le=SYNC_BATCH),
        member: bytes = Depends(auth),
    ) -> Response:
        """Up to ``count`` (at most ``SYNC_BATCH``) committed blocks from height ``from``,
        each with its commit certificate, for observers: ``application/msgpack``
        ``cb([{"block": bytes, "commit": bytes}])``; fewer past the head or past
        ``MAX_SYNC_REPLY_BLOCK_BYTES`` of blocks, none beyond the head."""
        return Response(serve_blocks(node.chain, cb({"from": from_, "count": count})), media_type=MSGPACK)

    @router.get("/v1/blocks/{height}")
    async def block(height: Height, member: bytes = Depends(auth)) -> dict[str, Any]:
        """A whole committed block: header, certificates, transactions and documents."""
        found = node.chain.get_block(height) if height >= 1 else None
        if found is None:
            raise NotFoundError(f"expected a committed height 1..{node.chain.height}, got {height}")
        commit = node.chain.get_commit(height)
        return {
            "header": found.header.to_json(),
            "block_hash": found.block_hash.hex(),
            "commit": commit.to_json() if commit else None,
            "last_commit": found.last_commit.to_json() if found.last_commit else None,
            "txs": [t.hex() for t in found.txs],
            "documents": [None if d is None else parse_canonical_json(d) for d in found.documents],
        }

    @router.get("/v1/blocks/{height}/raw", response_class=Response)
    async def block_raw(height: Height, member: bytes = Depends(auth)) -> Response:
        """A committed block's stored bytes and its stored certificate, for auditors:
        ``application/msgpack`` ``cb({"block": bytes, "commit": bytes | nil})``."""
        raw = node.chain.get_block_bytes(height) if height >= 1 else None
        if raw is None:
            raise NotFoundError(f"expected a committed height 1..{node.chain.height}, got {height}")
        commit = node.chain.store.get(key_commit(height))
        return Response(cb({"block": raw, "commit": commit}), media_type=MSGPACK)

    return router
