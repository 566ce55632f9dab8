"""The write-ahead log of everything this validator signs in consensus.

A vote or proposal leaves the process only after its record is on disk (fsync), so a
validator restarted at any instant rebuilds its machine with
:func:`node.consensus.restore` from exactly what it may already have sent, and can never
sign a different vote for the same height, round and type.

File format: a sequence of records ``len (4 bytes, big-endian) || crc32 (4) || payload``,
payload = ``cb({"height", "kind": "vote"|"proposal", "message": bytes, "lock": {...},
"block": bytes|nil})``. A torn tail (a crash mid-append) fails its length or checksum and
is cut off on open; nothing before it is lost. Records of decided heights are dropped by
rewriting the file atomically (temp file, fsync, rename, fsync directory).
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.blocks import SignedVote
from ledger.encoding import cb, decode_cb, expect_bytes, expect_int, expect_list, expect_map
from ledger.errors import StoreCorruptError
from node.consensus import LockRecord, PersistThenSend
from node.messages import SignedProposal

_HEADER = 8
MAX_RECORD_BYTES = 64 * 1024 * 1024


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


def _frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + zlib.crc32(payload).to_bytes(4, "big") + payload


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WriteAheadLog:
    """Append-only, fsynced record of this validator's signed consensus messages."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.records: list[WalRecord] = self._read_and_repair()
        self._file = open(self.path, "ab")  # noqa: SIM115 - held open for the node's life

    def _read_and_repair(self) -> list[WalRecord]:
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        records: list[WalRecord] = []
        pos = 0
        while pos + _HEADER <= len(data):
            length = int.from_bytes(data[pos:pos + 4], "big")
            crc = int.from_bytes(data[pos + 4:pos + 8], "big")
            end = pos + _HEADER + length
            if length > MAX_RECORD_BYTES or end > len(data):
                break
            payload = data[pos + _HEADER:end]
            if zlib.crc32(payload) != crc:
                break
            try:
                records.append(decode_record(payload))
            except Exception as exc:
                raise StoreCorruptError(f"write-ahead log {self.path}: record at byte {pos} is unreadable") from exc
            pos = end
        if pos != len(data):
            # A crash tore the last append; it was never acknowledged, so cut it off.
            with open(self.path, "r+b") as handle:
                handle.truncate(pos)
                handle.flush()
                os.fsync(handle.fileno())
        return records

    def append(self, height: int, action: PersistThenSend, block: bytes | None = None) -> None:
        """Make the record durable; only then may the message be sent."""
        record = WalRecord(height, action, block)
        self._file.write(_frame(encode_record(record)))
        self._file.flush()
        os.fsync(self._file.fileno())
        self.records.append(record)

    def records_for(self, height: int) -> list[WalRecord]:
        return [r for r in self.records if r.height == height]

    def prune(self, decided_height: int) -> None:
        """Drop records of heights up to ``decided_height`` (they can no longer matter)."""
        keep = [r for r in self.records if r.height > decided_height]
        if len(keep) == len(self.records):
            return
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as handle:
            for record in keep:
                handle.write(_frame(encode_record(record)))
            handle.flush()
            os.fsync(handle.fileno())
        self._file.close()
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)
        self._file = open(self.path, "ab")  # noqa: SIM115
        self.records = keep

    def close(self) -> None:
        self._file.close()
