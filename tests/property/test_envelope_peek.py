"""The auditor workers' peek at an envelope reads what the full decode reads, whenever both read."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import EncodingError, LedgerError, MalformedTransactionError
from ledger.testkit import Alliance, load_example, make_alliance, with_number
from ledger.transactions import DocIssue, Envelope, SignedParts, peek_envelope

ALLIANCE = make_alliance(2, label="peek")


def _envelopes(alliance: Alliance) -> list[Envelope]:
    zone_id = next(iter(alliance.officer_keys))
    issued, _ = alliance.issue(
        zone_id, "certificate_of_origin",
        with_number(load_example("coo_preferential.json"), "certificate_of_origin", "PEEK-1"), "PEEK-1",
    )
    body = issued.tx.body
    assert isinstance(body, DocIssue)
    revoked = alliance.revoke(zone_id, body.doc_id, body.doc_hash, "withdrawn")
    officer = alliance.register_officer(zone_id, bytes(range(32)))
    return [issued, revoked, officer]


ENVELOPES = _envelopes(ALLIANCE)


def _expected(envelope: Envelope) -> SignedParts:
    body = envelope.tx.body
    issued = (body.doc_type, body.doc_id, body.doc_hash) if isinstance(body, DocIssue) else None
    return SignedParts(envelope.tx.signer, envelope.signed, envelope.sig, envelope.tx.body.KIND, issued)


@pytest.mark.parametrize("envelope", ENVELOPES, ids=lambda e: e.tx.body.KIND)
def test_peek_reads_what_the_decode_reads(envelope: Envelope) -> None:
    assert peek_envelope(envelope.encode()) == _expected(envelope)


def _peek(data: bytes) -> Any:
    try:
        return peek_envelope(data)
    except LedgerError:
        return None


@given(st.sampled_from(ENVELOPES), st.data())
def test_peek_and_decode_agree_on_altered_bytes(envelope: Envelope, data: st.DataObject) -> None:
    raw = bytearray(envelope.encode())
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["set", "insert", "delete"]))
        byte = data.draw(st.integers(0, 255))
        if action == "set":
            raw[at] = byte
        elif action == "insert":
            raw.insert(at, byte)
        elif len(raw) > 1:
            del raw[at]
    altered = bytes(raw)
    peeked = _peek(altered)
    try:
        decoded = Envelope._decode(altered)
    except LedgerError:
        return  # the main process refuses these bytes: whatever the peek said counts for nothing
    # Bytes the decode accepts are canonical: the peek must read them, and read the same.
    assert peeked == _expected(decoded)


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"", MalformedTransactionError),
        (b"\x82\xa3sig", MalformedTransactionError),
        (b"\x00" * 100, MalformedTransactionError),
        (ENVELOPES[0].encode().replace(b"\xa2tx", b"\xa2ty", 1), MalformedTransactionError),
        (ENVELOPES[0].encode()[:80], EncodingError),  # the tx is cut short
    ],
)
def test_peek_refuses_bytes_that_are_not_an_envelope(raw: bytes, error: type[LedgerError]) -> None:
    with pytest.raises(error):
        peek_envelope(raw)
