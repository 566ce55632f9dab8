"""Edges of ``_docschema.scan_canonical`` and the walk over its tokens, case by case."""

from __future__ import annotations

import importlib
from typing import Any

import orjson
import pytest

from ledger import documents
from ledger.encoding import jcs

_docschema = importlib.import_module("ledger._docschema")
_jsonscan = importlib.import_module("ledger._jsonscan")

TEXT = ("leaf", "string", None)


def both(spec: tuple[Any, ...], value: Any) -> tuple[bool, bool]:
    """(walk over the scanned bytes, walk over the parsed value) for jcs(value)."""
    schema = _docschema.Schema(spec)
    data = jcs(value)
    scanned = _docschema.scan_canonical(data)
    assert scanned is not None
    return schema.is_valid_scanned(scanned), schema.is_valid(orjson.loads(data))


@pytest.mark.parametrize("escaped", ["\n", '"', "\\", "\x00", "\x1f", "a\nb"])
@pytest.mark.parametrize("required", [True, False])
def test_an_escaped_key_does_not_hide_the_fields_after_it(escaped: str, required: bool) -> None:
    # An escaped key is written from a backslash (0x5C), after "A" and "UN" in byte
    # order though before them in code point order: the member match must not skip.
    spec = (
        "object",
        (("A", required, ("leaf", "digits", (1, 1))), ("UN", required, TEXT), ("z", False, TEXT)),
        None,
    )
    for value in (
        {escaped: 1, "A": "1", "UN": "x"},
        {escaped: 1, "A": "x", "UN": "x"},
        {escaped: 1, "UN": 5},
        {escaped: "1", "A": "1", "UN": "x", "z": 0},
    ):
        scanned, parsed = both(spec, value)
        assert scanned is parsed, value


@pytest.mark.parametrize("name", ["\n", '"', "\\", "\x00", "a\x7f", "\u00e9", "\uffff"])
def test_fields_named_with_escapes_and_beyond_ascii_are_found(name: str) -> None:
    spec = ("object", ((name, True, ("leaf", "digits", (1, 1))), ("A", True, TEXT)), None)
    for value in ({name: "1", "A": "x"}, {name: "x", "A": "x"}, {"A": "x"}, {name: None, "A": "x"}):
        scanned, parsed = both(spec, value)
        assert scanned is parsed, value


def test_a_field_no_document_can_hold_is_always_absent() -> None:
    for name in ("\ud800", "\U0001f600"):
        for required in (True, False):
            spec = ("object", ((name, required, TEXT),), None)
            scanned, parsed = both(spec, {"a": 1})
            assert scanned is parsed is (not required)


def test_nesting_up_to_the_scanner_limit() -> None:
    for depth in (511, 512):
        data = b"[" * depth + b"]" * depth
        scanned = _docschema.scan_canonical(data)
        assert scanned is not None and _jsonscan.is_canonical_document(data)
        assert scanned.value() == orjson.loads(data)
        # A python leaf at the root has the whole value built for it.
        got: list[Any] = []
        schema = _docschema.Schema(("leaf", "python", got.append))
        assert schema.is_valid_scanned(scanned) is False and got == [orjson.loads(data)]
    deeper = b"[" * 513 + b"]" * 513
    assert _docschema.scan_canonical(deeper) is None and not _jsonscan.is_canonical_document(deeper)


def test_the_token_table_is_bounded() -> None:
    # Past MAX_TOKENS (2^17) values the scan declines; the exact path still decides.
    fits = b"[" + b"0," * (2**17 - 2) + b"0]"
    over = b"[" + b"0," * (2**17 - 1) + b"0]"
    assert _docschema.scan_canonical(fits) is not None
    assert _docschema.scan_canonical(over) is None
    assert _jsonscan.is_canonical_document(over)


def test_get_reads_members_as_dict_get_does() -> None:
    scanned = _docschema.scan_canonical(jcs({"a": None, "b": [1, True], "c\n": "\U0001f600", "d": {"e": -3}}))
    absent = object()
    assert scanned.is_object
    assert scanned.get("a") is None and scanned.get("a", absent) is None
    assert scanned.get("zz") is None and scanned.get("zz", absent) is absent
    assert scanned.get("b") == [1, True] and scanned.get("b")[1] is True
    assert scanned.get("c\n") == "\U0001f600" and scanned.get("d") == {"e": -3}
    assert scanned.get("\ud800", absent) is absent
    with pytest.raises(TypeError):
        scanned.get(1)
    with pytest.raises(TypeError):
        scanned.get()
    array = _docschema.scan_canonical(b'["a"]')
    assert not array.is_object and array.get("a", absent) is absent and array.value() == ["a"]


def test_only_bytes_and_scanned_documents_are_taken() -> None:
    with pytest.raises(TypeError):
        _docschema.scan_canonical("{}")
    with pytest.raises(TypeError):
        _docschema.scan_canonical(bytearray(b"{}"))
    with pytest.raises(TypeError):
        documents._COMMERCIAL_INVOICE.is_valid_scanned({})  # type: ignore[misc]


def test_a_rule_error_propagates_as_from_the_parsed_walk() -> None:
    def rule(value: Any) -> bool:
        raise ValueError(sorted(value))

    schema = _docschema.Schema(("object", (("a", False, TEXT),), rule))
    data = jcs({"b": 1, "a": "x"})
    with pytest.raises(ValueError, match=r"\['a', 'b'\]"):
        schema.is_valid_scanned(_docschema.scan_canonical(data))
    with pytest.raises(ValueError, match=r"\['a', 'b'\]"):
        schema.is_valid(orjson.loads(data))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b" {}",
        b"{} ",
        b'{"a":1,"a":1}',
        b'{"b":1,"a":1}',
        b'"\\/"',
        b'"\\u0041"',
        b"1.0",
        b"-0",
        b"01",
        b"9007199254740992",
        b"-9007199254740991",
        b'"\xed\xa0\x80"',
        b'"\xc0\x80"',
        b"tru",
        b"nul",
        b'{"a":}',
        b'{"\xf0\x9f\x98\x80":1}',
        b'"\\ud800"',
        b"[1,]",
        b'{"a":1,}',
    ],
)
def test_scan_and_screen_agree_on_edge_bytes(data: bytes) -> None:
    assert (_docschema.scan_canonical(data) is not None) is _jsonscan.is_canonical_document(data)
