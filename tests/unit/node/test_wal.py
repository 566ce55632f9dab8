"""Write-ahead log: durable records, torn tails cut, pruning, and restore from it."""

from __future__ import annotations

from pathlib import Path

from ledger.blocks import PREVOTE, Proposal, Vote
from ledger.keys import SigningKey
from node.consensus import LockRecord, PersistThenSend
from node.messages import sign_proposal
from node.wal import WriteAheadLog

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
