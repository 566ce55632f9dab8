"""Canonical encoding: round trips, every non-canonical form refused with its own error, and
one verdict per input whichever entry point sees it (as bytes or as a Python value)."""

from __future__ import annotations

import contextlib
import json
import re
import struct
from typing import Any

import msgpack
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import errors
from ledger.encoding import cb, decode_cb, jcs, parse_canonical_json, parse_json, validate_json_value
from ledger.limits import MAX_NESTING_DEPTH
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
def test_jcs_agrees_with_the_rfc8785_package(value: Any) -> None:
    assert jcs(value) == rfc8785.dumps(value)
    assert parse_canonical_json(jcs(value)) == value


def test_jcs_key_order_is_utf16() -> None:
    # U+1F600 sorts before U+FB01 in UTF-16 units (D83D < FB01) but after it by code point.
    value = {"\ufb01": 1, "\U0001f600": 2}
    assert jcs(value) == rfc8785.dumps(value)
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


# --- one nesting bound, one verdict per input -------------------------------------------
#
# Every input is given as bytes and as a Python value where both exist, and each entry
# point must give it the same verdict: accepted with the same value, or refused with the
# same error code. Canonical MessagePack: cb (values) and decode_cb (bytes). Canonical
# JSON: validate_json_value and jcs (values), parse_canonical_json and parse_json (text).

DEPTHS = [0, 1, 63, 64, 65, 66, 255, 256, 300, 512, 1023, 1024, 1025, 1100]


def nested(depth: int, shape: str, inner: Any) -> Any:
    """``inner`` inside ``depth`` containers: arrays, maps, or both in turn."""
    value = inner
    for level in range(depth):
        as_map = shape == "maps" or (shape == "mixed" and level % 2)
        value = {"k": value} if as_map else [value]
    return value


def nested_cb(depth: int, shape: str, inner: bytes) -> bytes:
    """The canonical bytes of :func:`nested` (msgpack's own packer stops at 512 levels)."""
    out = b""
    for level in range(depth):
        as_map = shape == "maps" or (shape == "mixed" and level % 2)
        out = (b"\x81\xa1k" if as_map else b"\x91") + out
    return out + inner


def nested_json(depth: int, shape: str, inner: bytes) -> bytes:
    opening = b""
    closing = b""
    for level in range(depth):
        as_map = shape == "maps" or (shape == "mixed" and level % 2)
        opening = (b'{"k":' if as_map else b"[") + opening
        closing = closing + (b"}" if as_map else b"]")
    return opening + inner + closing


def outcome(function: Any, argument: Any) -> Any:
    """The verdict of one entry point: ("ok", result) or ("refused", code, message)."""
    try:
        return ("ok", function(argument))
    except errors.LedgerError as exc:
        return ("refused", exc.code, str(exc))


def code_of(result: Any) -> Any:
    """("ok",) or ("refused", code): the verdict without the value or the message."""
    return result[:2] if result[0] == "refused" else result[:1]


@pytest.mark.parametrize("shape", ["arrays", "maps", "mixed"])
@pytest.mark.parametrize("inner", ["scalar", "empty"])
@pytest.mark.parametrize("depth", DEPTHS)
def test_one_nesting_bound_for_every_form_and_entry_point(depth: int, shape: str, inner: str) -> None:
    # A value sits inside at most MAX_NESTING_DEPTH containers; the outermost inside none.
    # So ``depth`` containers around a scalar are allowed up to the bound, and around an
    # empty container (itself one more container, holding nothing) up to one less.
    innermost_depth = depth if inner == "scalar" else depth + 1
    allowed = innermost_depth - (0 if inner == "scalar" else 1) <= MAX_NESTING_DEPTH
    value = nested(depth, shape, 7 if inner == "scalar" else [])
    data_cb = nested_cb(depth, shape, b"\x07" if inner == "scalar" else b"\x90")
    data_json = nested_json(depth, shape, b"7" if inner == "scalar" else b"[]")
    results = {
        "cb": outcome(cb, value),
        "decode_cb": outcome(decode_cb, data_cb),
        "validate_json_value": outcome(validate_json_value, value),
        "jcs": outcome(jcs, value),
        "parse_canonical_json": outcome(parse_canonical_json, data_json),
        "parse_json": outcome(parse_json, data_json),
    }
    if allowed:
        assert results["cb"] == ("ok", data_cb)
        assert results["decode_cb"] == ("ok", value)
        assert results["validate_json_value"] == ("ok", None)
        assert results["jcs"] == ("ok", data_json)
        assert results["parse_canonical_json"] == results["parse_json"] == ("ok", value)
        return
    for name, result in results.items():
        expected = "encoding.too_deep" if name in ("cb", "decode_cb") else "encoding.json"
        assert result[:2] == ("refused", expected), name
        assert f"nested at most {MAX_NESTING_DEPTH} deep (MAX_NESTING_DEPTH)" in result[2], name
        assert "recursion" not in result[2].lower() and "depth limit exceeded" not in result[2], name


def test_deep_nesting_in_a_16_kib_envelope_is_too_deep_not_a_recursion_error() -> None:
    data = b"\x91" * 16_000 + b"\xc0"
    with pytest.raises(errors.NestingTooDeepError):
        decode_cb(data)
    with pytest.raises(errors.NestingTooDeepError):
        Envelope.decode(data)


def test_a_certificate_with_arrays_nested_300_deep_in_an_extra_key_is_too_deep() -> None:
    # Regression: the compiled check accepted it (its own bound was 512) and the exact
    # path refused it with orjson's recursion message.
    from scripts.devkit import EXAMPLES_DIR

    document = json.loads((EXAMPLES_DIR / "coo_preferential.json").read_text())
    data = jcs(document)
    assert 4000 < len(data) < 5000
    spoiled = data[:-1] + b',"zzExtra":' + b"[" * 300 + b"]" * 300 + b"}"
    for parse in (parse_canonical_json, parse_json):
        with pytest.raises(errors.JsonError, match=r"nested at most 64 deep \(MAX_NESTING_DEPTH\)"):
            parse(spoiled)
    document["zzExtra"] = nested(300, "arrays", [])
    for check in (validate_json_value, jcs):
        with pytest.raises(errors.JsonError, match=r"nested at most 64 deep \(MAX_NESTING_DEPTH\)"):
            check(document)


def test_nesting_is_named_before_any_other_fault_of_a_value() -> None:
    # A float early on and nesting beyond the bound later: the nesting is what is named,
    # whether the value is given as such or as bytes (msgpack refuses 1,025 levels itself).
    for depth in (70, 2000):
        value = [1.5, nested(depth, "arrays", 0)]
        data = b"\x92\xcb" + struct.pack(">d", 1.5) + nested_cb(depth, "arrays", b"\x00")
        assert code_of(outcome(cb, value)) == code_of(outcome(decode_cb, data)) == ("refused", "encoding.too_deep")
        text = b"[1.5," + nested_json(depth, "arrays", b"0") + b"]"
        for function, argument in ((validate_json_value, value), (jcs, value), (parse_canonical_json, text), (parse_json, text)):
            result = outcome(function, argument)
            assert result[:2] == ("refused", "encoding.json") and "MAX_NESTING_DEPTH" in result[2]


# Values of every kind the rules meet, valid or not: nested and wide, floats and big
# integers anywhere, astral and high-BMP text and keys, non-str keys, other types.
odd_text = st.text(
    alphabet=st.sampled_from(["a", "z", "\x00", "\x7f", "\u00e9", "\ufb01", "\uffff", "\U0001f600", "\U00010000", '"', "\\"]),
    max_size=4,
)
odd_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.sampled_from([2**53 - 1, 2**53, -(2**53), 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**30])
    | st.floats(allow_nan=False, allow_infinity=False)
    | odd_text
)
odd_keys = odd_text | st.sampled_from([1, b"k", None, 2.5])
odd_values = st.recursive(
    odd_scalars | st.binary(max_size=4),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(odd_keys, children, max_size=4),
    max_leaves=24,
)


def deepened(draw: st.DrawFn, value: Any) -> Any:
    """``value``, sometimes put inside enough containers to reach the bound or pass it."""
    if draw(st.booleans()):
        return value
    return nested(draw(st.sampled_from([62, 63, 64, 65, 66, 100])), draw(st.sampled_from(["arrays", "maps"])), value)


@st.composite
def odd_inputs(draw: st.DrawFn) -> Any:
    return deepened(draw, draw(odd_values))


def has_non_str_key(value: Any) -> bool:
    if type(value) is dict:
        return any(type(key) is not str or has_non_str_key(item) for key, item in value.items())
    if type(value) is list:
        return any(has_non_str_key(item) for item in value)
    return False


def utf8_ordered(value: Any) -> Any:
    """``value`` with each map's ``str`` keys in UTF-8 order, as canonical bytes hold them."""
    if type(value) is dict:
        keys = list(value)
        if all(type(key) is str for key in keys):
            keys.sort(key=lambda key: key.encode())
        return {key: utf8_ordered(value[key]) for key in keys}
    if type(value) is list:
        return [utf8_ordered(item) for item in value]
    return value


def utf16_ordered(value: Any) -> Any:
    """``value`` with each object's keys in UTF-16 order, as JCS writes them."""
    if type(value) is dict:
        return {key: utf16_ordered(value[key]) for key in sorted(value, key=lambda key: key.encode("utf-16-be"))}
    if type(value) is list:
        return [utf16_ordered(item) for item in value]
    return value


def jcs_layout(value: Any) -> bytes:
    """The text JCS would write for ``value`` if the rules allowed it (floats and big
    integers as Python writes them)."""
    return json.dumps(utf16_ordered(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def has_bytes(value: Any) -> bool:
    if type(value) is bytes:
        return True
    if type(value) is dict:
        return any(has_bytes(item) for item in value.values())
    if type(value) is list:
        return any(has_bytes(item) for item in value)
    return False


@settings(max_examples=400)
@given(odd_inputs())
def test_one_verdict_per_value_in_canonical_bytes(value: Any) -> None:
    by_value = outcome(cb, value)
    try:
        data = msgpack.packb(utf8_ordered(value), use_bin_type=True)
    except (OverflowError, ValueError, TypeError):  # an integer beyond 64 bits has no bytes
        assert by_value[0] == "refused"
        return
    by_bytes = outcome(decode_cb, data)
    assert code_of(by_value) == code_of(by_bytes)
    if by_value[0] == "ok":
        assert by_value[1] == data and by_bytes[1] == value


@settings(max_examples=400)
@given(odd_inputs())
def test_one_verdict_per_value_in_canonical_json(value: Any) -> None:
    results = [outcome(validate_json_value, value), outcome(jcs, value)]
    if not has_non_str_key(value) and not has_bytes(value):  # such values have no JSON text
        text = jcs_layout(value)
        results += [outcome(parse_canonical_json, text), outcome(parse_json, text)]
    assert len({result[0] for result in results}) == 1, results
    if results[0][0] == "ok":
        assert results[1] == ("ok", jcs_layout(value))
        assert all(result == ("ok", value) for result in results[2:])
    else:
        assert {result[1] for result in results} == {"encoding.json"}
        if "MAX_NESTING_DEPTH" in results[0][2]:
            assert all("MAX_NESTING_DEPTH" in result[2] for result in results)


@given(st.dictionaries(odd_text, st.integers(0, 3), min_size=1, max_size=4), st.data())
def test_a_repeated_key_is_named_in_every_form(mapping: dict[str, int], data: st.DataObject) -> None:
    key = data.draw(st.sampled_from(sorted(mapping, key=lambda k: k.encode("utf-16-be"))))
    text = jcs(mapping)
    member = json.dumps(key, ensure_ascii=False).encode() + b":0"
    doubled = text[:-1] + b"," + member + b"}"
    for parse in (parse_canonical_json, parse_json):
        with pytest.raises(errors.JsonError, match="expected unique object keys"):
            parse(doubled)
    entries = b"".join(
        msgpack.packb(k, use_bin_type=True) + msgpack.packb(v) for k, v in sorted(mapping.items(), key=lambda i: i[0].encode())
    )
    repeated = msgpack.packb(key) + b"\x00"
    count = len(mapping) + 1
    header = bytes([0x80 | count]) if count < 16 else b"\xde" + count.to_bytes(2, "big")
    with pytest.raises((errors.DuplicateKeyError, errors.UnsortedKeysError)):
        decode_cb(header + entries + repeated)


@settings(max_examples=300)
@given(values, st.data())
def test_whatever_decode_cb_accepts_is_canonical(value: Any, data: st.DataObject) -> None:
    headers = st.sampled_from([0x80, 0x90, 0xA0, 0xC1, 0xC4, 0xCA, 0xCC, 0xD0, 0xD4, 0xD9, 0xDC, 0xDE])
    altered = _alter(data, cb(value), st.integers(0, 255) | headers)
    try:
        decoded = decode_cb(altered)
    except errors.EncodingError:
        return  # and never another exception
    assert cb(decoded) == altered


@settings(max_examples=300)
@given(json_values, st.data())
def test_whatever_parse_canonical_json_accepts_is_its_jcs(value: Any, data: st.DataObject) -> None:
    json_bytes = st.sampled_from(list(b' ,:{}[]"\\-0159.eEutfnl/ab') + [0x00, 0x1F, 0x7F, 0xC3, 0xA9, 0xED, 0xF0, 0xFF])
    altered = _alter(data, jcs(value), json_bytes)
    try:
        parsed = parse_canonical_json(altered)
    except errors.JsonError:
        return  # and never another exception
    assert jcs(parsed) == altered
    assert parse_json(altered) == parsed


@given(st.binary(max_size=80))
def test_any_bytes_get_a_named_verdict(raw: bytes) -> None:
    for function, family in ((decode_cb, errors.EncodingError), (parse_canonical_json, errors.JsonError), (parse_json, errors.JsonError)):
        with contextlib.suppress(family):
            function(raw)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ((1, 2), None),  # a tuple is written as an array
        ({1: "a"}, "encoding.unsupported_type"),
        ({b"k": 1}, "encoding.unsupported_type"),
        ([2**64], "encoding.unsupported_type"),
        ([-(2**63) - 1], "encoding.unsupported_type"),
        ({"a": {1, 2}}, "encoding.unsupported_type"),
        ([bytearray(b"x")], "encoding.unsupported_type"),
        (["\ud800"], "encoding.invalid"),
        ([msgpack.ExtType(5, b"")], "encoding.unsupported_type"),
    ],
)
def test_cb_refuses_what_canonical_bytes_cannot_hold(value: Any, code: str | None) -> None:
    result = outcome(cb, value)
    if code is None:
        assert result[0] == "ok"
    else:
        assert result[:2] == ("refused", code)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"\xd6\xff\x00\x00\x00\x01", "encoding.unsupported_type"),  # a timestamp (ext type -1)
        (b"\xc7\x03\xff\x00\x00\x00", "encoding.unsupported_type"),  # a malformed timestamp
        (b"\x81\x90\x01", "encoding.unsupported_type"),  # an array as a map key
        (b"\x81\x80\x01", "encoding.unsupported_type"),  # a map as a map key
        (b"\x81\xc4\x01k\x01", "encoding.unsupported_type"),  # bin as a map key
        (b"", "encoding.truncated"),
        (b"\xdd\xff\xff\xff\xff", "encoding.truncated"),  # an array longer than the input
        (b"\xdb\xff\xff\xff\xff", "encoding.truncated"),
        (b"\xa3\xed\xa0\x80", "encoding.invalid"),  # a surrogate written in UTF-8
        (b"\x82\xa1b\x01\xa1a\x02", "encoding.unsorted_keys"),
        (b"\x83\xa1a\x01\xa1b\x01\xa1a\x02", "encoding.unsorted_keys"),  # a key again, out of order
        (b"\x91\xcb" + struct.pack(">d", 2.0), "encoding.float"),
    ],
)
def test_decode_cb_names_each_fault(raw: bytes, code: str) -> None:
    assert outcome(decode_cb, raw)[:2] == ("refused", code)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (b'{"a":18446744073709551616}', "integer of magnitude below 2^53"),
        (b'{"a":9007199254740992}', "integer of magnitude below 2^53"),
        (b'{"a":1.0}', "no floats"),
        (b'{"a":1E2}', "no floats"),
        (b'"\\ud800"', "expected JSON"),  # a lone surrogate is not text
        (b"\xef\xbb\xbf{}", "expected JSON"),  # a byte order mark is not JCS
        (b'{"a":1,"a":1}', "expected unique object keys"),
        (b'{"b":1,"a":1}', "RFC 8785 canonical form"),
        (b'{"a":"\\u0041"}', "RFC 8785 canonical form"),
        (b"-0", "RFC 8785 canonical form"),
        (b"[" * 1025 + b"]" * 1025, "MAX_NESTING_DEPTH"),
    ],
)
def test_parse_canonical_json_names_each_fault(text: bytes, fragment: str) -> None:
    with pytest.raises(errors.JsonError, match=re.escape(fragment)):
        parse_canonical_json(text)


def test_parse_json_allows_a_byte_order_mark_and_layout() -> None:
    assert parse_json(b'\xef\xbb\xbf{ "a" : [1, 2] }') == {"a": [1, 2]}
    assert parse_json('{"b": 1, "a": "\\u0041"}') == {"b": 1, "a": "A"}


def test_jcs_refuses_what_documents_cannot_hold() -> None:
    for value, fragment in [
        ({"a": (1,)}, "expected a JSON value"),
        ({"a": b"x"}, "expected a JSON value"),
        ({1: 2}, "string object keys"),
        (["\ud800"], "valid Unicode"),
        ([2**53], "integer of magnitude below 2^53"),
        ([float("nan")], "no floats"),
    ]:
        for check in (validate_json_value, jcs):
            with pytest.raises(errors.JsonError, match=re.escape(fragment)):
                check(value)


# --- H -------------------------------------------------------------------------------


@given(st.binary(max_size=9000))
def test_h_is_sha256(data: bytes) -> None:
    import hashlib

    from ledger.encoding import H

    expected = hashlib.sha256(data).digest()
    assert H(data) == expected
    assert H(bytearray(data)) == expected
    assert H(memoryview(data)) == expected


def test_h_is_hashlib_sha256() -> None:
    import hashlib

    from ledger.encoding import H

    assert H(b"abc") == hashlib.sha256(b"abc").digest()
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
def test_an_envelope_value_is_refused_by_name_or_decoded_faithfully(contract: dict[str, Any], data: st.DataObject) -> None:
    # One path decodes an envelope's fields: whatever value it meets, it names a fault or
    # builds a transaction whose wire form is exactly that value.
    from ledger.transactions import _checked_transaction

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
        assert exc.code
        return
    assert checked.to_wire() == value["tx"]


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
def test_an_envelope_field_set_to_an_odd_value_is_refused_by_name_or_decoded_faithfully(
    contract: dict[str, Any], path: tuple[str, ...], odd: Any
) -> None:
    from ledger.transactions import _checked_transaction

    value = decode_cb(bytes.fromhex(contract["transaction"]["envelope_cb"]))
    holder = value
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = odd
    try:
        checked = _checked_transaction(value)
    except errors.LedgerError as exc:
        assert exc.code
        return
    assert checked.to_wire() == value["tx"]


def test_a_value_names_the_fault_its_bytes_would_hold_first() -> None:
    """Regression (found by hypothesis in a CI run): cb walked a map in the caller's key
    order, its bytes in UTF-8 order, so the two named different first faults."""
    value = {"\\": {1: None}, "": [0.0]}
    data = msgpack.packb({"": [0.0], "\\": {1: None}}, use_bin_type=True)
    assert code_of(outcome(cb, value)) == code_of(outcome(decode_cb, data)) == ("refused", "encoding.float")
