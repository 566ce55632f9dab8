"""Block sync between validators: both sides of catch-up, and fetching one block by hash.

The *client* side (:class:`BlockSync`) runs when the driver (:mod:`node.driver`) asks
for it: it asks each peer for its head (highest first), fetches ``(block,
certificate)`` pairs in order from peers ahead, and applies each one through the
ledger's checks: the certificate against the validator set (``commit_block`` runs
``validate_commit``) and the block re-executed against the local state. Each applied
block is handed to ``on_applied`` at once, so the driver hears of it before anything
else happens. A peer that sends a bad block or certificate is left for the next one.

The *server* side (:func:`serve_status`, :func:`serve_blocks`, :func:`serve_block`)
answers those requests from the committed chain, bounded by ``SYNC_BATCH`` blocks and
``MAX_SYNC_REPLY_BLOCK_BYTES`` per reply.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Protocol

from ledger.blocks import Block, CommitCertificate
from ledger.chain import Chain
from ledger.encoding import cb, decode_cb, expect_bytes, expect_int, expect_list, expect_map
from ledger.errors import LedgerError
from ledger.limits import MAX_SYNC_REPLY_BLOCK_BYTES, SYNC_BATCH
from ledger.transition import ExecutedBlock, commit_block, execute_block

log = logging.getLogger("zoneledger.sync")



class PeerRequester(Protocol):
    """The part of :class:`node.peers.PeerNetwork` that sync uses."""

    async def request(self, index: int, kind: str, body: bytes) -> bytes: ...


class BlockSync:
    """The client side of catch-up for one node."""

    def __init__(
        self,
        chain: Chain,
        *,
        verified: Callable[[], frozenset[bytes]],
        on_applied: Callable[[ExecutedBlock, CommitCertificate], None],
        on_peer_head: Callable[[int, int], None],
    ) -> None:
        self.chain = chain
        self.verified = verified
        """Hashes of transactions whose signatures this node already checked."""
        self.on_applied = on_applied
        """Called with each block as it is committed (before the next is fetched)."""
        self.on_peer_head = on_peer_head
        """Called with (validator, head height) from each status reply."""
        self._lock = asyncio.Lock()

    async def sync_once(self, peers: PeerRequester, peer_order: list[int]) -> int:
        """Fetch and apply blocks peers have beyond our head; return how many were applied."""
        async with self._lock:
            applied = 0
            for index in peer_order:
                their_height = await self.get_peer_head(peers, index)
                if their_height is None:
                    continue
                while their_height > self.chain.height:
                    got = await self.fetch_and_apply(peers, index)
                    if not got:
                        break
                    applied += got
            return applied

    async def get_peer_head(self, peers: PeerRequester, index: int) -> int | None:
        try:
            status = expect_map(decode_cb(await peers.request(index, "status", b"")), "status")
        except LedgerError:
            return None
        height = status.get("height")
        if not isinstance(height, int) or height < 0:
            return None
        self.on_peer_head(index, height)
        return height

    async def fetch_and_apply(self, peers: PeerRequester, index: int) -> int:
        """One batch from validator ``index``, applied in order; how many landed."""
        try:
            raw = await peers.request(index, "get_blocks", cb({"from": self.chain.height + 1, "count": SYNC_BATCH}))
            items = expect_list(decode_cb(raw), "blocks")
        except LedgerError as exc:
            log.info("sync from validator %d failed: %s", index, exc.one_line())
            return 0
        applied = 0
        for item in items:
            try:
                m = expect_map(item, "block", frozenset({"block", "commit"}))
                block = Block.decode(expect_bytes(m["block"], "block"))
                commit = CommitCertificate.decode(expect_bytes(m["commit"], "commit"))
                if block.height != self.chain.height + 1:
                    break
                executed = execute_block(self.chain, block, verified=self.verified())
                commit_block(self.chain, executed, commit)
            except LedgerError as exc:
                log.warning("block from validator %d refused: %s", index, exc.one_line())
                return applied
            self.on_applied(executed, commit)
            applied += 1
        return applied


async def fetch_block(
    peers: PeerRequester, peer_order: list[int], height: int, block_hash: bytes
) -> Block | None:
    """Ask peers, in order, for a block known only by hash (decided by precommits we saw)."""
    for index in peer_order:
        try:
            value = decode_cb(await peers.request(index, "get_block", cb({"height": height, "block_hash": block_hash})))
            if not isinstance(value, bytes):
                continue
            block = Block.decode(value)
        except LedgerError:
            continue
        if block.block_hash == block_hash:
            return block
    return None


# --- the server side ----------------------------------------------------------------------


def serve_status(chain: Chain) -> bytes:
    return cb({"height": chain.height, "block_hash": chain.head_hash})


def serve_blocks(chain: Chain, body: bytes) -> bytes:
    """Up to ``SYNC_BATCH`` committed blocks from ``from``, each with its certificate."""
    m = expect_map(decode_cb(body), "get_blocks", frozenset({"from", "count"}))
    start = expect_int(m["from"], "from", 1)
    count = min(expect_int(m["count"], "count", 1), SYNC_BATCH)
    out = []
    size = 0
    for height in range(start, min(start + count, chain.height + 1)):
        raw = chain.get_block_bytes(height)
        commit = chain.get_commit(height)
        if raw is None or commit is None:
            break
        out.append({"block": raw, "commit": commit.encode()})
        size += len(raw)
        if size > MAX_SYNC_REPLY_BLOCK_BYTES:
            break
    return cb(out)


def serve_block(chain: Chain, pending: Mapping[bytes, Block], body: bytes) -> bytes:
    """One block by hash: a pending proposal, or a committed block at the given height."""
    m = expect_map(decode_cb(body), "get_block", frozenset({"height", "block_hash"}))
    wanted = expect_bytes(m["block_hash"], "block_hash", 32)
    found = pending.get(wanted)
    if found is None:
        height = expect_int(m["height"], "height", 1)
        stored = chain.get_block(height) if height <= chain.height else None
        found = stored if stored is not None and stored.block_hash == wanted else None
    return cb(None if found is None else found.encode())
