"""The write-ahead log of everything this validator signs in consensus.

A vote or proposal leaves the process only after its record is on disk (fsync), so a
validator restarted at any instant rebuilds its machine with
:func:`node.consensus.restore` from exactly what it may already have sent, and can never
sign a different vote for the same height, round and type.

File format (version 2): a header ``FILE_MAGIC (8) || sync (8 random bytes)``, then
records ``sync (8) || len (4, big-endian) || crc32(len || payload) (4) || payload``, with
payload = ``cb({"height", "kind": "vote"|"proposal", "message": bytes, "lock": {...},
"block": bytes|nil})``.

Why a per-file random ``sync`` marker in front of every record: a reader that meets a
damaged record (a torn append, a flipped bit) looks for the next marker and keeps every
valid record after it, instead of cutting the file there and losing records that were
fsynced and may already have been sent. The marker is random per file, so a record
cannot be forged inside a payload (a proposal's block carries officers' bytes); the CRC
only has to catch accidents. On open, damaged bytes are dropped by rewriting the file
atomically; a file in the version-1 format (records without marker, a torn tail cut
off) is read the old way and rewritten as version 2.

An append that fails half way is cut back to the last good length before
:class:`~ledger.errors.StoreWriteError` is raised (``node/durable.py``), so a failed
append never leaves torn bytes in front of later records; if the cut itself fails, the
log refuses every later append (``broken``). A new file's directory is fsynced when the
file is created. Records of decided heights are dropped by rewriting the file atomically
(temp file, fsync, rename, fsync directory).
"""

from __future__ import annotations

import logging
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.blocks import SignedVote
from ledger.encoding import cb, decode_cb, expect_bytes, expect_int, expect_list, expect_map
from ledger.errors import StoreCorruptError
from ledger.limits import MAX_WAL_RECORD_BYTES
from node.consensus import LockRecord, PersistThenSend
from node.durable import DurableAppender, create_durable, make_dirs_durable, replace_durable
from node.messages import SignedProposal

FILE_MAGIC = b"ZLWAL\x00\x02\n"
"""First bytes of a version-2 log; a version-1 record starts with a length below 2^26 (00-03)."""
SYNC_SIZE = 8
FILE_HEADER_SIZE = len(FILE_MAGIC) + SYNC_SIZE
RECORD_HEADER_SIZE = SYNC_SIZE + 8
MAX_RECORD_BYTES = MAX_WAL_RECORD_BYTES
_LEGACY_HEADER = 8
PRUNE_BATCH_RECORDS = 32
PRUNE_BATCH_BYTES = 1024 * 1024
"""A batched prune rewrites the file only once this many decided records (or this many
bytes of file) have piled up: a rewrite costs two fsyncs and a rename, and at 58 zones
one per height per validator was a third of the fsyncs on a shared disk. Decided records
are never read (a machine is rebuilt from the records of its own height only)."""

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WalRecord:
    """One signed consensus message, the lock it was signed under, and (for a proposal) the block."""

    height: int
    """Height the message belongs to."""
    action: PersistThenSend
    """The message and lock exactly as the machine emitted them."""
    block: bytes | None
    """The proposed block's bytes, for this validator's own proposals."""


def _lock_to_wire(lock: LockRecord) -> dict[str, Any]:
    return {
        "locked_round": lock.locked_round,
        "locked_value": lock.locked_value,
        "valid_round": lock.valid_round,
        "valid_value": lock.valid_value,
        "pol": [v.encode() for v in lock.pol],
    }


def _lock_from_wire(value: Any) -> LockRecord:
    m = expect_map(value, "lock", frozenset({"locked_round", "locked_value", "valid_round", "valid_value", "pol"}))
    return LockRecord(
        locked_round=expect_int(m["locked_round"], "locked_round", -1),
        locked_value=None if m["locked_value"] is None else expect_bytes(m["locked_value"], "locked_value", 32),
        valid_round=expect_int(m["valid_round"], "valid_round", -1),
        valid_value=None if m["valid_value"] is None else expect_bytes(m["valid_value"], "valid_value", 32),
        pol=tuple(SignedVote.decode(expect_bytes(v, "pol")) for v in expect_list(m["pol"], "pol")),
    )


def encode_record(record: WalRecord) -> bytes:
    message = record.action.message
    kind = "vote" if isinstance(message, SignedVote) else "proposal"
    return cb({
        "height": record.height,
        "kind": kind,
        "message": message.encode(),
        "lock": _lock_to_wire(record.action.lock),
        "block": record.block,
    })


def decode_record(payload: bytes) -> WalRecord:
    m = expect_map(decode_cb(payload), "wal record", frozenset({"height", "kind", "message", "lock", "block"}))
    raw = expect_bytes(m["message"], "message")
    message: SignedVote | SignedProposal
    message = SignedVote.decode(raw) if m["kind"] == "vote" else SignedProposal.decode(raw)
    block = None if m["block"] is None else expect_bytes(m["block"], "block")
    return WalRecord(expect_int(m["height"], "height", 1), PersistThenSend(message, _lock_from_wire(m["lock"])), block)


def _frame(sync: bytes, payload: bytes) -> bytes:
    length = len(payload).to_bytes(4, "big")
    return sync + length + zlib.crc32(length + payload).to_bytes(4, "big") + payload


def _record_at(data: bytes, pos: int, sync: bytes) -> bytes | None:
    """The payload of an intact record starting at ``pos``, or ``None``."""
    if data[pos:pos + SYNC_SIZE] != sync or pos + RECORD_HEADER_SIZE > len(data):
        return None
    length_bytes = data[pos + SYNC_SIZE:pos + SYNC_SIZE + 4]
    length = int.from_bytes(length_bytes, "big")
    end = pos + RECORD_HEADER_SIZE + length
    if length > MAX_RECORD_BYTES or end > len(data):
        return None
    payload = data[pos + RECORD_HEADER_SIZE:end]
    if zlib.crc32(length_bytes + payload) != int.from_bytes(data[pos + SYNC_SIZE + 4:pos + RECORD_HEADER_SIZE], "big"):
        return None
    return payload


def scan_records(data: bytes) -> tuple[list[bytes], int]:
    """Every intact record's payload in a version-2 file, and how many bytes were skipped.

    A damaged record is skipped by searching for the file's next sync marker; records
    after it are kept.
    """
    sync = data[len(FILE_MAGIC):FILE_HEADER_SIZE]
    payloads: list[bytes] = []
    skipped = 0
    pos = FILE_HEADER_SIZE
    while pos < len(data):
        payload = _record_at(data, pos, sync)
        if payload is not None:
            payloads.append(payload)
            pos += RECORD_HEADER_SIZE + len(payload)
            continue
        following = data.find(sync, pos + 1)
        skipped += (len(data) if following < 0 else following) - pos
        if following < 0:
            break
        pos = following
    return payloads, skipped


def scan_legacy_records(data: bytes) -> list[bytes]:
    """Version 1 (``len || crc32(payload) || payload``): records up to the first damaged one."""
    payloads: list[bytes] = []
    pos = 0
    while pos + _LEGACY_HEADER <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        end = pos + _LEGACY_HEADER + length
        if length > MAX_RECORD_BYTES or end > len(data):
            break
        payload = data[pos + _LEGACY_HEADER:end]
        if zlib.crc32(payload) != int.from_bytes(data[pos + 4:pos + 8], "big"):
            break
        payloads.append(payload)
        pos = end
    return payloads


def compute_file(payloads: list[bytes]) -> bytes:
    """A whole version-2 file holding ``payloads``, under a fresh sync marker."""
    sync = os.urandom(SYNC_SIZE)
    return FILE_MAGIC + sync + b"".join(_frame(sync, p) for p in payloads)


class WriteAheadLog:
    """Append-only, fsynced record of this validator's signed consensus messages."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        make_dirs_durable(self.path.parent)
        self.records: list[WalRecord] = self._read_and_repair()
        with open(self.path, "rb") as handle:
            self._sync = handle.read(FILE_HEADER_SIZE)[len(FILE_MAGIC):]
        self._appender = DurableAppender(self.path, self.path.stat().st_size)

    @property
    def broken(self) -> str | None:
        """Why appends are refused (a failed append could not be cut back), or ``None``."""
        return self._appender.broken

    def _read_and_repair(self) -> list[WalRecord]:
        if not self.path.exists():
            create_durable(self.path, compute_file([]))
            return []
        data = self.path.read_bytes()
        if data.startswith(FILE_MAGIC) and len(data) >= FILE_HEADER_SIZE:
            payloads, skipped = scan_records(data)
            rewrite = skipped > 0
        else:
            payloads, skipped = scan_legacy_records(data), 0
            rewrite = True
        records = [self._decode(payload) for payload in payloads]
        if rewrite:
            if skipped:
                log.warning("write-ahead log %s: skipped %d damaged bytes, kept %d records", self.path, skipped, len(records))
            # Damaged bytes never stay in front of the next append; a version-1 file becomes version 2.
            replace_durable(self.path, compute_file(payloads))
        return records

    def _decode(self, payload: bytes) -> WalRecord:
        try:
            return decode_record(payload)
        except Exception as exc:
            # The checksum held, so this is not a torn write: refuse to guess what was signed.
            raise StoreCorruptError(f"write-ahead log {self.path}: an intact record is unreadable") from exc

    def append(self, height: int, action: PersistThenSend, block: bytes | None = None) -> None:
        """Make the record durable; only then may the message be sent.

        Raises :class:`~ledger.errors.StoreWriteError` when the record is not on disk
        (nothing of it is left in the file, and ``records`` is unchanged): the caller
        must not send the message.
        """
        record = WalRecord(height, action, block)
        self._appender.append(_frame(self._sync, encode_record(record)), f"a record of height {height}")
        self.records.append(record)

    def records_for(self, height: int) -> list[WalRecord]:
        return [r for r in self.records if r.height == height]

    def prune(self, decided_height: int, *, batch: bool = False) -> None:
        """Drop records of heights up to ``decided_height`` (they can no longer matter);
        with ``batch``, only once :data:`PRUNE_BATCH_RECORDS` of them or
        :data:`PRUNE_BATCH_BYTES` of file have piled up.

        Raises :class:`~ledger.errors.StoreWriteError` when the rewrite fails; the log
        stays usable, with or without the dropped records.
        """
        keep = [r for r in self.records if r.height > decided_height]
        dropped = len(self.records) - len(keep)
        if dropped == 0 or (batch and dropped < PRUNE_BATCH_RECORDS and self._appender.size < PRUNE_BATCH_BYTES):
            return
        content = compute_file([encode_record(r) for r in keep])
        try:
            replace_durable(self.path, content)
        finally:
            # A failed rewrite leaves the old file or the new one at the path; appends
            # go on to whichever it is (the old one only holds more decided records).
            if not self._appender.is_current():
                self._appender.close()
                self._appender = DurableAppender(self.path, len(content))
                self._sync = content[len(FILE_MAGIC):FILE_HEADER_SIZE]
                self.records = keep

    def close(self) -> None:
        self._appender.close()
