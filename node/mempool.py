"""The mempool: transactions checked in full on entry, kept in order, bounded.

Every transaction is run against the committed ledger *plus every transaction already
pending* (a private :class:`~ledger.transition.BlockContext` that is never written), so
an officer can issue and then amend before either is committed, and a conflicting
second transaction is refused at the door instead of failing later in a block.

A signature is verified once per node: the hashes of verified transactions are kept
and handed to block execution. Nothing is silently dropped: a transaction leaves the
pool either committed or with a recorded rejection its submitter can query.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from ledger.chain import Chain
from ledger.errors import LedgerError, MempoolFullError
from ledger.transactions import Envelope
from ledger.transition import BlockContext, apply_transaction

STATUS_PENDING = "pending"
STATUS_COMMITTED = "committed"
STATUS_REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class PoolEntry:
    """One pending transaction and the document content travelling with it."""

    tx_hash: bytes
    """``H(cb(envelope))``."""
    tx_bytes: bytes
    """Canonical envelope bytes."""
    content: bytes | None
    """The document's JCS bytes, or None."""

    @property
    def size(self) -> int:
        return len(self.tx_bytes) + (len(self.content) if self.content else 0)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a transaction that once was pending (or was offered) will not be committed."""

    code: str
    """The ``LedgerError`` code."""
    message: str
    """The error's message."""


class Mempool:
    """Pending transactions of one node, in arrival order."""

    def __init__(self, chain: Chain, *, max_txs: int = 50_000, max_bytes: int = 256 * 1024 * 1024) -> None:
        self.chain = chain
        self.max_txs = max_txs
        self.max_bytes = max_bytes
        self.entries: OrderedDict[bytes, PoolEntry] = OrderedDict()
        self.bytes = 0
        self.verified: set[bytes] = set()
        self.rejections: OrderedDict[bytes, Rejection] = OrderedDict()
        self._pending = BlockContext(chain, chain.height + 1)

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, tx_hash: bytes) -> bool:
        return tx_hash in self.entries

    def add(self, tx_bytes: bytes, content: bytes | None) -> tuple[bytes, bool]:
        """Check and admit a transaction; return ``(tx_hash, newly_added)``.

        Raises the rule's :class:`LedgerError` if it is invalid, or
        :class:`MempoolFullError` when the pool is at a bound.
        """
        envelope = Envelope.decode(tx_bytes)
        tx_hash = envelope.tx_hash
        if tx_hash in self.entries:
            return tx_hash, False
        size = len(tx_bytes) + (len(content) if content else 0)
        if len(self.entries) >= self.max_txs or self.bytes + size > self.max_bytes:
            raise MempoolFullError(
                f"expected room in the mempool, got {len(self.entries)} transactions and {self.bytes} bytes pending"
            )
        ctx = self._pending
        try:
            apply_transaction(ctx, len(self.entries), tx_bytes, content)
        except LedgerError as exc:
            self._remember_rejection(tx_hash, exc)
            raise
        self.verified.add(tx_hash)
        self.entries[tx_hash] = PoolEntry(tx_hash, tx_bytes, content)
        self.bytes += size
        self.rejections.pop(tx_hash, None)
        return tx_hash, True

    def candidates(self) -> list[tuple[bytes, bytes | None]]:
        """Pending transactions in order, for the proposer."""
        return [(e.tx_bytes, e.content) for e in self.entries.values()]

    def status(self, tx_hash: bytes) -> str | None:
        if tx_hash in self.entries:
            return STATUS_PENDING
        if tx_hash in self.rejections:
            return STATUS_REJECTED
        return None

    def drop(self, tx_hash: bytes, error: LedgerError) -> None:
        """A pending transaction failed in a block after all: remove it and say why."""
        entry = self.entries.pop(tx_hash, None)
        if entry is not None:
            self.bytes -= entry.size
        self.verified.discard(tx_hash)
        self._remember_rejection(tx_hash, error)
        self.on_block_committed(())

    def on_block_committed(self, tx_hashes: tuple[bytes, ...]) -> list[tuple[bytes, LedgerError]]:
        """Drop committed transactions, then re-check the rest against the new head.

        Returns the transactions that no longer hold (e.g. a conflicting amendment that
        lost the race); they are recorded as rejected, never silently forgotten.
        """
        for tx_hash in tx_hashes:
            entry = self.entries.pop(tx_hash, None)
            if entry is not None:
                self.bytes -= entry.size
            self.verified.discard(tx_hash)
        self._pending = BlockContext(self.chain, self.chain.height + 1, verified=frozenset(self.verified))
        dropped: list[tuple[bytes, LedgerError]] = []
        for tx_hash, entry in list(self.entries.items()):
            try:
                apply_transaction(self._pending, 0, entry.tx_bytes, entry.content)
            except LedgerError as exc:
                del self.entries[tx_hash]
                self.bytes -= entry.size
                self.verified.discard(tx_hash)
                self._remember_rejection(tx_hash, exc)
                dropped.append((tx_hash, exc))
        return dropped

    def _remember_rejection(self, tx_hash: bytes, error: LedgerError) -> None:
        self.rejections[tx_hash] = Rejection(error.code, str(error))
        self.rejections.move_to_end(tx_hash)
        while len(self.rejections) > 100_000:
            self.rejections.popitem(last=False)
