"""The one-pass check of content bytes (``check_canonical_document``) against the exact path.

The promise under test: when ``documents.check_canonical_document(doc_type, data)``
returns a number, ``parse_canonical_json_exact(data)`` accepts the bytes,
``validate_document`` accepts what it parses and ``document_number`` gives that
number; and on canonical, valid documents it does return the number (the fast path
is taken). Beneath it, the compiled walk over the scanned tokens
(``Schema.is_valid_scanned``) must give ``Schema.is_valid`` of the parsed value for
every schema, and ``Scanned`` must spell the value ``orjson.loads`` gives. The
documents are the realistic examples mutated at random paths (the generators of
test_docschema_compiled.py), written canonically and then spoiled byte by byte.
"""

from __future__ import annotations

import copy
import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_docschema_compiled import (
    BASES,
    EDGE_CHARS,
    EXAMPLES,
    SAMPLES,
    SCHEMAS,
    all_schemas,
    get,
    mutated_documents,
    paths,
)

from ledger import documents
from ledger.encoding import jcs, parse_canonical_json_exact
from ledger.errors import DocumentError, JsonError

_docschema = importlib.import_module("ledger._docschema")
_jsonscan = importlib.import_module("ledger._jsonscan")

DOC_TYPES = sorted(documents.DOC_TYPES)
DIFFERENTIAL = settings(
    max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
VALUES = settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def exact_number(doc_type: str, data: bytes) -> str | None:
    """What the exact path makes of the bytes: the number, or None for any fault it names."""
    try:
        parsed = parse_canonical_json_exact(data)
        documents.validate_document(doc_type, parsed)
        return documents.document_number(doc_type, parsed)
    except (JsonError, DocumentError):
        return None


def assert_promise(doc_type: str, data: bytes) -> str | None:
    """The fast path never claims more than the exact path grants, and claims what it can show."""
    number = documents.check_canonical_document(doc_type, data)
    exact = exact_number(doc_type, data)
    if number is not None:
        assert number == exact, data[:300]
    shown = _jsonscan.is_canonical_document(data)
    assert (_docschema.scan_canonical(data) is not None) is shown
    if shown and exact is not None:
        assert number == exact, data[:300]  # canonical and valid: the fast path is taken
    return number


# --- the hot path is compiled ----------------------------------------------------


def test_scanned_path_is_compiled() -> None:
    # Without the compiled scan every document silently takes the 45 us exact path.
    assert documents._docschema is _docschema
    for schema in all_schemas():
        assert schema.is_valid_scanned is not None
        assert isinstance(schema.is_valid_scanned.__self__, _docschema.Schema)  # type: ignore[attr-defined]


def test_selection_is_shared() -> None:
    # The parsed path's selectors are the scanned path's choosers, read through dict.get.
    assert set(documents._SELECTORS) == set(documents._CHOOSERS) == documents.DOC_TYPES
    for doc_type, doc in BASES:
        scanned = _docschema.scan_canonical(jcs(doc))
        assert documents._CHOOSERS[doc_type](scanned.get) is documents._SELECTORS[doc_type](doc)


# --- realistic documents: the fast path is taken -----------------------------------


@pytest.mark.parametrize("index", range(len(BASES)), ids=[f"{t}-{i}" for i, (t, _) in enumerate(BASES)])
def test_realistic_documents_take_the_fast_path(index: int) -> None:
    doc_type, doc = BASES[index]
    data = jcs(doc)
    number = documents.check_canonical_document(doc_type, data)
    assert number is not None
    assert number == documents.document_number(doc_type, doc) == exact_number(doc_type, data)


def test_every_example_and_sample_file_agrees() -> None:
    # Every JSON file shipped beside the code, under every type: as canonical bytes and
    # as written (indented, so never shown canonical).
    files = sorted(EXAMPLES.glob("*.json")) + sorted(SAMPLES.glob("*.json"))
    assert files
    taken = 0
    for path in files:
        raw = path.read_bytes()
        written = canonical(json.loads(raw))
        for doc_type in DOC_TYPES:
            for data in (raw,) if written is None else (written, raw):
                taken += assert_promise(doc_type, data) is not None
    assert taken >= len(BASES)


def test_unknown_doc_type_and_wrong_input_are_left_to_the_exact_path() -> None:
    data = jcs(BASES[0][1])
    assert documents.check_canonical_document("passport", data) is None
    assert documents.check_canonical_document(None, data) is None  # type: ignore[arg-type]
    assert documents.check_canonical_document(BASES[0][0], bytearray(data)) is None  # type: ignore[arg-type]
    for root in (b"[]", b"null", b'"x"', b"1", b"{}"):
        for doc_type in DOC_TYPES:
            assert documents.check_canonical_document(doc_type, root) is None


# --- byte variants of mutated documents ----------------------------------------------

# Strings that JCS writes with escapes, beyond ASCII, beyond U+FFFF, or at an edge.
ODD_STRINGS = [
    'a"b',
    "a\\b",
    "\x00",
    "\x1f",
    "\x7f",
    "\b\t\n\x0c\r",
    "\u00e9",
    "\u2028",
    "\ud7ff",
    "\ue000",
    "\uffff",
    "\U0001f600",
    "EG\u0000",
    "E\u0301G",
    "AU\n",
    " AU",
    "2204.21\u0663",
    "CO-1/2",
    "CO-\\1",
]
ODD_KEYS = ["\U0001f600", "\uffff", 'a"', "\n", "", "\u00e9", "iD\x00", "~"]
LEAVES = st.one_of(
    st.sampled_from(ODD_STRINGS),
    st.text(alphabet=EDGE_CHARS + '"\\\x00\x01\x1f', max_size=12),
    st.text(max_size=8),
    st.sampled_from([True, False, None, 0, 1, -1, 2**53 - 1, -(2**53 - 1), 2**53, 2**64, 1.5]),
)


@st.composite
def odd_documents(draw: st.DrawFn) -> tuple[str, Any]:
    """A mutated realistic document, then strings, keys and ints no example holds."""
    doc_type, doc = draw(mutated_documents())
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(list(paths(doc))))
        target = get(doc, path)
        if type(target) is dict and draw(st.booleans()):
            target[draw(st.sampled_from(ODD_KEYS))] = draw(LEAVES)
        elif type(target) is str and draw(st.booleans()):
            where = draw(st.integers(0, len(target)))
            new = target[:where] + draw(st.sampled_from(ODD_STRINGS)) + target[where:]
            if path:
                get(doc, path[:-1])[path[-1]] = new
        elif path:
            get(doc, path[:-1])[path[-1]] = draw(LEAVES)
    return doc_type, doc


def canonical(doc: Any) -> bytes | None:
    try:
        return jcs(doc)
    except JsonError:
        return None  # a float or an unsafe integer: no canonical form


def _spoil_whitespace(data: bytes, at: int, draw: st.DrawFn) -> bytes:
    return data[:at] + draw(st.sampled_from([b" ", b"\n", b"\t", b"\r\n"])) + data[at:]


def _spoil_flip(data: bytes, at: int, draw: st.DrawFn) -> bytes:
    return data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]


def _spoil_truncate(data: bytes, at: int, draw: st.DrawFn) -> bytes:
    return data[:at]


def _spoil_duplicate(data: bytes, at: int, draw: st.DrawFn) -> bytes:
    # Repeat one member of the first object at or after `at`, next to itself.
    start = data.find(b'{"', at)
    if start < 0:
        return data
    end = data.find(b',"', start)
    if end < 0:
        return data
    member = data[start + 1 : end]
    return data[: start + 1] + member + b"," + data[start + 1 :]


def _spoil_escape(data: bytes, at: int, draw: st.DrawFn) -> bytes:
    # One character written another way JSON allows: \u escapes, an escaped solidus.
    rest = data[at:]
    for plain, escaped in (
        (b"/", b"\\/"),
        (b"A", b"\\u0041"),
        (b"\\n", b"\\u000a"),
        (b"\\u001f", b"\\u001F"),
    ):
        if plain in rest:
            return data[:at] + rest.replace(plain, escaped, 1)
    return data


def _spoil_number(data: bytes, at: int, draw: st.DrawFn) -> bytes:
    # An integer written as a float, with a sign or a leading zero, or out of range.
    for digit in b"0123456789":
        where = data.find(bytes([digit]), at)
        if where >= 0 and data[where - 1 : where] in (b":", b",", b"["):
            written = draw(
                st.sampled_from([b"1.0", b"1e2", b"-0", b"01", b"9007199254740992", b"1E0", b"+1"])
            )
            return data[:where] + written + data[where + 1 :]
    return data


def _spoil_nesting(data: bytes, at: int, draw: st.DrawFn) -> bytes:
    depth = draw(st.sampled_from([1, 63, 64, 65, 510, 511, 512, 513]))
    return b"[" * depth + data + b"]" * depth


SPOILERS: list[Callable[[bytes, int, st.DrawFn], bytes]] = [
    _spoil_whitespace,
    _spoil_flip,
    _spoil_truncate,
    _spoil_duplicate,
    _spoil_escape,
    _spoil_number,
    _spoil_nesting,
]


@st.composite
def byte_variants(draw: st.DrawFn) -> tuple[str, bytes]:
    """Canonical bytes of an odd document, often spoiled in one or two ways."""
    doc_type, doc = draw(odd_documents())
    data = canonical(doc)
    if data is None or draw(st.integers(0, 3)) == 0:
        # Unsorted keys, ASCII escapes or floats: written by another serializer.
        writer = draw(st.sampled_from(["orjson", "ascii", "sorted"]))
        if writer == "orjson":
            try:
                data = orjson.dumps(doc)
            except orjson.JSONEncodeError:
                data = b"{}"
        else:
            data = json.dumps(
                doc, ensure_ascii=writer == "ascii", sort_keys=True, separators=(",", ":")
            ).encode("utf-8", "surrogatepass")
    for _ in range(draw(st.integers(0, 2))):
        spoil = draw(st.sampled_from(SPOILERS))
        data = spoil(data, draw(st.integers(0, max(len(data) - 1, 0))), draw)
    return doc_type, data


@DIFFERENTIAL
@given(byte_variants())
def test_fast_path_never_claims_more_than_the_exact_path(case: tuple[str, bytes]) -> None:
    doc_type, data = case
    assert_promise(doc_type, data)
    # The bytes under the other types too: a number must still be the exact one.
    other = DOC_TYPES[len(data) % len(DOC_TYPES)]
    assert_promise(other, data)


@DIFFERENTIAL
@given(odd_documents())
def test_scanned_walk_agrees_with_the_parsed_walk(case: tuple[str, Any]) -> None:
    doc_type, doc = case
    data = canonical(doc)
    assume(data is not None)
    assert data is not None
    scanned = _docschema.scan_canonical(data)
    if scanned is None:  # left to the exact path: only a key beyond U+FFFF here
        assert not _jsonscan.is_canonical_document(data)
        return
    parsed = orjson.loads(data)
    assert scanned.value() == parsed
    for schema in SCHEMAS[doc_type]:
        assert schema.is_valid_scanned is not None
        assert schema.is_valid_scanned(scanned) is schema.is_valid(parsed) is schema.is_valid(doc), data[:300]
    assert_promise(doc_type, data)


# Values of other types and odd strings, for every single field of every realistic
# document: a bool where an int is wanted, an int where a bool is, a null...
SINGLE_EDITS: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2**53 - 1,
    "",
    " ",
    "x",
    "1",
    "EG",
    "\u00e9",
    'a"b',
    "a\\b",
    "\x00",
    "\U0001f600",
    "2026-12-02T09:15:00+02:00",
    [],
    {},
    ["x"],
    {"iD": "x"},
]


@pytest.mark.parametrize("index", range(len(BASES)), ids=[f"{t}-{i}" for i, (t, _) in enumerate(BASES)])
def test_every_single_field_edit_agrees(index: int) -> None:
    doc_type, base = BASES[index]
    verdicts = {True: 0, False: 0}
    for path in list(paths(base))[1:]:
        for new in SINGLE_EDITS:
            doc = copy.deepcopy(base)
            get(doc, path[:-1])[path[-1]] = copy.deepcopy(new)
            data = jcs(doc)
            scanned = _docschema.scan_canonical(data)
            parsed = orjson.loads(data)
            for schema in SCHEMAS[doc_type]:
                assert schema.is_valid_scanned is not None
                assert schema.is_valid_scanned(scanned) is schema.is_valid(parsed), (path, new)
            verdicts[assert_promise(doc_type, data) is not None] += 1
    assert verdicts[True] and verdicts[False], verdicts


def test_mutations_reach_both_verdicts_on_the_fast_path() -> None:
    # The differential tests mean something only if the fast path both takes and
    # declines their documents; draw a fixed sample and count.
    verdicts = {True: 0, False: 0}

    @settings(max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(mutated_documents())
    def sample(case: tuple[str, Any]) -> None:
        doc_type, doc = case
        data = canonical(doc)
        if data is not None:
            verdicts[documents.check_canonical_document(doc_type, data) is not None] += 1

    sample()
    assert verdicts[True] >= 20 and verdicts[False] >= 20, verdicts


# --- Scanned spells the value orjson parses ---------------------------------------------

JSON_KEYS = st.sampled_from(
    ["a", "b", "iD", "name", "", "\u00e9", "\x00", '"', "\\", "\n", "\uffff", "a\x7f"]
)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.text(alphabet=EDGE_CHARS + '"\\', max_size=6),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(JSON_KEYS | st.text(max_size=3), children, max_size=5)
    ),
    max_leaves=20,
)


def same_json(a: Any, b: Any) -> bool:
    """Equal with the same types throughout (True is not 1 here)."""
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return list(a) == list(b) and all(same_json(a[k], b[k]) for k in a)
    if type(a) is list:
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@VALUES
@given(JSON_VALUES)
def test_scanned_value_and_members_are_what_orjson_gives(value: Any) -> None:
    data = canonical(value)
    assume(data is not None)
    assert data is not None
    scanned = _docschema.scan_canonical(data)
    assert (scanned is not None) is _jsonscan.is_canonical_document(data)
    if scanned is None:
        return
    parsed = orjson.loads(data)
    assert same_json(scanned.value(), parsed)
    assert scanned.is_object is (type(parsed) is dict)
    absent = object()
    for key in [
        "a",
        "iD",
        "",
        "\x00",
        '"',
        "\\",
        "\n",
        "\u00e9",
        "\ud800",
        "zz",
        *(parsed if type(parsed) is dict else []),
    ]:
        expected = parsed.get(key, absent) if type(parsed) is dict else absent
        got = scanned.get(key, absent)
        assert got is absent if expected is absent else same_json(got, expected)
        assert (
            scanned.get(key) is None if expected in (absent, None) else same_json(scanned.get(key), expected)
        )


# --- synthetic schemas: every node kind on arbitrary JSON ---------------------------------

# Keys on either side of the backslash (0x5C) that escaped keys begin with, escaped
# keys themselves, keys beyond ASCII, and keys no document can hold.
SPEC_KEYS = [
    "a",
    "b",
    "iD",
    "A",
    "UN",
    "",
    "\u00e9",
    "\x00",
    '"',
    "\\",
    "\n",
    "\uffff",
    "\U0001f600",
    "\ud800",
]
# Keys a document holds: no lone surrogate (no UTF-8) and none beyond U+FFFF (whose
# order the scanner leaves to the exact path).
BMP = st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",))
VALUE_KEYS = [key for key in SPEC_KEYS if key.isascii() or key in ("\u00e9", "\uffff")]
SEEN: list[Any] = []


def _python_leaf(value: Any) -> bool:
    SEEN.append(value)
    return type(value) is str and len(value) % 2 == 0


def _rule(value: Any) -> bool:
    SEEN.append(value)
    return len(value) % 2 == 1


LEAF_SPECS = st.sampled_from(
    [
        ("leaf", "string", None),
        ("leaf", "text", None),
        ("leaf", "bool", None),
        ("leaf", "int_range", (1, 2**53 - 1)),
        ("leaf", "int_range", (-5, 5)),
        ("leaf", "ascii_graphic", (1, 4)),
        ("leaf", "digits", (1, 2)),
        ("leaf", "in_set", frozenset({"a", "\u00e9", "", '"', "\x00", "ab", "\ud800"})),
        ("leaf", "in_set", {"a", "b"}),  # a set: looked up through a str
        ("leaf", "in_set", frozenset({"a", 1, "b"})),  # not only str: likewise
        ("leaf", "hs_code", None),
        ("leaf", "datetime", None),
        ("leaf", "date_or_datetime", None),
        ("leaf", "decimal", None),
        ("leaf", "non_negative_decimal", None),
        ("leaf", "python", _python_leaf),
    ]
)


def _object_spec(fields: list[tuple[str, bool, Any]], with_rule: bool) -> tuple[Any, ...]:
    return ("object", tuple(fields), _rule if with_rule else None)


SPECS = st.recursive(
    LEAF_SPECS,
    lambda children: (
        st.builds(
            _object_spec,
            st.lists(st.tuples(st.sampled_from(SPEC_KEYS), st.booleans(), children), max_size=5),
            st.booleans(),
        )
        | st.builds(lambda n, item: ("array", n, item), st.integers(0, 2), children)
        | st.builds(
            lambda fields: ("text_or_object", _object_spec(fields, False)),
            st.lists(st.tuples(st.sampled_from(SPEC_KEYS), st.booleans(), children), max_size=3),
        )
    ),
    max_leaves=8,
)
SPEC_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.sampled_from([0, 1, -1, 5, 6, 2**53 - 1, -(2**53 - 1)])
    | st.sampled_from(
        ["", "a", "ab", "\u00e9", "\x00", '"', "12", "2204.21", "2024-02-29", "1.5", " ", "a\\"]
    )
    | st.text(alphabet=EDGE_CHARS + '"\\', max_size=4),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(VALUE_KEYS) | st.text(BMP, max_size=2), children, max_size=5)
    ),
    max_leaves=16,
)


LEAF_CANDIDATES: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    5,
    6,
    2**53 - 1,
    -(2**53 - 1),
    "",
    " ",
    "a",
    "ab",
    "abcde",
    "\u00e9",
    "\x00",
    '"',
    "a\\",
    "12",
    "123",
    "2204.21",
    "2024-02-29",
    "2023-02-29",
    "2024-02-29T00:00:00Z",
    "1.5",
    "-1.5",
    "\uffff",
    "\U0001f600",
    [],
    {},
]


@st.composite
def values_for(draw: st.DrawFn, spec: tuple[Any, ...], depth: int = 0) -> Any:
    """A value shaped like `spec` at most places, and off it at some."""
    kind = spec[0]
    if depth > 6 or draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(LEAF_CANDIDATES) | SPEC_VALUES)
    if kind == "leaf":
        return draw(st.sampled_from(LEAF_CANDIDATES))
    if kind == "array":
        return draw(st.lists(values_for(spec[2], depth + 1), max_size=3))
    if kind == "text_or_object" and draw(st.booleans()):
        return draw(st.sampled_from(LEAF_CANDIDATES))
    fields = spec[1] if kind == "object" else spec[1][1]
    value: dict[str, Any] = {}
    for key, _required, child in fields:
        if key in VALUE_KEYS and draw(st.integers(0, 4)) > 0:
            value[key] = None if draw(st.integers(0, 7)) == 0 else draw(values_for(child, depth + 1))
    for key in draw(st.lists(st.sampled_from(VALUE_KEYS), max_size=2)):
        value.setdefault(key, draw(st.sampled_from(LEAF_CANDIDATES)))
    return value


@VALUES
@given(st.data(), SPECS)
def test_every_node_kind_agrees_on_arbitrary_values(data_: st.DataObject, spec: tuple[Any, ...]) -> None:
    value = data_.draw(values_for(spec) | SPEC_VALUES)
    schema = _docschema.Schema(spec)
    data = canonical(value)
    assume(data is not None)
    assert data is not None
    scanned = _docschema.scan_canonical(data)
    assert scanned is not None
    parsed = orjson.loads(data)
    SEEN.clear()
    expected = schema.is_valid(parsed)
    seen_parsed = list(SEEN)
    SEEN.clear()
    assert schema.is_valid_scanned(scanned) is expected
    # Rules and "python" leaves are called with the same values, in the same order.
    assert len(SEEN) == len(seen_parsed) and all(map(same_json, SEEN, seen_parsed))


def test_many_fields_and_repeated_fields() -> None:
    # More fields than one merge handles, and a key named twice, on both walks.
    wide = _docschema.Schema(
        ("object", tuple((f"k{i:02d}", True, ("leaf", "digits", (1, 3))) for i in range(40)), None)
    )
    twice = _docschema.Schema(
        ("object", (("a", True, ("leaf", "text", None)), ("a", True, ("leaf", "digits", (1, 2)))), None)
    )
    for value in (
        {f"k{i:02d}": str(i) for i in range(40)},
        {f"k{i:02d}": str(i) for i in range(39)},
        {**{f"k{i:02d}": str(i) for i in range(40)}, "k07": "x"},
        {"a": "12"},
        {"a": "x"},
        {"a": None},
        {},
    ):
        data = jcs(value)
        for schema in (wide, twice):
            assert schema.is_valid_scanned(_docschema.scan_canonical(data)) is schema.is_valid(value)


def test_sample_files_are_present() -> None:
    assert isinstance(SAMPLES, Path) and any(SAMPLES.glob("*.json"))
