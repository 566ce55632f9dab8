"""The compiled schema walk (ledger._docschema) against its Python specification.

Three verdicts must agree on every value: the compiled walk (``_Schema.is_valid``),
the generated Python predicate (``_Schema.is_valid_python``) and the reference rule
tree (``node.check``). Leaf by leaf on strings built to sit next to the rule's edges
(unicode digits and spaces, leap days, hour 24, offsets, fractions, signs, lengths
off by one), then schema by schema on the realistic documents mutated at random paths.
"""

from __future__ import annotations

import copy
import importlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import documents
from ledger.codes import COUNTRY_CODES, CURRENCY_CODES
from ledger.testkit import EXAMPLE_DOC_TYPES, TRADETRUST_SAMPLE_DOC_TYPES

_docschema = importlib.import_module("ledger._docschema")

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO.parent / "shared" / "samples"
EXAMPLES = REPO / "scripts" / "examples"

LEAVES = settings(max_examples=200, deadline=None)
DOCUMENTS = settings(
    max_examples=1200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)

Check = Callable[[Any], None]


def reference_passes(check: Check, value: Any) -> bool:
    try:
        check(value)
    except documents._RuleError:
        return False
    return True


# --- every leaf kind ---------------------------------------------------------------


class Text(str):
    """A str subclass: never a JSON value, and refused where the rules say ``type(x) is str``."""


LEAF_CHECKS: list[Check] = list(documents._NATIVE_LEAVES)
NATIVE_LEAF = {
    check: _docschema.Schema(("leaf", *documents._NATIVE_LEAVES[check])).is_valid for check in LEAF_CHECKS
}
PYTHON_LEAF = {
    check: documents._leaf_predicate(documents._Leaf(check, documents._FAST_LEAVES[check]))
    for check in LEAF_CHECKS
}

# Characters next to the rules' edges: unicode digits, whitespace that is and is not
# str.isspace, letters on either side of A-Z, the separators, one of each string width.
EDGE_CHARS = (
    "0123456789.-+:TtZz AEGSKLUXYaeuz\u00a0\u2003\u3000\u200b\ufeff\x1c\x1f\x85\t\n\r\x0b\x0c"
    "\u0663\uff13\u00b2\u00e9\U0001f600\ud800!~\x7f\x00@[`{/_,"
)

# fmt: off
SEEDS: dict[Check, list[str]] = {
    documents._validate_string: ["", "x"],
    documents._validate_text: [
        "x", " x ", "\u00a0", " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\u2003\u3000", "\u200b", "\U0001f600",
    ],
    documents._validate_bool: ["true"],
    documents._validate_sequence_number: ["1"],
    documents._validate_document_number: [
        "CO-2026-000123", "!", "~" * 128, "a" * 129, "a b", "a\x7f", "\u00e9",
    ],
    documents._validate_country: ["EG", "AU", "ZW", "eg", "EU", "UK", "XK", "E", "EGY", "E\u0047"],
    documents._validate_currency: ["USD", "XCG", "usd", "HRK", "EUR", "US", "USDX"],
    documents._validate_hs_code: [
        "2204.21", "220421", "2204.21.00", "22042100", "2204.2100", "2204.21.00.00.00", "2204.21.0000",
        "2204.21.00.0000", "2204.21.0000.00", "2204.21.000000", "2204.21.00000000", "2204.21.000000000",
        "12345678901234", "123456789012345", "12345", "2204.21.", "2204..21", "2204.2", ".220421",
        "2204.21.1", "2204.211", "2204.21.00.00.00.00", "2204.21.0.0",
    ],
    documents._validate_locode: [
        "AUADL", "EGSOK", "unece.un.org:locode:EGSOK", "unece.un.org:locode:AUADL", "XXABC", "EG2S9", "EGS01",
        "UNECE.UN.ORG:LOCODE:AUADL", "auadl", "unece.un.org:locode:", "unece.un.org:locode:AUAD",
    ],
    documents._validate_datetime: [
        "2026-12-02T09:15:00+02:00", "2024-02-29T23:59:60.123456Z", "2023-02-29t00:00:00z",
        "2000-02-29T24:00:00Z", "1900-02-29T00:00:00Z", "0000-02-29T00:00:00-23:59", "2026-04-31T00:00:00Z",
        "2026-12-31T23:59:59.Z", "2026-12-31T23:59:59+24:00", "2026-12-31T23:59:59+02:60",
        "2026-12-31T23:59:59+0200", "2026-12-31 23:59:59Z", "2026-12-31T23:59:59", "2026-12-31",
    ],
    documents._validate_date: [
        "2024-02-29", "2023-02-29", "2000-02-29", "1900-02-29", "2026-04-31", "2026-13-01", "2026-00-10",
        "2026-1-01", "20260101", "2026-12-02T09:15:00+02:00", "2026-12-02Z",
    ],
    documents._validate_decimal: [
        "-0", "1250.50", "+1", ".5", "5.", "00012", "-", "1e5", "1.2.3", "--1", "- 1",
    ],
    documents._validate_non_negative_decimal: ["0", "1250.50", "-1", ".5", "5.", "00012", "1,5"],
    documents._validate_procedure_code: ["1000", "0014", "100", "10000", "\u0661\u0660\u0660\u0660"],
    documents._validate_mode_code: ["1", "0", "9", "10", "", "\u0663", "a"],
    documents._validate_declaration_type_code: [
        *sorted(documents.DECLARATION_TYPE_CODES), "Export", "export ",
    ],
}
# fmt: on
ALL_SEEDS = sorted({seed for seeds in SEEDS.values() for seed in seeds})


def test_every_native_leaf_has_seeds() -> None:
    assert set(SEEDS) == set(STRUCTURED) == set(documents._NATIVE_LEAVES) == set(documents._FAST_LEAVES)


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


@st.composite
def datetimes(draw: st.DrawFn) -> str:
    """Date-times with every field at or near its bounds (and the odd invalid separator)."""
    year = draw(st.sampled_from([0, 4, 100, 1900, 2000, 2023, 2024, 2100, 2400, 9999]) | st.integers(0, 9999))
    month, day = draw(
        st.sampled_from(
            [(2, 28), (2, 29), (2, 29), (2, 30), (4, 30), (4, 31), (12, 31), (1, 32), (0, 10), (13, 1)]
        )
        | st.tuples(st.integers(0, 13), st.integers(0, 32))
    )
    hour, minute, second = draw(
        st.sampled_from([(23, 59, 60), (24, 0, 0), (0, 60, 0), (0, 0, 61), (9, 15, 0)])
        | st.tuples(st.integers(0, 25), st.integers(0, 61), st.integers(0, 61))
    )
    fraction = draw(st.sampled_from(["", "", ".", ".5", ".123456789", ".\u0663", ".5.5", ".+"]))
    separator = draw(st.sampled_from("TTt _"))
    offset = draw(
        st.sampled_from(
            ["Z", "z", "", "+00:00", "-23:59", "+24:00", "+02:60", "+0200", "+2:00", "Z ", "ZZ", "+02:00Z"]
        )
        | st.builds(
            lambda sign, h, m: f"{sign}{h:02d}:{m:02d}",
            st.sampled_from("+-\u2212"),
            st.integers(0, 25),
            st.integers(0, 61),
        )
    )
    date = f"{year:04d}-{month:02d}-{day:02d}"
    if draw(st.integers(0, 3)) == 0:
        return date + draw(st.sampled_from(["", "", "Z", "T", " ", "\n"]))
    return f"{date}{separator}{hour:02d}:{minute:02d}:{second:02d}{fraction}{offset}"


@st.composite
def hs_codes(draw: st.DrawFn) -> str:
    """``dddd.dd`` or ``dddddd`` followed by zero to four groups of 0 to 5 digits, dotted or not."""
    head = draw(st.sampled_from(["2204.21", "220421", "2204.2", "220.21", "2204", "22042"]))
    groups = draw(st.lists(st.tuples(st.sampled_from(["", ".", ".", ".."]), st.integers(0, 5)), max_size=4))
    return head + "".join(dot + "7" * count for dot, count in groups)


@st.composite
def locodes(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(["", "", "unece.un.org:locode:", "unece.un.org:locode", "urn:"]))
    country = draw(
        st.sampled_from(sorted(COUNTRY_CODES)) | st.text(alphabet="AEGKUXZa", min_size=2, max_size=2)
    )
    place = draw(
        st.text(alphabet="AZ29180a", min_size=3, max_size=3)
        | st.text(alphabet="AZ2918\u0663", min_size=2, max_size=4)
    )
    return prefix + country + place


# Every character str.isspace() accepts, its neighbours, and a few that look blank.
SPACES = [chr(c) for c in range(0x110000) if chr(c).isspace()]
NEAR_SPACES = sorted({chr(ord(c) + d) for c in SPACES for d in (-1, 1)} | {"\u200b", "\ufeff", "\u180e"})

STRUCTURED: dict[Check, st.SearchStrategy[str]] = {
    documents._validate_string: st.text(max_size=3),
    documents._validate_text: st.text(alphabet=SPACES + NEAR_SPACES + ["x"], max_size=4)
    | st.text(alphabet=SPACES, max_size=3),
    documents._validate_bool: st.sampled_from(["true", "True", ""]),
    documents._validate_sequence_number: st.sampled_from(["1", "2"]),
    documents._validate_document_number: st.text(alphabet="!~a \x7f\u00e9\u0663", max_size=6)
    | st.builds(
        lambda n, c: "x" * n + c, st.integers(125, 130), st.sampled_from(["", "!", "~", " ", "\x7f"])
    ),
    documents._validate_country: st.sampled_from(sorted(COUNTRY_CODES))
    | st.text(alphabet="AEGKUZa", max_size=3),
    documents._validate_currency: st.sampled_from(sorted(CURRENCY_CODES))
    | st.text(alphabet="DESUXa", max_size=4),
    documents._validate_hs_code: hs_codes() | st.text(alphabet="0123456789.", min_size=5, max_size=22),
    documents._validate_locode: locodes(),
    documents._validate_datetime: datetimes(),
    documents._validate_date: datetimes(),
    documents._validate_decimal: st.text(alphabet="-+0123.5e\u0663 ", max_size=8),
    documents._validate_non_negative_decimal: st.text(alphabet="-+0123.5e\u0663 ", max_size=8),
    documents._validate_procedure_code: st.text(alphabet="0159\u0663a ", max_size=6),
    documents._validate_mode_code: st.text(alphabet="0159\u0663a ", max_size=3),
    documents._validate_declaration_type_code: st.sampled_from(sorted(documents.DECLARATION_TYPE_CODES)),
}


class Mapping(dict):  # type: ignore[type-arg]
    """A dict subclass: never a JSON value, and refused where the rules say ``type(x) is dict``."""


class Items(list):  # type: ignore[type-arg]
    """A list subclass, likewise refused."""


NON_STRINGS = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, 1, 2, -1, 2**53 - 1, 2**53, -(2**53), 2**63 - 1, 2**63, -(2**63) - 1, 2**64]),
    st.integers(),
    st.floats(),
    st.lists(st.text(max_size=3), max_size=2),
    st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
    st.builds(Text, st.sampled_from(ALL_SEEDS)),
    st.builds(Mapping),
    st.builds(Items),
    st.binary(max_size=4),
)


def leaf_values(check: Check) -> st.SearchStrategy[Any]:
    """Mostly values built for this leaf's edges; the rest anything at all."""
    targeted = STRUCTURED[check] | near_miss(SEEDS[check])
    anything = near_miss(ALL_SEEDS) | st.text(alphabet=EDGE_CHARS, max_size=30) | NON_STRINGS | st.text()
    return st.one_of(targeted, targeted, targeted, anything)


@pytest.mark.parametrize("check", LEAF_CHECKS, ids=[check.__name__ for check in LEAF_CHECKS])
@LEAVES
@given(data=st.data())
def test_leaf_agrees_with_python(check: Check, data: st.DataObject) -> None:
    value = data.draw(leaf_values(check))
    native = NATIVE_LEAF[check](value)
    assert native is PYTHON_LEAF[check](value), repr(value)
    assert native is reference_passes(check, value), repr(value)


TEXT_OR_OBJECT = documents._Schema(documents._text_or_object(documents._object()))


@LEAVES
@given(st.text(alphabet=EDGE_CHARS, max_size=6) | NON_STRINGS)
def test_text_or_object_agrees_with_python(value: Any) -> None:
    schema = TEXT_OR_OBJECT
    assert (
        schema.is_valid(value) is schema.is_valid_python(value) is reference_passes(schema.node.check, value)
    )


@pytest.mark.parametrize("check", LEAF_CHECKS, ids=[check.__name__ for check in LEAF_CHECKS])
def test_leaf_seeds_and_all_of_one_string_width(check: Check) -> None:
    # Every seed as is, and rewritten in each of the three string storage widths.
    for seed in SEEDS[check] + ALL_SEEDS:
        for value in (seed, seed + "\u00e9", seed + "\u0663", seed + "\U0001f600", "\u0663" + seed):
            assert NATIVE_LEAF[check](value) is PYTHON_LEAF[check](value) is reference_passes(check, value), (
                value
            )


# --- every schema, on realistic documents mutated at random paths -----------------------

EXAMPLE_TYPES = EXAMPLE_DOC_TYPES
TRADETRUST_SAMPLES = TRADETRUST_SAMPLE_DOC_TYPES
BASES: list[tuple[str, Any]] = [
    *(
        (doc_type, json.loads((EXAMPLES / name).read_text("utf-8")))
        for name, doc_type in EXAMPLE_TYPES.items()
    ),
    *(
        (doc_type, json.loads((SAMPLES / name).read_text("utf-8")))
        for name, doc_type in TRADETRUST_SAMPLES.items()
    ),
]

SCHEMAS: dict[str, list[documents._Schema]] = {
    "certificate_of_origin": [documents._COO_PREFERENTIAL, documents._COO_NON_PREFERENTIAL],
    "customs_declaration": [*documents._DECLARATIONS.values(), documents._DECLARATION_BAD_TYPE],
    "commercial_invoice": [documents._COMMERCIAL_INVOICE],
    "bill_of_lading": [documents._BILL_OF_LADING],
    "certificate_of_non_manipulation": [documents._CERTIFICATE_OF_NON_MANIPULATION],
}


def all_schemas() -> list[documents._Schema]:
    return [schema for schemas in SCHEMAS.values() for schema in schemas]


def test_every_schema_is_listed() -> None:
    listed = {id(schema) for schema in all_schemas()}
    found = {id(v) for v in vars(documents).values() if isinstance(v, documents._Schema)}
    found |= {id(v) for v in documents._DECLARATIONS.values()}
    assert found == listed


def test_bases_are_accepted_by_all_three() -> None:
    for doc_type, doc in BASES:
        schema = documents._SELECTORS[doc_type](doc)
        assert schema.is_valid(doc) is schema.is_valid_python(doc) is True
        assert reference_passes(schema.node.check, doc)


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
    st.sampled_from([0, 1, -1, 2**53 - 1, 2**53, 1.0]),
    st.sampled_from(REPLACEMENT_STRINGS),
    # Fresh containers: a later edit may write into them.
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


@DOCUMENTS
@given(mutated_documents())
def test_every_schema_agrees_with_python_and_reference(case: tuple[str, Any]) -> None:
    doc_type, doc = case
    for schema in SCHEMAS[doc_type]:
        native = schema.is_valid(doc)
        assert native is schema.is_valid_python(doc), json.dumps(doc)[:400]
        assert native is reference_passes(schema.node.check, doc), json.dumps(doc)[:400]


def test_mutations_reach_both_verdicts() -> None:
    # The differential test above means something only if its documents are both
    # accepted and rejected; draw a fixed sample and count.
    verdicts = {True: 0, False: 0}

    @settings(
        max_examples=300,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(mutated_documents())
    def sample(case: tuple[str, Any]) -> None:
        doc_type, doc = case
        verdicts[documents._SELECTORS[doc_type](doc).is_valid(doc)] += 1

    sample()
    assert verdicts[True] >= 30 and verdicts[False] >= 30, verdicts


# --- the hot path is the compiled walk ----------------------------------------------


def test_schema_walk_is_compiled() -> None:
    # Every schema must run the compiled walk, with no leaf left to a Python callback:
    # otherwise validation silently falls back to ~45 us per certificate.
    def leaves(spec: tuple[Any, ...]) -> Iterator[tuple[Any, ...]]:
        if spec[0] == "leaf":
            yield spec
        elif spec[0] == "object":
            for _key, _required, child in spec[1]:
                yield from leaves(child)
        elif spec[0] == "array":
            yield from leaves(spec[2])
        else:
            yield from leaves(spec[1])

    for schema in all_schemas():
        assert isinstance(schema.is_valid.__self__, _docschema.Schema)  # type: ignore[attr-defined]
        assert schema.is_valid is not schema.is_valid_python
        assert all(kind != "python" for _, kind, _ in leaves(documents._native_spec(schema.node)))
