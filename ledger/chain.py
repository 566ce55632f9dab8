"""The persisted ledger: where every record lives and how it is read back.

One store holds one chain. Everything a block changes — the block, its certificate,
transaction locations, document records, log nodes, tree nodes and the head pointer —
is written in a single atomic batch (see :mod:`ledger.transition`), so a store reopened
after a crash at any instant stands on the last whole block.

Key layout (all keys are bytes; ``h8`` is a big-endian uint64, ``\\0`` separates text):

    m/genesis                 genesis_hash
    m/format                  storage format version, one byte (STORE_FORMAT); absent: format 1
    m/head                    cb({"height", "block_hash"})        written last in each block batch
    b/<h8>                    cb(StoredBlock): header, last_commit, txs, content hashes
    h/<h8>                    header bytes
    c/<h8>                    canonical commit certificate of height h
    t/<tx_hash>               cb({"height", "index", "log_index"})
    d/<doc_id>                cb(DocRecord)                       current state of a document
    v/<doc_id>\\0<seq4>        cb(HistoryEntry)                    every transaction of a document
    x/<h8><index4>            JCS bytes of the content beside tx ``index`` of block h (its only copy)
    k/<doc_hash>              cb({"doc_id", "version", "height", "index"})  lookup by content hash
    a/<sha256>                cb({"doc_id", "version", "name", "media_type", "size"})
    n/<number>\\0<doc_id>      empty                               lookup by the document's own number
    (membership: zones, officers, proposals, validator sets; see ledger.membership)
    L/...                     document log nodes (ledger.merkle)
    S/...                     state tree nodes (ledger.smt)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import msgpack

from ledger.blocks import Block, CommitCertificate, Header, decode_block_frame, decode_per_tx_bytes
from ledger.encoding import ZERO_HASH, cb, decode_cb, expect_map, pack_uint64
from ledger.errors import BlockMalformedError, GenesisError, LedgerError, StoreCorruptError, StoreFormatError
from ledger.genesis import ConsensusParams, Genesis
from ledger.governance import OfficerRecord, ProposalRecord
from ledger.membership import (
    OFFICER_PREFIX,
    PROPOSAL_PREFIX,
    VALIDATORS_PREFIX,
    MembershipView,
    SetChange,
    compute_validators_at,
    unpack_stored,
    write_genesis_membership,
)
from ledger.merkle import MerkleLog
from ledger.smt import NodeCache, StateTree
from ledger.store import KVReader, KVStore, Overlay, WriteBatch

LOG_PREFIX = b"L/"
STATE_PREFIX = b"S/"
KEY_GENESIS = b"m/genesis"
KEY_HEAD = b"m/head"
KEY_FORMAT = b"m/format"
STORE_FORMAT = 3
"""The layout this code reads and writes: 3 = membership records (DESIGN §12) in the
state tree from genesis; 2 = contents once beside the block record and the state tree in
pages (format 1, before both, wrote no ``m/format``)."""


def key_block(height: int) -> bytes:
    return b"b/" + pack_uint64(height)


def key_header(height: int) -> bytes:
    return b"h/" + pack_uint64(height)


def key_commit(height: int) -> bytes:
    return b"c/" + pack_uint64(height)


def key_tx(tx_hash: bytes) -> bytes:
    return b"t/" + tx_hash


def key_doc(doc_id: str) -> bytes:
    return b"d/" + doc_id.encode("utf-8")


def key_history(doc_id: str, seq: int) -> bytes:
    return b"v/" + doc_id.encode("utf-8") + b"\x00" + seq.to_bytes(4, "big")


def key_history_prefix(doc_id: str) -> bytes:
    return b"v/" + doc_id.encode("utf-8") + b"\x00"


def key_content(height: int, index: int) -> bytes:
    # By block position, so a block's contents sit together and are read back in order.
    return key_content_prefix(height) + index.to_bytes(4, "big")


def key_content_prefix(height: int) -> bytes:
    return b"x/" + pack_uint64(height)


def key_by_hash(doc_hash: bytes) -> bytes:
    return b"k/" + doc_hash


def key_attachment(sha256: bytes) -> bytes:
    return b"a/" + sha256


def key_number(number: str, doc_id: str) -> bytes:
    return b"n/" + number.encode("utf-8") + b"\x00" + doc_id.encode("utf-8")


def key_number_prefix(number: str) -> bytes:
    return b"n/" + number.encode("utf-8") + b"\x00"


@dataclass(frozen=True, slots=True)
class DocRecord:
    """The current state of one document."""

    doc_id: str
    """``"<zone_id>/<number>"``."""
    doc_type: str
    """Fixed at issue."""
    status: str
    """``active`` or ``revoked``."""
    version: int
    """1 at issue, +1 per amendment."""
    doc_hash: bytes
    """Current version's hash."""
    log_index: int
    """Log leaf of the current version's transaction."""
    history_len: int
    """Transactions recorded for this document (issue, amendments, revocation)."""
    revoke_reason: str | None = None
    """Why it was revoked, when it was."""

    def to_wire(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "doc_type": self.doc_type,
            "status": self.status,
            "version": self.version,
            "doc_hash": self.doc_hash,
            "log_index": self.log_index,
            "history_len": self.history_len,
            "revoke_reason": self.revoke_reason,
        }

    @classmethod
    def from_wire(cls, m: dict[str, Any]) -> DocRecord:
        return cls(**m)

    def state_value(self) -> bytes:
        """The state-tree value (DESIGN §6)."""
        return compute_state_value(self.doc_hash, self.status, self.version, self.log_index)


def compute_state_value(doc_hash: bytes, status: str, version: int, log_index: int) -> bytes:
    """``cb({"doc_hash", "status", "version", "log_index"})``; keys are written already sorted,
    so the C packer alone yields the canonical bytes (a test pins this to ``cb``)."""
    return _pack({"doc_hash": doc_hash, "log_index": log_index, "status": status, "version": version})


class _ThreadPackers(threading.local):
    # msgpack.packb builds a Packer per call, which costs twice the packing of a small
    # record; one Packer per thread (a Packer is not shareable across threads) avoids it.
    def __init__(self) -> None:
        self.packer = msgpack.Packer(use_bin_type=True)


_PACKERS = _ThreadPackers()


def _pack(record: dict[str, Any]) -> bytes:
    packed: bytes = _PACKERS.packer.pack(record)
    return packed


def pack_record(record: dict[str, Any]) -> bytes:
    """Internal storage records: plain MessagePack (not part of any hash)."""
    return _pack(record)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One transaction in a document's life."""

    kind: str
    """``doc.issue``, ``doc.amend`` or ``doc.revoke``."""
    tx_hash: bytes
    """The transaction."""
    log_index: int
    """Its log leaf."""
    height: int
    """Block that committed it."""
    doc_hash: bytes
    """The version it issued, introduced or revoked."""
    version: int
    """Version number after it."""

    def to_wire(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "tx_hash": self.tx_hash,
            "log_index": self.log_index,
            "height": self.height,
            "doc_hash": self.doc_hash,
            "version": self.version,
        }

    @classmethod
    def from_wire(cls, m: dict[str, Any]) -> HistoryEntry:
        return cls(**m)


@dataclass(frozen=True, slots=True)
class TxLocation:
    """Where a committed transaction sits."""

    height: int
    """Block height."""
    index: int
    """Position in the block."""
    log_index: int
    """Leaf in the document log."""


_STORED_BLOCK_FIELDS = frozenset({"header", "last_commit", "txs", "content_hashes"})


@dataclass(frozen=True, slots=True)
class StoredBlock:
    """A block as the store keeps it under ``b/``: each document's content by its hash.

    A content is stored once, under ``x/<height><index>`` beside the record, which names
    it by hash instead of carrying a second copy: half the bytes written per document,
    and a record small enough to read for its transactions alone.
    :meth:`Chain.get_block` puts the block back together.
    """

    header: Header
    """The block's header."""
    last_commit: CommitCertificate | None
    """Certificate of the previous block; ``None`` at height 1."""
    txs: tuple[bytes, ...]
    """Canonical envelope bytes, in log order."""
    content_hashes: tuple[bytes | None, ...]
    """For each transaction, the hash of the content beside it (issue, amend) or ``None``."""

    @classmethod
    def from_block(cls, block: Block, content_hashes: tuple[bytes | None, ...]) -> StoredBlock:
        return cls(block.header, block.last_commit, block.txs, content_hashes)

    def encode(self) -> bytes:
        return cb({
            "header": self.header.to_wire(),
            "last_commit": None if self.last_commit is None else self.last_commit.to_wire(),
            "txs": list(self.txs),
            "content_hashes": list(self.content_hashes),
        })

    @classmethod
    def decode(cls, data: bytes, height: int) -> StoredBlock:
        """Parse a ``b/`` record: canonical bytes of exactly these fields, or
        :class:`~ledger.errors.BlockMalformedError`."""
        try:
            m = expect_map(decode_cb(data), f"stored block {height}", _STORED_BLOCK_FIELDS)
            header, last_commit, txs = decode_block_frame(m)
            hashes = decode_per_tx_bytes(m["content_hashes"], "content_hashes", 32)
        except BlockMalformedError:
            raise
        except LedgerError as exc:
            raise BlockMalformedError(f"b/{height}: expected a stored block, got one that does not decode: {exc}") from exc
        if len(hashes) != len(txs):
            raise BlockMalformedError(
                f"b/{height}: expected one content hash per transaction ({len(txs)}), got {len(hashes)}"
            )
        return cls(header, last_commit, txs, hashes)

    def assemble(self, store: KVStore) -> Block:
        """The whole block: the stored record with each content read back from ``x/``.

        One ordered scan of the block's ``x/`` range: a point read per content costs
        several times more in LevelDB (a seek, checksums and decompression each time).
        """
        height = self.header.height
        prefix = key_content_prefix(height)
        found = {int.from_bytes(key[len(prefix):], "big"): content for key, content in store.iterate(prefix)}
        documents: list[bytes | None] = []
        for index, content_hash in enumerate(self.content_hashes):
            content = None if content_hash is None else found.get(index)
            if content_hash is not None and content is None:
                raise StoreCorruptError(
                    f"x/{height}/{index}: expected the content {content_hash.hex()} of transaction {index} "
                    f"at height {height}, got none"
                )
            documents.append(content)
        return Block(self.header, self.last_commit, self.txs, tuple(documents))


def _decode_list(data: bytes, what: str) -> list[Any]:
    value = unpack_stored(data, what)
    if not isinstance(value, list):
        raise StoreCorruptError(f"{what}: expected a list record")
    return value


def _decode_record(data: bytes, what: str) -> dict[str, Any]:
    value = unpack_stored(data, what)
    if not isinstance(value, dict):
        raise StoreCorruptError(f"{what}: expected a map record")
    return value


class LedgerView(MembershipView):
    """Reads of committed (or, over an Overlay, pending) ledger records."""

    def __init__(self, reader: KVReader, genesis: Genesis) -> None:
        self.reader = reader
        self.genesis = genesis

    def get_doc(self, doc_id: str) -> DocRecord | None:
        raw = self.reader.get(key_doc(doc_id))
        return None if raw is None else DocRecord.from_wire(_decode_record(raw, f"document {doc_id}"))

    def get_history(self, doc_id: str, length: int) -> list[HistoryEntry]:
        out = []
        for seq in range(length):
            raw = self.reader.get(key_history(doc_id, seq))
            if raw is None:
                raise StoreCorruptError(f"document {doc_id}: history entry {seq} missing")
            out.append(HistoryEntry.from_wire(_decode_record(raw, f"history of {doc_id}")))
        return out

    def get_tx_location(self, tx_hash: bytes) -> TxLocation | None:
        raw = self.reader.get(key_tx(tx_hash))
        return None if raw is None else TxLocation(**_decode_record(raw, "tx location"))

    def get_content(self, doc_hash: bytes) -> bytes | None:
        raw = self.reader.get(key_by_hash(doc_hash))
        if raw is None:
            return None
        m = _decode_record(raw, "hash index")
        return self.reader.get(key_content(m["height"], m["index"]))

    def get_doc_by_hash(self, doc_hash: bytes) -> tuple[str, int] | None:
        raw = self.reader.get(key_by_hash(doc_hash))
        if raw is None:
            return None
        m = _decode_record(raw, "hash index")
        return m["doc_id"], m["version"]

    def get_attachment(self, sha256: bytes) -> dict[str, Any] | None:
        raw = self.reader.get(key_attachment(sha256))
        return None if raw is None else _decode_record(raw, "attachment index")


class Chain(LedgerView):
    """The committed chain in a store, with its head cached."""

    def __init__(self, store: KVStore, genesis: Genesis) -> None:
        super().__init__(store, genesis)
        self.store = store
        # Content-addressed, so it can never serve a node no written root points to;
        # shared by every block's tree, it keeps the hot top of the tree in memory.
        self.tree_cache = NodeCache()
        self.validator_history: list[SetChange] = []
        self._initialise()
        self.height = 0
        self.head_hash = genesis.genesis_hash
        self.head_header: Header | None = None
        self._load_head()

    def _initialise(self) -> None:
        stored = self.store.get(KEY_GENESIS)
        if stored is not None:
            if stored != self.genesis.genesis_hash:
                raise GenesisError(
                    f"expected a store of genesis {self.genesis.genesis_hash.hex()}, got one of {stored.hex()}"
                )
            validate_store_format(self.store)
            return
        batch = WriteBatch()
        batch.put(KEY_FORMAT, bytes([STORE_FORMAT]))
        entries = write_genesis_membership(batch, self.genesis)
        self.state_tree(Overlay(self.store, batch)).update(batch, entries)
        batch.put(KEY_GENESIS, self.genesis.genesis_hash)
        self.store.write(batch)

    def load_membership(self) -> None:
        """Read the validator-set history (a handful of entries over years) into memory."""
        history = []
        for key, value in self.store.iterate(VALIDATORS_PREFIX):
            from_height = int.from_bytes(key[len(VALIDATORS_PREFIX):], "big")
            history.append(SetChange(from_height, tuple(_decode_list(value, "validator set"))))
        if not history or history[0].from_height != 1:
            raise StoreCorruptError("the validator set of height 1 is missing")
        self.validator_history = history

    def _load_head(self) -> None:
        self.load_membership()
        raw = self.store.get(KEY_HEAD)
        if raw is None:
            return
        head = _decode_record(raw, "head")
        self.height = head["height"]
        self.head_hash = head["block_hash"]
        self.head_header = self.get_header(self.height)
        if self.head_header is None or self.head_header.block_hash != self.head_hash:
            raise StoreCorruptError(f"head names height {self.height} but its header is missing or differs")

    def reload(self) -> None:
        self.height = 0
        self.head_hash = self.genesis.genesis_hash
        self.head_header = None
        self._load_head()

    @property
    def time_ms(self) -> int:
        return self.genesis.genesis_time_ms if self.head_header is None else self.head_header.time_ms

    @property
    def validators(self) -> tuple[bytes, ...]:
        """The set that decides the next height (``height + 1``)."""
        return self.validators_for(self.height + 1)

    def validators_for(self, height: int) -> tuple[bytes, ...]:
        """The set that decides ``height`` (a change committed at c governs from c + 2).

        Known up to ``self.height + 2``; beyond that a later block could still change it.
        """
        return compute_validators_at(self.validator_history, height)

    @property
    def consensus(self) -> ConsensusParams:
        """The consensus settings in force for the next height."""
        return self.get_consensus_settings()

    def log(self, reader: KVReader | None = None) -> MerkleLog:
        return MerkleLog(reader or self.store, prefix=LOG_PREFIX)

    def state_tree(self, reader: KVReader | None = None) -> StateTree:
        return StateTree(reader or self.store, prefix=STATE_PREFIX, cache=self.tree_cache)

    def get_officers(self) -> list[OfficerRecord]:
        """Every officer ever registered, in key order."""
        return [
            OfficerRecord.from_wire(key[len(OFFICER_PREFIX):], _decode_record(value, "officer record"))
            for key, value in self.store.iterate(OFFICER_PREFIX)
        ]

    def get_active_officers_by_zone(self) -> dict[str, list[bytes]]:
        """Each zone's officer keys now active, in key order: one pass over the officers
        (officers are keyed by key alone, so no prefix reads one zone's)."""
        by_zone: dict[str, list[bytes]] = {}
        for officer in self.get_officers():
            if officer.is_active:
                by_zone.setdefault(officer.zone_id, []).append(officer.officer_key)
        return by_zone

    def get_proposals(self) -> list[ProposalRecord]:
        """Every proposal, in id order."""
        return [
            ProposalRecord.from_store(key[len(PROPOSAL_PREFIX):], _decode_record(value, "proposal"))
            for key, value in self.store.iterate(PROPOSAL_PREFIX)
        ]

    def get_header(self, height: int) -> Header | None:
        raw = self.store.get(key_header(height))
        return None if raw is None else Header.decode(raw)

    def get_stored_block(self, height: int) -> StoredBlock | None:
        """The block record without its document contents (enough for its transactions)."""
        raw = self.store.get(key_block(height))
        return None if raw is None else StoredBlock.decode(raw, height)

    def get_block(self, height: int) -> Block | None:
        stored = self.get_stored_block(height)
        return None if stored is None else stored.assemble(self.store)

    def get_block_bytes(self, height: int) -> bytes | None:
        """The block's wire bytes (canonical, so equal to those it was proposed with)."""
        block = self.get_block(height)
        return None if block is None else block.encode()

    def get_commit(self, height: int) -> CommitCertificate | None:
        raw = self.store.get(key_commit(height))
        return None if raw is None else CommitCertificate.decode(raw)

    def last_commit_hash(self) -> bytes:
        commit = self.get_commit(self.height) if self.height else None
        return ZERO_HASH if commit is None else commit.commit_hash

    def documents_by_number(self, number: str) -> list[str]:
        prefix = key_number_prefix(number)
        return [key[len(prefix):].decode("utf-8") for key, _ in self.store.iterate(prefix)]


def validate_store_format(store: KVReader) -> None:
    """The store was written in the layout this code reads (``m/format``), or raise."""
    raw = store.get(KEY_FORMAT)
    version = 1 if raw is None else int.from_bytes(raw, "big")
    if version != STORE_FORMAT:
        raise StoreFormatError(
            f"expected a store in storage format {STORE_FORMAT}, got format {version}: replay the chain into "
            "a new store (a node syncs it from its peers; `zoneledger devnet --fresh` starts a devnet over)"
        )


def encode_head(height: int, block_hash: bytes) -> bytes:
    return pack_record({"height": height, "block_hash": block_hash})


def encode_location(loc: TxLocation) -> bytes:
    return pack_record({"height": loc.height, "index": loc.index, "log_index": loc.log_index})
