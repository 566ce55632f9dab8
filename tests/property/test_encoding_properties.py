"""Canonical encoding: round trips, and every non-canonical form refused with its own error."""

from __future__ import annotations

import importlib
import json
import struct
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import errors
from ledger.encoding import (
    _holds_float_or_long_integer,
    cb,
    decode_cb,
    jcs,
    jcs_reference,
    may_hold_float_or_long_integer,
    parse_canonical_json,
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
