"""The memory of decoded envelopes keeps only envelopes whose signature verified, and
is bounded by bytes (issue 12: four batches of 1,000 unsigned junk envelopes took a
node from 105 MB to 536 MB, never freed)."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Iterator

import pytest

from ledger import errors
from ledger import transactions as tx_module
from ledger.encoding import cb, decode_cb
from ledger.limits import MIB
from ledger.transactions import DocIssue, Envelope, OfficerRegister, forget_decoded_envelopes
from ledger.transition import BlockContext, apply_transaction
from scripts.devkit import Alliance, load_example, with_number

COO = "certificate_of_origin"
TEDA = "EG-TEDA"
LONG = 15_000


@pytest.fixture(autouse=True)
def empty_memory() -> Iterator[None]:
    forget_decoded_envelopes()
    yield
    forget_decoded_envelopes()


def junk(alliance: Alliance, i: int, *, chain_id: str | None = None) -> bytes:
    """An envelope of about 15 KB with an all-zero signature (nobody signed it)."""
    key = alliance.officer_keys[TEDA]
    body = DocIssue(COO, f"{TEDA}/J-{i}", bytes(32))
    wire = decode_cb(alliance.sign(key, body, chain_id=chain_id or alliance.genesis.chain_id, nonce=i + 1).encode())
    wire["sig"] = bytes(64)
    if chain_id is None:
        # Long, but on the right chain: refused at the signature, not the chain id.
        wire["tx"]["body"]["attachments"] = [
            {"name": f"{n:03d}" + "n" * 250, "media_type": "application/pdf", "sha256": bytes([n]) * 32, "size": 1}
            for n in range(30)
        ]
    return cb(wire)


def retained_after(run: object) -> int:
    """Bytes still allocated once ``run()`` returned and its garbage is collected."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        run()  # type: ignore[operator]
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_unsigned_junk_envelopes_leave_no_memory_behind(alliance: Alliance) -> None:
    chain = alliance.chain()

    def offer_junk() -> None:
        for i in range(600):
            data = junk(alliance, i, chain_id="c" * LONG if i % 2 else None)
            assert len(data) > 7_000
            Envelope.decode(data)  # decodes: only its signature is wrong
            with pytest.raises((errors.WrongChainError, errors.SignatureInvalidError)):
                apply_transaction(BlockContext(chain, 1), 0, data, None)

    # 600 envelopes of 7-15 KB: 6.6 MB of input; the previous memory kept all of it, decoded.
    assert retained_after(offer_junk) < 1 * MIB


def test_verified_envelopes_are_bounded_by_bytes(alliance: Alliance, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tx_module, "MAX_DECODED_ENVELOPES_BYTES", 1 * MIB, raising=False)
    chain = alliance.chain()
    admin = alliance.admin_keys[TEDA]
    signed = []
    for i in range(120):
        # Signed by a real key with a 15 KB zone id: the signature verifies, the rule does not.
        signed.append(alliance.sign(admin, OfficerRegister("Z" * LONG, bytes([i % 256]) * 32), nonce=i + 1).encode())

    def offer() -> None:
        for data in signed:
            with pytest.raises(errors.UnknownZoneError):
                apply_transaction(BlockContext(chain, 1), 0, data, None)

    # 120 verified envelopes of 15 KB each would be about 5.5 MB remembered.
    assert retained_after(offer) < 1 * MIB + 256 * 1024


def test_a_verified_envelope_is_remembered_and_not_verified_again(
    alliance: Alliance, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ledger.transactions import get_verified_envelope

    document = with_number(load_example("coo_preferential.json"), COO, "V-1")
    envelope, content = alliance.issue(TEDA, COO, document, "V-1")
    data = envelope.encode()
    assert get_verified_envelope(data) is None
    apply_transaction(BlockContext(alliance.chain(), 1), 0, data, content)
    remembered = get_verified_envelope(data)
    assert remembered is not None and Envelope.decode(data) is remembered

    def no_second_check(*args: object, **kwargs: object) -> None:
        raise AssertionError("the signature was verified again")

    monkeypatch.setattr("ledger.transition.validate_signature", no_second_check)
    apply_transaction(BlockContext(alliance.chain(), 1), 0, data, content)


@pytest.mark.parametrize("fault", ["wrong_chain", "bad_signature", "not_canonical"])
def test_checks_off_the_loop_raise_what_apply_transaction_raises(alliance: Alliance, fault: str) -> None:
    from ledger.transition import compute_verified_envelope

    document = with_number(load_example("coo_preferential.json"), COO, "V-2")
    envelope, content = alliance.issue(TEDA, COO, document, "V-2")
    data = envelope.encode()
    if fault == "wrong_chain":
        data = alliance.sign(alliance.officer_keys[TEDA], envelope.tx.body, chain_id="other-chain").encode()
    elif fault == "bad_signature":
        wire = decode_cb(data)
        wire["sig"] = bytes(64)
        data = cb(wire)
    else:
        data = data + b"\x00"
    with pytest.raises(errors.LedgerError) as in_block:
        apply_transaction(BlockContext(alliance.chain(), 1), 0, data, content)
    with pytest.raises(errors.LedgerError) as off_loop:
        compute_verified_envelope(data, alliance.genesis.chain_id)
    assert type(off_loop.value) is type(in_block.value)
    assert str(off_loop.value) == str(in_block.value)
