"""Write-ahead log: durable records, torn tails cut, failed appends cut back, resynchronising reads, pruning."""

from __future__ import annotations

import errno
import os
import zlib
from pathlib import Path

import pytest

from ledger.blocks import PREVOTE, Proposal, Vote
from ledger.errors import StoreWriteError
from ledger.keys import SigningKey
from node.consensus import LockRecord, PersistThenSend
from node.messages import sign_proposal
from node.wal import FILE_MAGIC, WalRecord, WriteAheadLog, encode_record

KEY = SigningKey.from_label("wal validator")


def vote(height: int, round_: int) -> PersistThenSend:
    signed = Vote("c", PREVOTE, height, round_, bytes([round_]) * 32, 0).sign(KEY)
    return PersistThenSend(signed, LockRecord(-1, None, 0, bytes(32), (signed,)))


def test_records_survive_reopen(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path / "wal.log")
    wal.append(1, vote(1, 0))
    proposal = sign_proposal(Proposal("c", 1, 1, bytes(32), -1, 0), KEY)
    wal.append(1, PersistThenSend(proposal, LockRecord(-1, None, -1, None)), block=b"block bytes")
    wal.close()
    again = WriteAheadLog(tmp_path / "wal.log")
    assert [r.height for r in again.records] == [1, 1]
    assert again.records[0].action == vote(1, 0)
    assert again.records[1].block == b"block bytes"
    assert again.records[1].action.message == proposal
    again.close()


def test_torn_tail_is_cut_and_earlier_records_kept(tmp_path: Path) -> None:
    path = tmp_path / "wal.log"
    wal = WriteAheadLog(path)
    wal.append(1, vote(1, 0))
    wal.append(1, vote(1, 1))
    wal.close()
    data = path.read_bytes()
    path.write_bytes(data[:-7])  # a crash in the middle of the second append
    again = WriteAheadLog(path)
    assert len(again.records) == 1
    again.append(1, vote(1, 2))
    again.close()
    final = WriteAheadLog(path)
    assert [r.action.message.vote.round for r in final.records] == [0, 2]  # type: ignore[union-attr]
    final.close()


def test_prune_drops_decided_heights(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path / "wal.log")
    for h in (1, 2, 3):
        wal.append(h, vote(h, 0))
    wal.prune(2)
    assert [r.height for r in wal.records] == [3]
    wal.append(4, vote(4, 0))
    wal.close()
    final = WriteAheadLog(tmp_path / "wal.log")
    assert [r.height for r in final.records] == [3, 4]
    final.close()


# --- a failed or torn append must never cost later records ---------------------------


def _rounds(wal: WriteAheadLog) -> list[int]:
    return [r.action.message.vote.round for r in wal.records]  # type: ignore[union-attr]


def test_torn_record_in_the_middle_does_not_cut_off_later_fsynced_records(tmp_path: Path) -> None:
    # Built with the log itself, so the test holds for any record format: r0, then the
    # first half of r1 (a write that failed half way), then r2 appended after it.
    path = tmp_path / "wal.log"
    wal = WriteAheadLog(path)
    ends = []
    for round_ in (0, 1, 2):
        wal.append(1, vote(1, round_))
        ends.append(path.stat().st_size)
    wal.close()
    data = path.read_bytes()
    r1_half = ends[0] + (ends[1] - ends[0]) // 2
    path.write_bytes(data[:r1_half] + data[ends[1]:])
    again = WriteAheadLog(path)
    assert _rounds(again) == [0, 2]
    again.append(1, vote(1, 3))
    again.close()
    final = WriteAheadLog(path)
    assert _rounds(final) == [0, 2, 3]
    final.close()


def test_flipped_byte_loses_only_its_own_record(tmp_path: Path) -> None:
    path = tmp_path / "wal.log"
    wal = WriteAheadLog(path)
    ends = []
    for round_ in range(4):
        wal.append(1, vote(1, round_))
        ends.append(path.stat().st_size)
    wal.close()
    data = bytearray(path.read_bytes())
    data[ends[1] + 40] ^= 0xFF  # inside record 2's payload
    path.write_bytes(bytes(data))
    again = WriteAheadLog(path)
    assert _rounds(again) == [0, 1, 3]
    again.close()


def _torn_write(monkeypatch: pytest.MonkeyPatch, fd: int, *, fail_cut: bool = False) -> list[int]:
    """Make the next write to ``fd`` put half its bytes on disk, then fail with ENOSPC."""
    real_write, real_ftruncate = os.write, os.ftruncate
    calls: list[int] = []

    def write(target: int, data: bytes | memoryview) -> int:
        if target != fd or calls:
            return real_write(target, data)
        calls.append(len(data))
        real_write(target, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    def ftruncate(target: int, length: int) -> None:
        if fail_cut and target == fd:
            raise OSError(errno.EIO, "Input/output error")
        real_ftruncate(target, length)

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(os, "ftruncate", ftruncate)
    return calls


def test_failed_append_is_cut_back_raises_and_later_appends_survive_reopen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "wal.log"
    wal = WriteAheadLog(path)
    wal.append(1, vote(1, 0))
    good_size = path.stat().st_size
    calls = _torn_write(monkeypatch, wal._appender.fd)
    with pytest.raises(StoreWriteError, match="No space left") as caught:
        wal.append(1, vote(1, 1))
    assert caught.value.code == "store.write_failed"
    assert calls and path.stat().st_size == good_size  # the torn half is gone
    assert _rounds(wal) == [0]  # not recorded: the caller must not send it
    monkeypatch.undo()
    wal.append(1, vote(1, 2))
    wal.close()
    again = WriteAheadLog(path)
    assert _rounds(again) == [0, 2]
    again.close()


def test_failed_fsync_is_cut_back_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "wal.log"
    wal = WriteAheadLog(path)
    wal.append(1, vote(1, 0))
    good_size = path.stat().st_size
    real_fsync = os.fsync
    failed: list[int] = []

    def fsync(fd: int) -> None:
        if fd == wal._appender.fd and not failed:
            failed.append(fd)
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(StoreWriteError):
        wal.append(1, vote(1, 1))
    assert failed and path.stat().st_size == good_size and wal.broken is None
    wal.append(1, vote(1, 2))
    wal.close()
    assert _rounds(WriteAheadLog(path)) == [0, 2]


def test_append_refused_once_a_failed_append_cannot_be_cut_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "wal.log"
    wal = WriteAheadLog(path)
    wal.append(1, vote(1, 0))
    _torn_write(monkeypatch, wal._appender.fd, fail_cut=True)
    with pytest.raises(StoreWriteError):
        wal.append(1, vote(1, 1))
    assert wal.broken is not None and "cutting it back" in wal.broken
    monkeypatch.undo()
    size = path.stat().st_size
    with pytest.raises(StoreWriteError, match="refusing"):
        wal.append(1, vote(1, 2))
    assert path.stat().st_size == size  # nothing written after the torn bytes
    wal.close()
    # Reopening recovers: the torn bytes are dropped, the good record kept.
    again = WriteAheadLog(path)
    assert _rounds(again) == [0] and again.broken is None
    again.close()


def test_new_log_fsyncs_its_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_fsync = os.fsync
    synced: list[str] = []

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    home = tmp_path / "data"
    wal = WriteAheadLog(home / "consensus.wal")
    wal.close()
    assert str(home) in synced  # the file's name is durable
    assert str(tmp_path) in synced  # and so is the directory created for it


def test_version_1_file_is_read_and_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "wal.log"
    payloads = [encode_record(WalRecord(1, vote(1, r), None)) for r in (0, 1)]
    legacy = b"".join(len(p).to_bytes(4, "big") + zlib.crc32(p).to_bytes(4, "big") + p for p in payloads)
    path.write_bytes(legacy + legacy[:5])  # with a torn tail, as version 1 could leave
    wal = WriteAheadLog(path)
    assert _rounds(wal) == [0, 1]
    wal.append(1, vote(1, 2))
    wal.close()
    assert path.read_bytes().startswith(FILE_MAGIC)
    assert _rounds(WriteAheadLog(path)) == [0, 1, 2]


def test_failed_prune_leaves_a_usable_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "wal.log"
    wal = WriteAheadLog(path)
    for h in (1, 2):
        wal.append(h, vote(h, 0))

    def replace(src: str, dst: str) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(StoreWriteError):
        wal.prune(1)
    monkeypatch.undo()
    assert [r.height for r in wal.records] == [1, 2]  # nothing dropped, and still appendable
    assert not (tmp_path / "wal.log.tmp").exists()
    wal.append(3, vote(3, 0))
    wal.prune(2)
    wal.append(4, vote(4, 0))
    wal.close()
    assert [r.height for r in WriteAheadLog(path).records] == [3, 4]


def test_a_batched_prune_waits_for_enough_decided_records(tmp_path: Path) -> None:
    from node.wal import PRUNE_BATCH_RECORDS

    path = tmp_path / "wal.log"
    wal = WriteAheadLog(path)
    for h in range(1, PRUNE_BATCH_RECORDS + 1):
        wal.append(h, vote(h, 0))
        wal.prune(h - 1, batch=True)
    assert len(wal.records) == PRUNE_BATCH_RECORDS  # nothing rewritten yet
    assert [r.height for r in wal.records_for(PRUNE_BATCH_RECORDS)] == [PRUNE_BATCH_RECORDS]
    wal.append(PRUNE_BATCH_RECORDS + 1, vote(PRUNE_BATCH_RECORDS + 1, 0))
    wal.prune(PRUNE_BATCH_RECORDS, batch=True)
    assert [r.height for r in wal.records] == [PRUNE_BATCH_RECORDS + 1]
    wal.close()
    assert [r.height for r in WriteAheadLog(path).records] == [PRUNE_BATCH_RECORDS + 1]
