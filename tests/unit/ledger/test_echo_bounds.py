"""Error messages never echo outside input whole (issue 12: a 15,000-byte ``chain_id``
was copied into every rejection kept for it)."""

from __future__ import annotations

import pytest

from ledger import errors
from ledger.encoding import cb, decode_cb, expect_map, parse_json
from ledger.keys import SigningKey
from ledger.limits import MAX_ECHO_CHARS
from ledger.transactions import Attachment, DocIssue, Envelope, OfficerRegister, validate_chain_id
from ledger.transition import BlockContext, apply_transaction
from scripts.devkit import Alliance

LONG = 15_000
# The message around the quoted value: field names, "expected ...", the size marker.
ROOM = 300


def assert_bounded(error: Exception, *, quoted: bool = True) -> None:
    """The message is short; with ``quoted``, it quotes the value cut, naming its size."""
    text = str(error)
    assert len(text) < MAX_ECHO_CHARS + ROOM, text[:400]
    if quoted:
        assert "…(" in text


def test_bounded_repr_keeps_short_values_and_names_the_size_of_long_ones() -> None:
    from ledger.encoding import bounded_repr  # imported here: the regressions below run on older code too

    assert bounded_repr("sez-alliance") == "'sez-alliance'"
    assert bounded_repr("ab" * 32) == repr("ab" * 32)  # a hash in hex stays whole
    cut = bounded_repr("x" * LONG)
    assert cut == repr("x" * MAX_ECHO_CHARS) + f"…({LONG} bytes)"
    assert bounded_repr("é" * 100).endswith("…(200 bytes)")  # bytes, as they came
    assert bounded_repr("\ud800" * 100).endswith("…(300 bytes)")  # JSON admits lone surrogates


def test_wrong_chain_error_does_not_echo_a_15000_byte_chain_id(alliance: Alliance) -> None:
    key = alliance.officer_keys["EG-TEDA"]
    envelope = alliance.sign(key, DocIssue("certificate_of_origin", "EG-TEDA/X-1", bytes(32)), chain_id="c" * LONG)
    decoded = Envelope.decode(envelope.encode())
    with pytest.raises(errors.WrongChainError) as caught:
        validate_chain_id(decoded, alliance.genesis.chain_id)
    assert_bounded(caught.value)
    assert f"…({LONG} bytes)" in str(caught.value)


def test_rejected_transaction_with_long_chain_id_is_rejected_with_a_short_message(alliance: Alliance) -> None:
    key = alliance.officer_keys["EG-TEDA"]
    envelope = alliance.sign(key, DocIssue("certificate_of_origin", "EG-TEDA/X-2", bytes(32)), chain_id="c" * LONG)
    chain = alliance.chain()
    with pytest.raises(errors.WrongChainError) as caught:
        apply_transaction(BlockContext(chain, 1), 0, envelope.encode(), None)
    assert_bounded(caught.value)


def test_unknown_zone_does_not_echo_a_long_zone_id(alliance: Alliance) -> None:
    admin = alliance.admin_keys["EG-TEDA"]
    envelope = alliance.sign(admin, OfficerRegister("Z" * LONG, SigningKey.from_label("o").public))
    with pytest.raises(errors.UnknownZoneError) as caught:
        apply_transaction(BlockContext(alliance.chain(), 1), 0, envelope.encode(), None)
    assert_bounded(caught.value)


def test_unknown_kind_does_not_echo_a_long_kind() -> None:
    raw = cb({"sig": bytes(64), "tx": {"body": {}, "chain_id": "c", "kind": "k" * LONG, "nonce": 1,
                                       "signer": bytes(32)}})
    with pytest.raises(errors.UnknownKindError) as caught:
        Envelope.decode(raw)
    assert_bounded(caught.value)


def test_attachment_media_type_is_not_echoed_whole() -> None:
    wire = {"name": "a.pdf", "media_type": "m" * LONG, "sha256": bytes(32), "size": 1}
    with pytest.raises(errors.AttachmentError) as caught:
        Attachment.from_wire(wire, "body.attachments[0]")
    assert_bounded(caught.value)


def test_unexpected_map_keys_are_not_listed_whole() -> None:
    value = {f"k{i:05d}" * 10: 0 for i in range(2000)}
    with pytest.raises(errors.WrongTypeError) as caught:
        expect_map(value, "tx", frozenset({"a"}))
    assert len(str(caught.value)) < MAX_ECHO_CHARS + ROOM
    assert "…(2000 keys)" in str(caught.value)


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 1.' + b"5" * LONG + b"}",  # a float
        b'{"a": ' + b"9" * 4000 + b"}",  # an integer beyond 2^53
        b'{"' + b"k" * LONG + b'": 1, "' + b"k" * LONG + b'": 2}',  # a duplicate key
    ],
    ids=["float", "long-integer", "duplicate-key"],
)
def test_json_errors_do_not_echo_the_offending_text(body: bytes) -> None:
    with pytest.raises(errors.JsonError) as caught:
        parse_json(body)
    # A number is named by its parsed value (a float's repr is short), a key quoted, cut.
    assert_bounded(caught.value, quoted=b"k" * 100 in body)


def test_canonical_reader_does_not_echo_a_long_duplicate_key() -> None:
    key = "k" * LONG
    encoded = cb({key: 1})
    # The same key twice: a map of two entries whose keys are equal.
    doubled = b"\x82" + encoded[1:] + encoded[1:]
    with pytest.raises(errors.DuplicateKeyError) as caught:
        decode_cb(doubled)
    assert_bounded(caught.value)
