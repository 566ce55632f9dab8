"""Documents as Python values and as bytes get one verdict (hypothesis).

``validate_document(doc_type, value)`` and ``validate_document_bytes(doc_type, data)``
run the one schema interpreter after the JSON rules of ``ledger.encoding``; whatever
the input, they must agree: both accept, or both refuse with the same error code (and,
for a schema fault, the same path and message). The inputs are the realistic examples
and TradeTrust samples mutated at random paths, then given what no example holds:
floats and integers beyond 2^53 anywhere, characters beyond U+FFFF in strings and
keys, escapes, containers nested around the 64 limit and far beyond it, wide objects
and arrays. Bytes are also spoiled after writing (whitespace, duplicate keys, other
escapes and number forms, truncation): a refusal is always a ``DocumentError``.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.documents import DOC_TYPES, document_number, validate_document, validate_document_bytes
from ledger.encoding import jcs
from ledger.errors import DocumentError
from ledger.limits import MAX_NESTING_DEPTH
from scripts.devkit import EXAMPLE_DOC_TYPES, TRADETRUST_SAMPLE_DOC_TYPES

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO.parent / "shared" / "samples"
EXAMPLES = REPO / "scripts" / "examples"

DOCUMENTS = settings(
    max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)

BASES: list[tuple[str, Any]] = [
    *((t, json.loads((EXAMPLES / name).read_text("utf-8"))) for name, t in EXAMPLE_DOC_TYPES.items()),
    *((t, json.loads((SAMPLES / name).read_text("utf-8"))) for name, t in TRADETRUST_SAMPLE_DOC_TYPES.items()),
]

# Characters next to the rules' edges: unicode digits, whitespace that is and is not
# str.isspace, letters on either side of A-Z, separators, one of each string width, a
# lone surrogate (no UTF-8 can carry it).
EDGE_CHARS = (
    "0123456789.-+:TtZz AEGSKLUXYaeuz\u00a0\u2003\u3000\u200b\ufeff\x1c\x1f\x85\t\n\r\x0b\x0c"
    "\u0663\uff13\u00b2\u00e9\U0001f600\ud800!~\x7f\x00@[`{/_,"
)


# --- writing a value as bytes -------------------------------------------------------------


def as_bytes(value: Any) -> bytes:
    """``value`` written as RFC 8785 would write it, floats and big integers included.

    Keys sorted by UTF-16 code units, compact, strings escaped as JCS escapes them
    (``json.dumps`` without ``ensure_ascii`` does exactly that), integers as digits,
    floats as Python writes them. A lone surrogate is written as its (invalid) UTF-8.
    """
    parts: list[str] = []

    def write(item: Any) -> None:
        if item is None or item is True or item is False or type(item) in (int, float, str):
            parts.append(json.dumps(item, ensure_ascii=False))
        elif type(item) is list:
            parts.append("[")
            for index, element in enumerate(item):
                if index:
                    parts.append(",")
                write(element)
            parts.append("]")
        else:
            parts.append("{")
            keys = sorted(item, key=lambda k: k.encode("utf-16-be", "surrogatepass"))
            for index, key in enumerate(keys):
                if index:
                    parts.append(",")
                parts.append(json.dumps(key, ensure_ascii=False) + ":")
                write(item[key])
            parts.append("}")

    write(value)
    return "".join(parts).encode("utf-8", "surrogatepass")


Verdict = tuple[str, str | None, str | None] | None


def verdict(check: Callable[[], object]) -> Verdict:
    """None when ``check`` accepts; else the code, and for a schema fault its path and message."""
    try:
        check()
    except DocumentError as exc:
        if exc.code == "doc.json":
            return exc.code, None, None
        return exc.code, exc.path, exc.message
    return None


def assert_one_verdict(doc_type: str, value: Any) -> Verdict:
    data = as_bytes(value)
    on_value = verdict(lambda: validate_document(doc_type, value))
    on_bytes = verdict(lambda: validate_document_bytes(doc_type, data))
    assert on_value == on_bytes, data[:400]
    if on_value is None:
        assert data == jcs(value)
        assert validate_document_bytes(doc_type, data) == document_number(doc_type, value)
    return on_value


def test_as_bytes_is_jcs_for_documents() -> None:
    for _, doc in BASES:
        assert as_bytes(doc) == jcs(doc)
    keys = {"\U0001f600": 1, "\uffff": 2, "\ue000": 3, "a": [None, True, -1, "\x00\x7f\u2028"]}
    assert as_bytes(keys) == jcs(keys)


# --- documents: realistic, mutated, then odd ---------------------------------------------


def paths(value: Any, prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    yield prefix
    if type(value) is dict:
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif type(value) is list:
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


def get(doc: Any, path: tuple[str | int, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


@st.composite
def near_miss(draw: st.DrawFn, seeds: list[str]) -> str:
    """A seed with up to four small edits: a character replaced, inserted, deleted..."""
    value = draw(st.sampled_from(seeds))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["replace", "insert", "delete", "case", "truncate", "repeat"]))
        where = draw(st.integers(0, len(value)))
        char = draw(st.sampled_from(EDGE_CHARS))
        if op == "replace" and where < len(value):
            value = value[:where] + char + value[where + 1 :]
        elif op == "insert":
            value = value[:where] + char + value[where:]
        elif op == "delete":
            value = value[:where] + value[where + 1 :]
        elif op == "case":
            value = value.swapcase()
        elif op == "truncate":
            value = value[:where]
        else:
            value = value[:where] + value[where:] * 2
    return value


# fmt: off
REPLACEMENT_STRINGS = [
    "", " ", "\u00a0", "\u2003", "x", "AU", "EG", "eg", "USD", "2204.21", "2204.21.00", "220421",
    "2026-12-02T09:15:00+02:00", "2024-02-29", "2023-02-29", "AUADL", "unece.un.org:locode:EGSOK",
    "1250.50", "-1", "1000", "1", "\u0663", "export", "free_zone_entry", "re_export", "CO-1",
]
# fmt: on
REPLACEMENTS = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, 1, -1, 2**53 - 1, -(2**53 - 1)]),
    st.sampled_from(REPLACEMENT_STRINGS),
    st.builds(list),
    st.builds(dict),
    st.builds(lambda: [{}]),
    st.lists(st.none() | st.text(max_size=3), max_size=2),
)
MUTATIONS = ["delete", "replace", "replace", "edit", "edit", "append", "empty", "null", "copy", "extend"]


@st.composite
def mutated_documents(draw: st.DrawFn) -> tuple[str, Any]:
    """A realistic document with one to three random edits at random paths."""
    doc_type, base = draw(st.sampled_from(BASES))
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        all_paths = list(paths(doc))
        path = draw(st.sampled_from(all_paths))
        target = get(doc, path)
        op = draw(st.sampled_from(MUTATIONS))
        new: Any
        if op == "delete" and path and type(path[-1]) is str:
            del get(doc, path[:-1])[path[-1]]
            continue
        if op == "edit" and type(target) is str:
            new = draw(near_miss([target]))
        elif op == "append" and type(target) is list:
            item = draw(st.sampled_from(target)) if target else {}
            new = [*target, copy.deepcopy(item) if draw(st.booleans()) else draw(REPLACEMENTS)]
        elif op == "empty":
            new = type(target)() if type(target) in (list, dict, str) else None
        elif op == "null":
            new = None
        elif op == "copy":
            new = copy.deepcopy(get(doc, draw(st.sampled_from(all_paths))))
        elif op == "extend" and type(target) is dict:
            # An unnamed member is allowed; a named one at the wrong place is not.
            key = draw(st.sampled_from(["salt", "x-ext", "iD", "name", "code", "countryCode"]))
            new = {**target, key: draw(REPLACEMENTS)}
        else:
            new = draw(REPLACEMENTS)
        if path:
            get(doc, path[:-1])[path[-1]] = new
        else:
            doc = new
    return doc_type, doc


ODD_STRINGS = [
    'a"b', "a\\b", "\x00", "\x1f", "\x7f", "\b\t\n\x0c\r", "\u00e9", "\u2028", "\ud7ff", "\ue000", "\uffff",
    "\U0001f600", "\U0010ffff", "EG\u0000", "E\u0301G", "AU\n", " AU", "2204.21\u0663", "CO-1/2", "CO-\\1",
]  # fmt: skip
ODD_KEYS = ["\U0001f600", "\U00010000", "\uffff", "\ue000", 'a"', "\n", "", "\u00e9", "iD\x00", "~"]
ODD_NUMBERS = [
    0.0, -0.0, 1.0, 450.5, 1e300, 5e-324, -1.5,
    2**53 - 1, -(2**53 - 1), 2**53, -(2**53), 2**63, 2**64, -(2**64), 10**40,
]  # fmt: skip
ODD_LEAVES = st.one_of(
    st.sampled_from(ODD_STRINGS),
    st.text(alphabet=EDGE_CHARS + '"\\\x01', max_size=12),
    st.text(max_size=8),
    st.sampled_from([True, False, None, 0, 1, -1]),
    st.sampled_from(ODD_NUMBERS),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(),
)


def nested(depth: int, kind: str, leaf: Any) -> Any:
    """``leaf`` inside ``depth`` containers: arrays, objects, or both in turn."""
    value = leaf
    for level in range(depth):
        in_array = kind == "array" or (kind == "mixed" and level % 2 == 1)
        value = [value] if in_array else {"iD": value}
    return value


DEPTHS = st.sampled_from([1, 2, 60, 61, 62, 63, 64, 65, 66, 70, 128, 255, 256, 300])


@st.composite
def odd_values(draw: st.DrawFn) -> Any:
    """What no example holds: odd leaves, deep nesting, wide containers."""
    shape = draw(st.sampled_from(["leaf", "leaf", "deep", "wide_object", "wide_array"]))
    if shape == "deep":
        kind = draw(st.sampled_from(["array", "object", "mixed"]))
        return nested(draw(DEPTHS), kind, draw(st.sampled_from([[], {}, None, 1, "x", 1.5, 2**64])))
    if shape == "wide_object":
        width = draw(st.sampled_from([100, 1000]))
        leaf = draw(ODD_LEAVES)
        return {f"k{i:05d}": leaf for i in range(width)}
    if shape == "wide_array":
        return [draw(ODD_LEAVES)] * draw(st.sampled_from([100, 1000, 5000]))
    return draw(ODD_LEAVES)


@st.composite
def odd_documents(draw: st.DrawFn) -> tuple[str, Any]:
    """A mutated realistic document, then odd values, keys and nesting anywhere in it."""
    doc_type, doc = draw(mutated_documents())
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(list(paths(doc))))
        target = get(doc, path)
        if type(target) is dict and draw(st.booleans()):
            target[draw(st.sampled_from(ODD_KEYS))] = draw(odd_values())
        elif type(target) is str and draw(st.booleans()):
            where = draw(st.integers(0, len(target)))
            new = target[:where] + draw(st.sampled_from(ODD_STRINGS)) + target[where:]
            if path:
                get(doc, path[:-1])[path[-1]] = new
        elif path:
            get(doc, path[:-1])[path[-1]] = draw(odd_values())
    return doc_type, doc


@DOCUMENTS
@given(mutated_documents())
def test_mutated_documents_get_one_verdict(case: tuple[str, Any]) -> None:
    doc_type, doc = case
    assert_one_verdict(doc_type, doc)


@DOCUMENTS
@given(odd_documents())
def test_odd_documents_get_one_verdict(case: tuple[str, Any]) -> None:
    doc_type, doc = case
    assert_one_verdict(doc_type, doc)
    other = sorted(DOC_TYPES)[len(json.dumps(doc, default=str)) % len(DOC_TYPES)]
    assert_one_verdict(other, doc)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(BASES),
    st.integers(MAX_NESTING_DEPTH - 4, MAX_NESTING_DEPTH + 4),
    st.sampled_from(["array", "object", "mixed"]),
    st.sampled_from([[], {}, None, 7, "x"]),
    st.sampled_from(["x-nested", "salt", "NAMED"]),
)
def test_nesting_around_the_limit_gets_one_verdict(
    base: tuple[str, Any], depth: int, kind: str, leaf: Any, where: str
) -> None:
    doc_type, doc = base
    doc = copy.deepcopy(doc)
    key = next(iter(doc)) if where == "NAMED" else where
    doc[key] = nested(depth, kind, leaf)
    assert_one_verdict(doc_type, doc)


def test_mutations_reach_every_kind_of_verdict() -> None:
    # The properties above mean something only if their documents are accepted,
    # refused by the JSON rules and refused by the schema; draw a fixed sample and count.
    seen = {"accepted": 0, "doc.json": 0, "schema": 0}

    @settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(odd_documents())
    def sample(case: tuple[str, Any]) -> None:
        doc_type, doc = case
        found = verdict(lambda: validate_document(doc_type, doc))
        seen["accepted" if found is None else "doc.json" if found[0] == "doc.json" else "schema"] += 1

    sample()
    assert min(seen.values()) >= 20, seen


# --- bytes spoiled after writing -------------------------------------------------------------


def _spoil_whitespace(data: bytes, at: int, draw: st.DrawFn) -> bytes:
    return data[:at] + draw(st.sampled_from([b" ", b"\n", b"\t", b"\r\n"])) + data[at:]


def _spoil_flip(data: bytes, at: int, draw: st.DrawFn) -> bytes:
    return data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]


def _spoil_truncate(data: bytes, at: int, draw: st.DrawFn) -> bytes:
    return data[:at]


def _spoil_duplicate(data: bytes, at: int, draw: st.DrawFn) -> bytes:
    # Repeat one member of the first object at or after `at`, next to itself.
    start = data.find(b'{"', at)
    end = data.find(b',"', start)
    if start < 0 or end < 0:
        return data
    member = data[start + 1 : end]
    return data[: start + 1] + member + b"," + data[start + 1 :]


def _spoil_escape(data: bytes, at: int, draw: st.DrawFn) -> bytes:
    # One character written another way JSON allows: \u escapes, an escaped solidus.
    rest = data[at:]
    for plain, escaped in ((b"/", b"\\/"), (b"A", b"\\u0041"), (b"\\n", b"\\u000a"), (b"\\u001f", b"\\u001F")):
        if plain in rest:
            return data[:at] + rest.replace(plain, escaped, 1)
    return data


def _spoil_number(data: bytes, at: int, draw: st.DrawFn) -> bytes:
    # An integer written as a float, with a sign or a leading zero, or out of range.
    for digit in b"0123456789":
        where = data.find(bytes([digit]), at)
        if where >= 0 and data[where - 1 : where] in (b":", b",", b"["):
            written = draw(st.sampled_from([b"1.0", b"1e2", b"-0", b"01", b"9007199254740992", b"1E0", b"+1"]))
            return data[:where] + written + data[where + 1 :]
    return data


SPOILERS: list[Callable[[bytes, int, st.DrawFn], bytes]] = [
    _spoil_whitespace,
    _spoil_flip,
    _spoil_truncate,
    _spoil_duplicate,
    _spoil_escape,
    _spoil_number,
]


@st.composite
def spoiled_bytes(draw: st.DrawFn) -> tuple[str, bytes]:
    doc_type, doc = draw(odd_documents())
    data = as_bytes(doc)
    for _ in range(draw(st.integers(1, 2))):
        spoil = draw(st.sampled_from(SPOILERS))
        data = spoil(data, draw(st.integers(0, max(len(data) - 1, 0))), draw)
    return doc_type, data


@DOCUMENTS
@given(spoiled_bytes())
def test_spoiled_bytes_are_refused_by_name_or_are_a_document(case: tuple[str, bytes]) -> None:
    doc_type, data = case
    try:
        number = validate_document_bytes(doc_type, data)
    except DocumentError:
        return
    # Accepted: the bytes are exactly the RFC 8785 form of a valid document.
    value = json.loads(data)
    assert jcs(value) == data
    validate_document(doc_type, value)
    assert number == document_number(doc_type, value)


def test_duplicate_keys_are_refused_as_json() -> None:
    _, doc = BASES[0]
    data = jcs(doc)
    doubled = data.replace(b'{"iD":', b'{"iD":"X","iD":', 1)
    assert doubled != data
    try:
        validate_document_bytes("certificate_of_origin", doubled)
    except DocumentError as exc:
        assert exc.code == "doc.json"
    else:
        raise AssertionError("duplicate keys accepted")


def test_values_that_cannot_be_written_are_refused_as_json() -> None:
    for value in ({"salt": "\ud800"}, {"salt": float("nan")}, {"salt": float("inf")}):
        doc = {**copy.deepcopy(BASES[0][1]), **value}
        found = verdict(functools.partial(validate_document, BASES[0][0], doc))
        assert found is not None and found[0] == "doc.json"
