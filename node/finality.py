"""What a node can say about a transaction, and the clients waiting for it to be final.

:class:`TxResult` is the answer (pending, committed with its place in the log, or
rejected with the error). :class:`FinalityWaiters` holds the futures of clients that
asked to wait (``?wait=``): each is resolved when its transaction is committed or
rejected, and forgotten when its wait ends, so a client waiting on hashes that never
become final leaves nothing behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

STATUS_PENDING = "pending"
STATUS_COMMITTED = "committed"
STATUS_REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class TxResult:
    """What a node can say about one transaction."""

    tx_hash: bytes
    """``H(cb(envelope))``."""
    status: str
    """``pending``, ``committed`` or ``rejected``."""
    height: int | None = None
    """The block that committed it."""
    log_index: int | None = None
    """Its leaf in the document log."""
    block_hash: bytes | None = None
    """The committing block's hash."""
    error_code: str | None = None
    """Why it was rejected (a stable error code)."""
    error: str | None = None
    """The rejection's message."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"tx_hash": self.tx_hash.hex(), "status": self.status}
        if self.height is not None:
            out |= {"height": self.height, "log_index": self.log_index}
        if self.block_hash is not None:
            out["block_hash"] = self.block_hash.hex()
        if self.error_code is not None:
            out["error"] = {"type": self.error_code, "detail": self.error}
        return out


class FinalityWaiters:
    """Clients waiting for transactions to become final."""

    def __init__(self) -> None:
        self._waiting: dict[bytes, list[asyncio.Future[TxResult]]] = {}

    def __len__(self) -> int:
        return len(self._waiting)

    def resolve(self, tx_hash: bytes, result: TxResult) -> None:
        for future in self._waiting.pop(tx_hash, []):
            if not future.done():
                future.set_result(result)

    async def wait_final(
        self, tx_hashes: list[bytes], timeout_s: float, lookup: Callable[[bytes], TxResult | None]
    ) -> list[TxResult]:
        """Each transaction's result once committed or rejected, or as it stands when
        ``timeout_s`` has passed (``lookup`` says what the node knows now)."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[TxResult]] = []
        for tx_hash in tx_hashes:
            result = lookup(tx_hash)
            future: asyncio.Future[TxResult] = loop.create_future()
            if result is not None and result.status != STATUS_PENDING:
                future.set_result(result)
            else:
                self._waiting.setdefault(tx_hash, []).append(future)
            futures.append(future)
        pending = [f for f in futures if not f.done()]
        try:
            if pending and timeout_s > 0:
                await asyncio.wait(pending, timeout=timeout_s)
        finally:
            for tx_hash, future in zip(tx_hashes, futures, strict=True):
                if not future.done():
                    future.cancel()
                    self._forget(tx_hash, future)
        return [
            future.result() if not future.cancelled() else lookup(tx_hash) or TxResult(tx_hash, STATUS_PENDING)
            for tx_hash, future in zip(tx_hashes, futures, strict=True)
        ]

    def _forget(self, tx_hash: bytes, future: asyncio.Future[TxResult]) -> None:
        waiting = self._waiting.get(tx_hash)
        if waiting is None:
            return
        waiting[:] = [f for f in waiting if f is not future]
        if not waiting:
            del self._waiting[tx_hash]
