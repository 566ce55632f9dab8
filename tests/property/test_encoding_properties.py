"""Canonical encoding: round trips, and every non-canonical form refused with its own error."""

from __future__ import annotations

import importlib
import json
import struct
from typing import Any

import msgpack
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import errors
from ledger.encoding import (
    MAX_CB_DEPTH,
    _holds_float_or_long_integer,
    cb,
    decode_cb,
    decode_cb_reference,
    jcs,
    jcs_reference,
    may_hold_float_or_long_integer,
    parse_canonical_json,
    parse_canonical_json_exact,
    parse_json,
)
from ledger.transactions import Envelope

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.text(max_size=40)
    | st.binary(max_size=40)
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=30,
)


@given(values)
def test_round_trip(value: Any) -> None:
    encoded = cb(value)
    assert decode_cb(encoded) == value
    assert cb(decode_cb(encoded)) == encoded


@given(st.dictionaries(st.text(min_size=1, max_size=8), st.integers(0, 5), min_size=2, max_size=6))
def test_unsorted_keys_rejected(mapping: dict[str, int]) -> None:
    keys = sorted(mapping, key=lambda k: k.encode())
    reordered = {k: mapping[k] for k in reversed(keys)}
    raw = msgpack.packb(reordered, use_bin_type=True)
    with pytest.raises(errors.UnsortedKeysError):
        decode_cb(raw)


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"\xcc\x05", errors.NonMinimalIntegerError),  # 5 as uint8
        (b"\xcd\x00\xff", errors.NonMinimalIntegerError),  # 255 as uint16
        (b"\xce\x00\x00\xff\xff", errors.NonMinimalIntegerError),  # 65535 as uint32
        (b"\xcf" + struct.pack(">Q", 2**32 - 1), errors.NonMinimalIntegerError),
        (b"\xd0\xff", errors.NonMinimalIntegerError),  # -1 as int8
        (b"\xd0\x05", errors.NonMinimalIntegerError),  # positive as int8
        (b"\xd1\xff\x80", errors.NonMinimalIntegerError),  # -128 as int16
        (b"\xd9\x01a", errors.NonMinimalIntegerError),  # 1-char str in str8
        (b"\xc5\x00\x01a", errors.NonMinimalIntegerError),  # 1-byte bin in bin16
        (b"\xdc\x00\x01\x01", errors.NonMinimalIntegerError),  # 1-item array in array16
        (b"\xca\x3f\x80\x00\x00", errors.FloatError),
        (b"\xcb" + struct.pack(">d", 1.5), errors.FloatError),
        (b"\xd4\x01\x00", errors.UnsupportedTypeError),  # fixext
        (b"\xc1", errors.UnsupportedTypeError),  # never used
        (b"\x81\x01\x02", errors.UnsupportedTypeError),  # int key
        (b"\x01\x02", errors.TrailingBytesError),
        (b"\x92\x01", errors.TruncatedError),
        (b"\xa3ab", errors.TruncatedError),
        (b"\xa2\xff\xfe", errors.EncodingError),  # invalid UTF-8
        (b"\x82\xa1a\x01\xa1a\x02", errors.DuplicateKeyError),
    ],
)
def test_non_canonical_rejected(raw: bytes, error: type[errors.LedgerError]) -> None:
    with pytest.raises(error):
        decode_cb(raw)


@given(st.integers(min_value=-(2**63), max_value=2**64 - 1))
def test_integers_smallest_form(n: int) -> None:
    encoded = cb(n)
    assert len(encoded) == len(msgpack.packb(n))
    assert decode_cb(encoded) == n


def test_float_refused_by_encoder() -> None:
    with pytest.raises(errors.FloatError):
        cb({"a": 1.5})


def test_str_sent_as_bin_refused_in_a_transaction(contract: dict[str, Any]) -> None:
    envelope = decode_cb(bytes.fromhex(contract["transaction"]["envelope_cb"]))
    envelope["tx"]["chain_id"] = envelope["tx"]["chain_id"].encode()
    with pytest.raises(errors.WrongTypeError, match="expected str, got bin"):
        Envelope.decode(cb(envelope))


def test_bin_sent_as_str_refused_in_a_transaction(contract: dict[str, Any]) -> None:
    envelope = decode_cb(bytes.fromhex(contract["transaction"]["envelope_cb"]))
    envelope["sig"] = envelope["sig"].hex()
    with pytest.raises(errors.WrongTypeError, match="expected bin, got str"):
        Envelope.decode(cb(envelope))


# --- JSON canonicalisation -------------------------------------------------

json_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12
)  # no lone surrogates: not valid Unicode text
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | json_text,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(json_text, children, max_size=5),
    max_leaves=25,
)


@given(json_values)
def test_jcs_agrees_with_reference(value: Any) -> None:
    assert jcs(value) == jcs_reference(value)
    assert parse_canonical_json(jcs(value)) == value


def test_jcs_key_order_is_utf16() -> None:
    # U+1F600 sorts before U+FB01 in UTF-16 units (D83D < FB01) but after it by code point.
    value = {"\ufb01": 1, "\U0001f600": 2}
    assert jcs(value) == jcs_reference(value)
    assert jcs(value).index("\U0001f600".encode()) < jcs(value).index("\ufb01".encode())


@pytest.mark.parametrize(
    "text",
    ['{"a": 1.5}', '{"a": 1e3}', '{"a": 9007199254740993}', '{"a": NaN}', '{"a": 1, "a": 2}', "{", '"\\ud800"x'],
)
def test_document_json_rules(text: str) -> None:
    with pytest.raises(errors.JsonError):
        parse_json(text)


def test_non_canonical_document_bytes_refused() -> None:
    with pytest.raises(errors.JsonError):
        parse_canonical_json(b'{"b":1, "a":2}')
    with pytest.raises(errors.JsonError):
        parse_canonical_json(b'{"b":1,"a":2}')
    assert parse_canonical_json(b'{"a":2,"b":1}') == {"a": 2, "b": 1}


@pytest.mark.parametrize(
    "raw",
    [b'{"a":1.5}', b'{"a":[1,2.0]}', b'{"a":[1e5]}', b'{"a":-0.5}', b'{"a":9007199254740993}', b'[12345678901234567]'],
)
def test_floats_and_long_integers_refused_in_canonical_documents(raw: bytes) -> None:
    with pytest.raises(errors.JsonError):
        parse_canonical_json(raw)


def test_times_and_safe_integers_accepted_in_canonical_documents() -> None:
    raw = b'{"n":9007199254740991,"t":"2026-11-26T10:00:00.500Z","x":"1,5.3"}'
    assert parse_canonical_json(raw)["n"] == 2**53 - 1


# --- the number screen on the hot path, and its compiled twin ----------------------

native_screen = importlib.import_module("ledger._jsonscan").may_hold_float_or_long_integer

number_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.sampled_from('0123456789.eE-+"\\ aé\U0001f600'), max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=6), children, max_size=5),
    max_leaves=20,
)


@given(number_json)
def test_number_screen_never_clears_a_float_or_long_integer(value: Any) -> None:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    parsed = json.loads(text)
    if _holds_float_or_long_integer(parsed):
        assert may_hold_float_or_long_integer(text)
    assert native_screen(text) == may_hold_float_or_long_integer(text)


@given(st.binary(max_size=64))
def test_number_screen_native_agrees_on_any_bytes(raw: bytes) -> None:
    assert native_screen(raw) == may_hold_float_or_long_integer(raw)


@pytest.mark.parametrize(
    ("text", "may_hold"),
    [
        (b'{"a":"1.5","b":"1e5","c":"1234567890123456"}', False),  # inside strings
        (rb'{"a":"\\","b":1.5}', True),  # an escaped backslash ends before the quote
        (rb'{"a":"\"1.5","b":2}', False),  # an escaped quote does not end the string
        (b'[true,false,null,-123456789012345]', False),  # 15 digits fit below 2^53
        (b'[1234567890123456]', True),
        (b'[-0.0]', True),
        (b'[1E2]', True),
    ],
)
def test_number_screen_examples(text: bytes, may_hold: bool) -> None:
    assert may_hold_float_or_long_integer(text) is may_hold
    assert native_screen(text) is may_hold


def test_number_screen_is_compiled() -> None:
    # The hot path must run the compiled screen: without it every document takes the walk.
    from ledger import encoding

    assert encoding._may_hold_float_or_long_integer is native_screen


def _alter(data: st.DataObject, original: bytes, byte_values: st.SearchStrategy[int]) -> bytes:
    """``original`` with one to three bytes set, inserted or deleted at drawn places."""
    raw = bytearray(original)
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(raw)))
        action = data.draw(st.sampled_from(["set", "insert", "delete"]))
        byte = data.draw(byte_values)
        if action == "insert" or not raw:
            raw.insert(at, byte)
        elif action == "delete":
            del raw[min(at, len(raw) - 1)]
        else:
            raw[min(at, len(raw) - 1)] = byte
    return bytes(raw)


# --- the compiled canonical-document check ---------------------------------------

native_canonical = importlib.import_module("ledger._jsonscan").is_canonical_document

# Text that exercises JCS string rules: controls with and without short escapes, quote,
# backslash, solidus, DEL, BMP characters either side of the surrogate range, astral ones.
jcs_text = st.text(
    alphabet=st.sampled_from(
        ["a", "B", "z", "0", " ", "/", '"', "\\", "\x00", "\x01", "\x08", "\t", "\n", "\x0b", "\x0c", "\r",
         "\x1f", "\x7f", "\u00e9", "\u2028", "\ud7ff", "\ue000", "\uffff", "\U0001f600", "\U00010000"]
    ) | st.characters(codec="utf-8"),
    max_size=10,
)
document_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) - 2, max_value=2**53 + 2)
    | jcs_text,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(jcs_text, children, max_size=5),
    max_leaves=25,
)


def _key_has_astral(value: Any) -> bool:
    if type(value) is dict:
        return any(max(map(ord, key), default=0) > 0xFFFF or _key_has_astral(item) for key, item in value.items())
    if type(value) is list:
        return any(_key_has_astral(item) for item in value)
    return False


def _jcs_text(value: Any) -> bytes:
    # rfc8785 refuses integers beyond 2^53, for which the rules need the text anyway.
    if _holds_float_or_long_integer(value):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    return jcs_reference(value)


def _exact(data: bytes) -> Any:
    try:
        return parse_canonical_json_exact(data)
    except errors.JsonError:
        return errors.JsonError


@given(document_values)
def test_canonical_check_shows_every_canonical_document(value: Any) -> None:
    # Every JCS text of a document value is shown canonical (unless a key holds an astral
    # character, left to the exact path), and never one whose value the rules refuse.
    data = _jcs_text(value)
    allowed = not _holds_float_or_long_integer(value)
    shown = native_canonical(data)
    if allowed and not _key_has_astral(value):
        assert shown
    if shown:
        assert allowed
    if allowed:
        assert parse_canonical_json(data) == value
    else:
        with pytest.raises(errors.JsonError):
            parse_canonical_json(data)


def _variants(value: Any) -> list[bytes]:
    texts = [
        json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode(),
        json.dumps(value, ensure_ascii=True, separators=(",", ":"), sort_keys=True).encode(),
        json.dumps(value, ensure_ascii=False, sort_keys=True).encode(),
        json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode(),
    ]
    return texts


@given(document_values)
def test_canonical_check_agrees_with_the_exact_path_on_other_spellings(value: Any) -> None:
    for data in _variants(value):
        if native_canonical(data):
            assert _exact(data) is not errors.JsonError
            assert data == _jcs_text(value)


@given(document_values, st.data())
def test_canonical_check_never_shows_a_mutated_text_the_exact_path_refuses(value: Any, data: st.DataObject) -> None:
    json_bytes = st.sampled_from(list(b' ,:{}[]"\\-0159.eEutfnl/ab') + [0x00, 0x1F, 0x7F, 0xC3, 0xA9, 0xED, 0xF0, 0xFF])
    mutated = _alter(data, _jcs_text(value), json_bytes)
    if native_canonical(mutated):
        assert _exact(mutated) is not errors.JsonError


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (b'{"a":1,"b":[true,false,null,"x",-5,0]}', True),
        (b'{"b":1,"a":2}', False),  # unsorted keys
        (b'{"a":1,"a":1}', False),  # a key twice
        (b'{"a":1.5}', False),
        (b'{"a":-0}', False),
        (b'{"a":01}', False),
        (b' {}', False),
        (b'{} ', False),
        (b'{"a" :1}', False),
        (rb'{"a":"\u0001"}', True),
        (rb'{"a":"\u0041"}', False),  # JCS writes "A" as it is
        (rb'{"a":"\u001F"}', False),  # lowercase hex only
        (rb'{"a":"\u000a"}', False),  # JCS writes \n
        (rb'{"a":"\/"}', False),
        (b'[9007199254740991,-9007199254740991]', True),
        (b'[9007199254740992]', False),
        (b'"\xc3\xa9"', True),
        (b'"\xed\xa0\x80"', False),  # a UTF-8-encoded surrogate
        (b'"\xc0\x80"', False),  # overlong
        ('{"\ufb01":1,"\U0001f600":2}'.encode(), False),  # UTF-16 order differs: left to the exact path
        (b"[" * 600 + b"]" * 600, False),  # deeper than the check follows
    ],
)
def test_canonical_check_examples(text: bytes, shown: bool) -> None:
    assert native_canonical(text) is shown


def test_canonical_check_defers_astral_keys_to_the_exact_path() -> None:
    # U+1F600 sorts after U+FB01 by code point but before it in UTF-16: JCS puts it first.
    data = '{"\U0001f600":2,"\ufb01":1}'.encode()
    assert not native_canonical(data)
    assert parse_canonical_json(data) == {"\U0001f600": 2, "\ufb01": 1}


def test_canonical_check_is_compiled() -> None:
    # The hot path must run the compiled check: without it every document is re-serialised.
    from ledger import encoding

    assert encoding._is_canonical_document is native_canonical


# --- the compiled canonical decoder ----------------------------------------------

native_decode = importlib.import_module("ledger._cbdecode").decode


def _decoded(decode: Any, data: bytes) -> Any:
    try:
        value = decode(data)
    except (ValueError, errors.EncodingError):
        return errors.EncodingError
    return (type(value), value)


@given(values)
def test_native_decoder_reads_every_canonical_value(value: Any) -> None:
    data = cb(value)
    assert native_decode(data) == value
    assert decode_cb(data) == value
    # bytes stay bytes and str stays str, all the way down
    assert cb(native_decode(data)) == data


@given(st.binary(max_size=40))
def test_native_decoder_agrees_with_the_reference_on_any_bytes(raw: bytes) -> None:
    assert _decoded(native_decode, raw) == _decoded(decode_cb_reference, raw)


@given(values, st.data())
def test_native_decoder_agrees_with_the_reference_on_altered_bytes(value: Any, data: st.DataObject) -> None:
    headers = st.sampled_from([0x80, 0x90, 0xA0, 0xC4, 0xCC, 0xD0, 0xD9, 0xDC, 0xDE])
    altered = _alter(data, cb(value), st.integers(0, 255) | headers)
    assert _decoded(native_decode, altered) == _decoded(decode_cb_reference, altered)
    assert _decoded(decode_cb, altered) == _decoded(decode_cb_reference, altered)


@pytest.mark.parametrize("depth", [MAX_CB_DEPTH, MAX_CB_DEPTH + 1, 16_000])
def test_decoding_bounds_nesting(depth: int) -> None:
    # 16,000 nested arrays fit in an envelope's 16 KB: they must be refused, not recursed into.
    data = b"\x91" * depth + b"\xc0"
    if depth <= MAX_CB_DEPTH:
        assert _decoded(decode_cb, data) == _decoded(decode_cb_reference, data) != errors.EncodingError
        return
    for decode in (decode_cb, decode_cb_reference):
        with pytest.raises(errors.NestingTooDeepError):
            decode(data)
    with pytest.raises(errors.NestingTooDeepError):
        Envelope.decode(data)


def test_decoder_is_compiled() -> None:
    from ledger import encoding

    assert encoding._decode_native is native_decode


# --- H -------------------------------------------------------------------------------


@given(st.binary(max_size=9000))
def test_h_is_sha256(data: bytes) -> None:
    import hashlib

    from ledger.encoding import H

    expected = hashlib.sha256(data).digest()
    assert H(data) == expected
    assert H(bytearray(data)) == expected
    assert H(memoryview(data)) == expected


def test_h_runs_on_the_sha_instructions_where_the_cpu_has_them() -> None:
    from ledger.encoding import H, _sha256_hashlib

    native = importlib.import_module("ledger._smtpage")
    if native.SHA_EXTENSIONS:
        assert H is native.sha256
    else:
        assert H is _sha256_hashlib
    with pytest.raises(TypeError):
        H("text, not bytes")  # type: ignore[arg-type]


@given(st.data())
def test_a_decoded_envelope_signs_exactly_its_transaction(contract: dict[str, Any], data: st.DataObject) -> None:
    # ``signed`` is sliced from the envelope's bytes, not re-encoded; the auditor's
    # workers verify the signature over it alone. Whatever bytes decode, it must be the
    # domain and the canonical bytes of the transaction they decode to.
    original = bytes.fromhex(contract["transaction"]["envelope_cb"])
    altered = _alter(data, original, st.integers(0, 255))
    try:
        envelope = Envelope._decode(altered)
    except errors.LedgerError:
        return
    assert envelope.signed == envelope.tx.signing_bytes()
    assert envelope.encoded == cb({"tx": envelope.tx.to_wire(), "sig": envelope.sig}) == altered


def test_a_decoded_envelope_signs_exactly_its_transaction_unaltered(contract: dict[str, Any]) -> None:
    envelope = Envelope._decode(bytes.fromhex(contract["transaction"]["envelope_cb"]))
    assert envelope.signed == envelope.tx.signing_bytes()


@settings(max_examples=500)
@given(st.data())
def test_envelope_fast_checks_agree_with_the_field_by_field_checks(contract: dict[str, Any], data: st.DataObject) -> None:
    # Envelope._decode checks every field at once and, on anything unusual, again one by
    # one to name the fault: both must accept the same values and build the same object.
    from ledger.transactions import _checked_transaction, _well_formed_transaction

    original = bytes.fromhex(contract["transaction"]["envelope_cb"])
    if data.draw(st.booleans()):
        try:
            value = decode_cb(_alter(data, original, st.integers(0, 255)))
        except errors.EncodingError:
            return
    else:
        # A field (or the body, or a body field) swapped for any value of any type.
        value = decode_cb(original)
        holder = data.draw(st.sampled_from([value, value["tx"], value["tx"]["body"]]))
        key = data.draw(st.sampled_from(sorted(holder)) | st.text(max_size=8))
        if data.draw(st.booleans()) and key in holder:
            del holder[key]
        else:
            holder[key] = data.draw(
                st.binary(max_size=70)
                | st.sampled_from([-1, 0, 2**64 - 1, 2**64, True, None, "doc.issue", "doc.amend"])
                | values
            )
    try:
        checked = _checked_transaction(value)
    except errors.LedgerError as exc:
        try:
            assert _well_formed_transaction(value) is None
        except errors.LedgerError as fast_exc:  # the body's from_wire, on both paths
            assert (type(fast_exc), str(fast_exc)) == (type(exc), str(exc))
        return
    assert _well_formed_transaction(value) == checked


def test_slot_constructors_build_what_the_dataclass_builds() -> None:
    from ledger.transactions import Attachment, DocIssue, Transaction, compute_slot_constructor

    attachment = Attachment("a.pdf", "application/pdf", bytes(32), 7)
    issue = DocIssue("certificate_of_origin", "EG-TEDA/1", bytes(range(32)), (attachment,))
    assert compute_slot_constructor(DocIssue)(*issue_fields(issue)) == issue
    built = compute_slot_constructor(Transaction)("chain", bytes(32), 5, issue)
    assert built == Transaction("chain", bytes(32), 5, issue) and hash(built) == hash(Transaction("chain", bytes(32), 5, issue))
    with pytest.raises(AttributeError):
        built.nonce = 6  # type: ignore[misc]  # still frozen


def issue_fields(issue: Any) -> tuple[Any, ...]:
    return (issue.doc_type, issue.doc_id, issue.doc_hash, issue.attachments)


_ODD_VALUES = [None, True, -1, 0, 2**64 - 1, 2**64, b"", bytes(31), bytes(33), bytes(64), bytes(65), "", "doc.amend", [], {}]


@pytest.mark.parametrize("path", [("sig",), ("tx",), ("tx", "chain_id"), ("tx", "kind"), ("tx", "signer"), ("tx", "nonce"), ("tx", "body")])
@pytest.mark.parametrize("odd", _ODD_VALUES, ids=repr)
def test_envelope_fast_checks_agree_on_each_field_set_to_odd_values(
    contract: dict[str, Any], path: tuple[str, ...], odd: Any
) -> None:
    from ledger.transactions import _checked_transaction, _well_formed_transaction

    value = decode_cb(bytes.fromhex(contract["transaction"]["envelope_cb"]))
    holder = value
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = odd
    try:
        checked = _checked_transaction(value)
    except errors.LedgerError:
        assert _well_formed_transaction(value) is None
        return
    assert _well_formed_transaction(value) == checked
