"""The mempool's memory of rejected transactions is bounded by bytes and keeps short
messages that still tell a submitter what broke (issue 12: a 15,000-byte ``chain_id``
was kept in full in every rejection)."""

from __future__ import annotations

import pytest

from ledger import errors
from ledger.encoding import cb, decode_cb
from ledger.transactions import DocIssue
from node import mempool as mempool_module
from node.mempool import STATUS_REJECTED, Mempool
from scripts.devkit import Alliance

COO = "certificate_of_origin"
TEDA = "EG-TEDA"
LONG = 15_000


def long_chain_junk(alliance: Alliance, i: int) -> bytes:
    body = DocIssue(COO, f"{TEDA}/J-{i}", bytes(32))
    wire = decode_cb(alliance.sign(alliance.officer_keys[TEDA], body, chain_id="c" * LONG, nonce=i + 1).encode())
    wire["sig"] = bytes(64)
    return cb(wire)


def test_rejection_of_a_long_chain_id_keeps_a_short_message_with_its_code(alliance: Alliance) -> None:
    pool = Mempool(alliance.chain())
    data = long_chain_junk(alliance, 0)
    with pytest.raises(errors.WrongChainError):
        pool.add(data, None)
    (tx_hash, rejection), = pool.rejections.items()
    assert pool.status(tx_hash) == STATUS_REJECTED
    assert rejection.code == "tx.wrong_chain"
    assert rejection.message.startswith(f"tx.chain_id: expected {alliance.genesis.chain_id!r}, got 'ccc")
    assert f"({LONG} bytes)" in rejection.message
    assert len(rejection.message) < 400


def test_a_thousand_junk_rejections_keep_less_than_half_a_megabyte_of_messages(alliance: Alliance) -> None:
    pool = Mempool(alliance.chain())
    for i in range(1000):
        with pytest.raises(errors.WrongChainError):
            pool.add(long_chain_junk(alliance, i), None)
    assert len(pool.rejections) == 1000
    assert sum(len(r.message) for r in pool.rejections.values()) < 500_000  # was 15 MB


def test_rejections_are_bounded_by_bytes_oldest_forgotten_first(
    alliance: Alliance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mempool_module, "MAX_REJECTIONS_BYTES", 20_000, raising=False)
    pool = Mempool(alliance.chain())
    hashes = [bytes([i % 256, i // 256]) * 16 for i in range(1000)]
    for i, tx_hash in enumerate(hashes):
        pool.refuse(tx_hash, 100, errors.SignatureInvalidError(f"tx signature: expected a valid signature ({i})"))
    assert 0 < len(pool.rejections) < 1000
    assert pool.rejections_bytes <= 20_000
    assert pool.rejections_bytes == sum(r.cost for r in pool.rejections.values())
    assert hashes[-1] in pool.rejections and hashes[0] not in pool.rejections


def test_a_long_message_is_cut_with_its_length(alliance: Alliance) -> None:
    pool = Mempool(alliance.chain())
    pool.refuse(b"\x01" * 32, 100, errors.DocumentSchemaError("x" * 5000, path="a.b"))
    rejection = pool.rejections[b"\x01" * 32]
    assert rejection.code == "doc.schema"
    assert rejection.message.startswith("a.b: xxx")
    assert rejection.message.endswith("…(5005 characters)")


def test_admitting_a_transaction_forgets_its_rejection_and_its_bytes(alliance: Alliance) -> None:
    from scripts.devkit import load_example, with_number

    pool = Mempool(alliance.chain())
    document = with_number(load_example("coo_preferential.json"), COO, "B-1")
    envelope, content = alliance.issue(TEDA, COO, document, "B-1")
    pool.refuse(envelope.tx_hash, 100, errors.SignatureInvalidError("expected a valid signature"))
    assert pool.rejections_bytes > 0
    pool.add(envelope.encode(), content)
    assert envelope.tx_hash not in pool.rejections and pool.rejections_bytes == 0


def test_refusal_of_a_checked_transaction_is_mempool_full_when_the_pool_is(alliance: Alliance) -> None:
    from scripts.devkit import load_example, with_number

    pool = Mempool(alliance.chain(), max_txs=1)
    document = with_number(load_example("coo_preferential.json"), COO, "B-2")
    envelope, content = alliance.issue(TEDA, COO, document, "B-2")
    pool.add(envelope.encode(), content)
    error = pool.refuse(b"\x02" * 32, 100, errors.SignatureInvalidError("expected a valid signature"))
    assert isinstance(error, errors.MempoolFullError)  # as add() answers: room is checked first
    assert b"\x02" * 32 not in pool.rejections
