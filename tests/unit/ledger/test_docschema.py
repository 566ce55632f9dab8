"""ledger._docschema: the compiled schema walk's robustness and its spec format."""

from __future__ import annotations

import copy
import gc
import importlib
import json
import sys
import tracemalloc
import weakref
from pathlib import Path
from typing import Any

import pytest

from ledger import documents
from ledger.documents import validate_document
from ledger.errors import DocumentSchemaError

_docschema = importlib.import_module("ledger._docschema")
Schema = _docschema.Schema

EXAMPLES = Path(__file__).resolve().parents[3] / "scripts" / "examples"


def example(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


def coo() -> Any:
    return example("coo_preferential.json")


def nested_lists(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def nested_dicts(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"iD": value, "name": value}
    return value


# --- any JSON value, any depth -------------------------------------------------------


@pytest.mark.parametrize("make", [nested_lists, nested_dicts])
def test_deep_nesting_anywhere_is_answered_without_recursing(make: Any) -> None:
    # The walk descends only where the spec does: a value nested 200,000 deep is one
    # wrong type where the spec wants an object or a string, and ignored where unnamed.
    deep = make(200_000)
    doc = coo()
    doc["x-extension"] = deep
    assert documents._COO_PREFERENTIAL.is_valid(doc) is True
    doc["issuer"] = deep
    assert documents._COO_PREFERENTIAL.is_valid(doc) is False
    doc = coo()
    doc["supplyChainConsignment"]["includedConsignmentItems"].append(deep)
    assert documents._COO_PREFERENTIAL.is_valid(doc) is False
    doc = coo()
    doc["iD"] = deep
    with pytest.raises(DocumentSchemaError):
        validate_document("certificate_of_origin", doc)


@pytest.mark.parametrize(
    "value",
    [None, True, 0, 1.5, "", "text", [], [{}], {}, {1: "x"}, {None: 1, (1, 2): 2}, b"{}", object()],
)
def test_any_value_as_a_document(value: Any) -> None:
    for schema in (documents._COO_PREFERENTIAL, documents._COMMERCIAL_INVOICE, documents._BILL_OF_LADING):
        assert schema.is_valid(value) is schema.is_valid_python(value) is False


def test_non_str_keys_are_ignored_like_any_unnamed_member() -> None:
    doc = coo()
    doc[1] = "one"
    doc[None] = {"iD": 3}
    doc[(1, 2)] = []
    assert (
        documents._COO_PREFERENTIAL.is_valid(doc) is documents._COO_PREFERENTIAL.is_valid_python(doc) is True
    )


class KeyWithBadEquality:
    """Hashes as "iD" does and raises when compared: a dict lookup of "iD" meets it."""

    def __hash__(self) -> int:
        return hash("iD")

    def __eq__(self, other: object) -> bool:
        raise ArithmeticError("compared")


def test_an_exception_from_a_key_comparison_propagates_as_in_python() -> None:
    doc = {KeyWithBadEquality(): 1}
    coo_schema = documents._COO_PREFERENTIAL  # its first field is "iD"
    with pytest.raises(ArithmeticError):
        coo_schema.is_valid_python(doc)
    with pytest.raises(ArithmeticError):
        coo_schema.is_valid(doc)
    other = documents._CERTIFICATE_OF_NON_MANIPULATION  # its first field is "id": no comparison
    assert other.is_valid(doc) is other.is_valid_python(doc) is False


def test_subclasses_of_json_types_are_refused_as_in_python() -> None:
    class Mapping(dict):  # type: ignore[type-arg]
        pass

    class Text(str):
        pass

    doc = coo()
    assert documents._COO_PREFERENTIAL.is_valid(Mapping(doc)) is False
    doc["name"] = Text("Certificate")
    assert (
        documents._COO_PREFERENTIAL.is_valid(doc) is documents._COO_PREFERENTIAL.is_valid_python(doc) is False
    )


# --- references and memory -------------------------------------------------------------


def objects_in(value: Any) -> list[Any]:
    """Every container and every multi-character string of a JSON value (not shared singletons)."""
    found: list[Any] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) in (dict, list) or (type(item) is str and len(item) > 1):
            found.append(item)
        if type(item) is dict:
            stack.extend(item.values())
        elif type(item) is list:
            stack.extend(item)
    return found


def broken_docs() -> list[tuple[documents._Schema, Any]]:
    """Valid and invalid documents, failing early, late and in a cross-field rule."""
    late = coo()
    late["firstSignatoryAuthentication"]["actualDateTime"] = "2026-02-30T00:00:00Z"
    deep = coo()
    deep["supplyChainConsignment"]["includedConsignmentItems"][0]["tradeLineItems"][0]["sequenceNumber"] = 0
    invoice = example("invoice.json")
    nameless = copy.deepcopy(invoice)
    nameless["billTo"] = {"countryCode": "SG"}
    return [
        (documents._COO_PREFERENTIAL, coo()),
        (documents._COO_PREFERENTIAL, late),
        (documents._COO_PREFERENTIAL, deep),
        (documents._COMMERCIAL_INVOICE, invoice),
        (documents._COMMERCIAL_INVOICE, nameless),
    ]


def test_validation_leaves_reference_counts_unchanged() -> None:
    for schema, doc in broken_docs():
        objects = objects_in(doc)
        before = [sys.getrefcount(item) for item in objects]
        verdict = schema.is_valid_python(doc)
        for _ in range(2_000):
            assert schema.is_valid(doc) is verdict
        assert [sys.getrefcount(item) for item in objects] == before


def test_many_validations_and_schemas_do_not_grow_memory() -> None:
    cases = broken_docs()
    spec = documents._native_spec(documents._COO_PREFERENTIAL.node)

    def churn() -> None:
        for schema, doc in cases:
            schema.is_valid(doc)
        Schema(spec).is_valid(cases[0][1])

    for _ in range(200):  # warm caches (method caches, string hashes, free lists)
        churn()
    gc.collect()
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        for _ in range(3_000):
            churn()
        gc.collect()
        end, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert end - start < 64 * 1024


def test_a_schema_in_a_reference_cycle_is_collected() -> None:
    class Marker:
        pass

    holder: list[Any] = [Marker()]
    marker = weakref.ref(holder[0])
    holder.append(Schema(("object", (), lambda value, holder=holder: bool(holder))))
    assert holder[1].is_valid({}) is True
    del holder
    gc.collect()
    assert marker() is None


# --- the spec ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        None,
        (),
        ("leaf",),
        ("leaf", "no such kind", None),
        ("leaf", "in_set", ["EG"]),
        ("leaf", "locode", None),
        ("leaf", "int_range", (1,)),
        ("leaf", "int_range", (1, 2**64)),
        ("leaf", "python", 3),
        ("object", (("iD", True),), None),
        ("object", ((1, True, ("leaf", "text", None)),), None),
        ("object", (), 3),
        ("array", "1", ("leaf", "text", None)),
        ("array", 0),
        ("text_or_object", ("leaf", "text", None)),
        ("tree",),
    ],
)
def test_malformed_specs_are_refused(spec: Any) -> None:
    with pytest.raises((ValueError, TypeError, OverflowError)):
        Schema(spec)


def test_a_spec_nested_too_deeply_is_refused() -> None:
    spec: tuple[Any, ...] = ("leaf", "text", None)
    for _ in range(100):
        spec = ("array", 0, spec)
    with pytest.raises(ValueError, match="too deeply"):
        Schema(spec)


def test_python_leaf_for_a_rule_without_a_c_twin() -> None:
    # A leaf rule missing from _NATIVE_LEAVES still works: the walk calls its fast
    # expression, and its exceptions propagate.
    def validate_even(value: Any) -> None:
        if type(value) is not int or value % 2:
            raise documents._type_error("an even integer", value)

    leaf = documents._Leaf(validate_even, "(type({x}) is int and {x} % 2 == 0)")
    node = documents._object(documents._Field("n", leaf, True, documents._MISSING))
    spec = documents._native_spec(node)
    assert spec[1][0][2][:2] == ("leaf", "python")
    schema = documents._Schema(node)
    for value in ({"n": 2}, {"n": 3}, {"n": "2"}, {"n": True}, {}, {"n": None}):
        assert schema.is_valid(value) is schema.is_valid_python(value)
    with pytest.raises(ZeroDivisionError):
        Schema(("leaf", "python", lambda value: 1 / 0)).is_valid(0)


def test_a_rule_exception_propagates() -> None:
    def rule(value: Any) -> bool:
        raise KeyError("rule")

    with pytest.raises(KeyError):
        Schema(("object", (), rule)).is_valid({})
    assert Schema(("object", (), rule)).is_valid([]) is False  # not an object: the rule never runs
