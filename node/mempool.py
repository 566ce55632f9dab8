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
from ledger.limits import DEFAULT_MEMPOOL_MAX_BYTES, MAX_REJECTION_MESSAGE_CHARS, MAX_REJECTIONS_BYTES
from ledger.transactions import Envelope
from ledger.transition import BlockContext, apply_transaction
from node.finality import STATUS_PENDING, STATUS_REJECTED

_PENDING_BATCH_LIMIT = 200_000



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
    """The error's message, cut at ``MAX_REJECTION_MESSAGE_CHARS``."""

    @property
    def cost(self) -> int:
        """What keeping it counts against ``MAX_REJECTIONS_BYTES``: the message and the
        objects of one entry (its hash, the record, the map's slot)."""
        return len(self.message) + _REJECTION_OVERHEAD_BYTES


_REJECTION_OVERHEAD_BYTES = 256
"""Measured (tracemalloc): about 240 bytes per remembered rejection besides its message's characters."""


def compute_rejection(error: LedgerError) -> Rejection:
    """The record kept of ``error``: its code whole and its message cut short, so a
    message that quotes input (bounded at the source too) cannot grow the memory."""
    message = str(error)
    if len(message) > MAX_REJECTION_MESSAGE_CHARS:
        message = f"{message[:MAX_REJECTION_MESSAGE_CHARS]}…({len(message)} characters)"
    return Rejection(error.code, message)


class Mempool:
    """Pending transactions of one node, in arrival order."""

    def __init__(self, chain: Chain, *, max_txs: int = 50_000, max_bytes: int = DEFAULT_MEMPOOL_MAX_BYTES) -> None:
        self.chain = chain
        self.max_txs = max_txs
        self.max_bytes = max_bytes
        self.entries: OrderedDict[bytes, PoolEntry] = OrderedDict()
        self.bytes = 0
        self.verified: set[bytes] = set()
        self.rejections: OrderedDict[bytes, Rejection] = OrderedDict()
        self.rejections_bytes = 0
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
        full = self._full_error(size)
        if full is not None:
            raise full
        ctx = self._pending
        try:
            apply_transaction(ctx, len(self.entries), tx_bytes, content, decoded=envelope)
        except LedgerError as exc:
            self._remember_rejection(tx_hash, exc)
            raise
        self.verified.add(tx_hash)
        self.entries[tx_hash] = PoolEntry(tx_hash, tx_bytes, content)
        self.bytes += size
        self._forget_rejection(tx_hash)
        return tx_hash, True

    def refuse(self, tx_hash: bytes, size: int, error: LedgerError) -> LedgerError:
        """What :meth:`add` raises for a transaction that decodes but whose chain id or
        signature fails (checked off the event loop by the caller, which passes the
        error): ``MempoolFullError`` when the pool is at a bound, since ``add`` checks
        for room first; else ``error``, remembered as ``add`` remembers it."""
        full = self._full_error(size)
        if full is not None:
            return full
        self._remember_rejection(tx_hash, error)
        return error

    def _full_error(self, size: int) -> MempoolFullError | None:
        if len(self.entries) >= self.max_txs or self.bytes + size > self.max_bytes:
            return MempoolFullError(
                f"expected room in the mempool, got {len(self.entries)} transactions and {self.bytes} bytes pending"
            )
        return None

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
        self._rebuild()

    def on_block_committed(
        self, tx_hashes: tuple[bytes, ...], block_txs: tuple[tuple[bytes, bytes | None], ...] = ()
    ) -> list[tuple[bytes, LedgerError]]:
        """Drop committed transactions and keep the pending view true to the new head.

        The pending view already holds the effects of every committed transaction that
        was pending here (only their log positions differ, which no admission rule
        reads). So the usual case applies just the block's transactions this node had
        not seen; only if one of them conflicts with what is pending is the view rebuilt
        and every pending transaction re-checked. Those that no longer hold (e.g. an
        amendment that lost a race) are returned and recorded as rejected, never dropped
        silently. ``block_txs`` are the block's ``(tx_bytes, content)``; without them the
        view is rebuilt.
        """
        unseen = [(h, item) for h, item in zip(tx_hashes, block_txs, strict=False) if h not in self.entries]
        for tx_hash in tx_hashes:
            entry = self.entries.pop(tx_hash, None)
            if entry is not None:
                self.bytes -= entry.size
            self.verified.discard(tx_hash)
        pending = self._pending
        if block_txs and len(pending.batch) < _PENDING_BATCH_LIMIT:
            try:
                for _, (tx_bytes, content) in unseen:
                    apply_transaction(pending, 0, tx_bytes, content)
            except LedgerError:
                pass  # a committed transaction conflicts with a pending one: rebuild below
            else:
                # Committed now: a resubmission is a replay of the chain, not a duplicate here.
                pending.seen_tx.difference_update(tx_hashes)
                pending.height = self.chain.height + 1
                return []
        return self._rebuild()

    def _rebuild(self) -> list[tuple[bytes, LedgerError]]:
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
        # Bounded by bytes, oldest first: the refused transactions of a flood of junk
        # cost this memory at most, whatever their number.
        self._forget_rejection(tx_hash)
        rejection = compute_rejection(error)
        self.rejections[tx_hash] = rejection
        self.rejections_bytes += rejection.cost
        while self.rejections_bytes > MAX_REJECTIONS_BYTES:
            _, oldest = self.rejections.popitem(last=False)
            self.rejections_bytes -= oldest.cost

    def _forget_rejection(self, tx_hash: bytes) -> None:
        rejection = self.rejections.pop(tx_hash, None)
        if rejection is not None:
            self.rejections_bytes -= rejection.cost
