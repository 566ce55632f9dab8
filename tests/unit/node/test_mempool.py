"""Mempool: full checks on entry, pending-aware rules, bounds, nothing silently dropped."""

from __future__ import annotations

from typing import Any

import pytest

from ledger import errors
from ledger.encoding import compute_doc_hash
from node.mempool import STATUS_PENDING, STATUS_REJECTED, Mempool
from scripts.devkit import Alliance, load_example, with_number

COO = "certificate_of_origin"
TEDA = "EG-TEDA"


def coo(number: str) -> dict[str, Any]:
    return with_number(load_example("coo_preferential.json"), COO, number)


def test_issue_then_amend_before_commit(alliance: Alliance) -> None:
    chain = alliance.chain()
    pool = Mempool(chain)
    env, content = alliance.issue(TEDA, COO, coo("M-1"), "M-1")
    tx_hash, added = pool.add(env.encode(), content)
    assert added and pool.status(tx_hash) == STATUS_PENDING
    assert tx_hash in pool.verified
    amended = coo("M-1") | {"name": "amended"}
    env2, content2 = alliance.amend(TEDA, f"{TEDA}/M-1", amended, compute_doc_hash(coo("M-1")), "fix")
    pool.add(env2.encode(), content2)
    assert len(pool) == 2
    assert pool.add(env.encode(), content) == (tx_hash, False)


def test_invalid_transaction_refused_and_remembered(alliance: Alliance) -> None:
    chain = alliance.chain()
    pool = Mempool(chain)
    env, content = alliance.issue("BY-GREATSTONE", COO, coo("M-2"), "M-2", key=alliance.officer_keys[TEDA])
    with pytest.raises(errors.NotOfficerOfZoneError):
        pool.add(env.encode(), content)
    assert pool.status(env.tx_hash) == STATUS_REJECTED
    assert pool.rejections[env.tx_hash].code == "doc.not_officer_of_zone"
    assert len(pool) == 0


def test_conflicting_second_issue_refused(alliance: Alliance) -> None:
    pool = Mempool(alliance.chain())
    env, content = alliance.issue(TEDA, COO, coo("M-3"), "M-3")
    pool.add(env.encode(), content)
    other = coo("M-3") | {"name": "other"}
    env2, content2 = alliance.issue(TEDA, COO, other, "M-3")
    with pytest.raises(errors.DocumentExistsError):
        pool.add(env2.encode(), content2)


def test_full_pool_refuses_with_mempool_full(alliance: Alliance) -> None:
    pool = Mempool(alliance.chain(), max_txs=2)
    for i in range(2):
        env, content = alliance.issue(TEDA, COO, coo(f"F-{i}"), f"F-{i}")
        pool.add(env.encode(), content)
    env, content = alliance.issue(TEDA, COO, coo("F-9"), "F-9")
    with pytest.raises(errors.MempoolFullError):
        pool.add(env.encode(), content)
    assert len(pool) == 2


def test_commit_removes_and_rechecks(alliance: Alliance) -> None:
    chain = alliance.chain()
    pool = Mempool(chain)
    entries = [alliance.issue(TEDA, COO, coo(f"C-{i}"), f"C-{i}") for i in range(3)]
    for env, content in entries:
        pool.add(env.encode(), content)
    # Another proposer commits C-0 and a revocation of TEDA's officer first.
    block_entries = [entries[0], (alliance.revoke_officer(TEDA, alliance.officer_keys[TEDA].public), None)]
    block = alliance.commit_next(chain, block_entries)
    from ledger.transactions import Envelope

    dropped = pool.on_block_committed(tuple(Envelope.decode(t).tx_hash for t in block.txs))
    assert {h for h, _ in dropped} == {entries[1][0].tx_hash, entries[2][0].tx_hash}
    assert all(isinstance(e, errors.OfficerRevokedError) for _, e in dropped)
    assert len(pool) == 0 and pool.bytes == 0
    assert pool.status(entries[1][0].tx_hash) == STATUS_REJECTED


def test_block_of_pending_transactions_keeps_the_pending_view(alliance: Alliance) -> None:
    chain = alliance.chain()
    pool = Mempool(chain)
    entries = [alliance.issue(TEDA, COO, coo(f"V-{i}"), f"V-{i}") for i in range(3)]
    for env, content in entries:
        pool.add(env.encode(), content)
    # Another proposer commits two of them in a different order than our pool's.
    block = alliance.commit_next(chain, [entries[1], entries[0]])
    from ledger.transactions import Envelope

    hashes = tuple(Envelope.decode(t).tx_hash for t in block.txs)
    assert pool.on_block_committed(hashes, tuple(zip(block.txs, block.documents, strict=True))) == []
    assert list(pool.entries) == [entries[2][0].tx_hash]
    # The pending view still knows V-2 is pending: amending it is admitted, issuing it again is not.
    v2 = coo("V-2")
    amend, content = alliance.amend(TEDA, f"{TEDA}/V-2", v2 | {"name": "x"}, compute_doc_hash(v2), "fix")
    pool.add(amend.encode(), content)
    again, content = alliance.issue(TEDA, COO, v2 | {"name": "y"}, "V-2")
    with pytest.raises(errors.DocumentExistsError):
        pool.add(again.encode(), content)
    # and a committed transaction offered again is a replay
    with pytest.raises(errors.ReplayedTransactionError):
        pool.add(entries[0][0].encode(), entries[0][1])


def test_conflicting_block_from_elsewhere_rejects_the_pending_loser(alliance: Alliance) -> None:
    chain = alliance.chain()
    alliance.commit_next(chain, [alliance.issue(TEDA, COO, coo("R-1"), "R-1")])
    pool = Mempool(chain)
    first = compute_doc_hash(coo("R-1"))
    ours, content = alliance.amend(TEDA, f"{TEDA}/R-1", coo("R-1") | {"name": "ours"}, first, "ours")
    pool.add(ours.encode(), content)
    theirs = alliance.amend(TEDA, f"{TEDA}/R-1", coo("R-1") | {"name": "theirs"}, first, "theirs")
    block = alliance.commit_next(chain, [theirs])
    from ledger.transactions import Envelope

    hashes = tuple(Envelope.decode(t).tx_hash for t in block.txs)
    dropped = pool.on_block_committed(hashes, tuple(zip(block.txs, block.documents, strict=True)))
    assert [(h, type(e)) for h, e in dropped] == [(ours.tx_hash, errors.StaleSupersedesError)]
    assert len(pool) == 0 and pool.status(ours.tx_hash) == STATUS_REJECTED
