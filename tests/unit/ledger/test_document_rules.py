"""ledger.documents.rules: the rule language, its interpreter, and the declarations built with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ledger.documents import DOCUMENT_TYPES, get_document_type, validate_document
from ledger.documents.certificate_of_origin import CERTIFICATE_OF_ORIGIN, PREFERENTIAL
from ledger.documents.rules import (
    COUNTRY,
    NUMBER,
    TEXT,
    AnyOf,
    DocumentType,
    Leaf,
    Object,
    RuleError,
    array,
    compute_path,
    field,
    obj,
    optional,
    text_or_object,
    when,
)
from ledger.errors import CountryCodeError, DocumentSchemaError

EXAMPLES = Path(__file__).resolve().parents[3] / "scripts" / "examples"


def example(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


def fault_of(rule: Object, value: Any) -> RuleError | None:
    try:
        rule.check(value, value)
    except RuleError as fault:
        return fault
    return None


# --- the interpreter -------------------------------------------------------------------


def nested_lists(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def test_the_walk_follows_the_schema_only() -> None:
    # Members no schema names are never visited: 200,000 levels there cost nothing, and
    # where the schema wants an object or a string such a value is one wrong type.
    schema = CERTIFICATE_OF_ORIGIN.schema
    deep = nested_lists(200_000)
    doc = example("coo_preferential.json")
    doc["x-extension"] = deep
    assert fault_of(schema, doc) is None
    doc["issuer"] = deep
    fault = fault_of(schema, doc)
    assert fault is not None and fault.error is DocumentSchemaError
    assert fault.message == "expected an object, got an array" and compute_path(fault.parts) == "issuer"


def test_a_fault_names_its_path_innermost_first_while_unwinding() -> None:
    doc = example("coo_preferential.json")
    doc["supplyChainConsignment"]["includedConsignmentItems"][1]["tradeLineItems"][0]["tradeProduct"][
        "originCountry"
    ]["code"] = "XK"
    fault = fault_of(CERTIFICATE_OF_ORIGIN.schema, doc)
    assert fault is not None and fault.error is CountryCodeError
    assert fault.parts == ["code", "originCountry", "tradeProduct", 0, "tradeLineItems", 1,
                           "includedConsignmentItems", "supplyChainConsignment"]  # fmt: skip
    assert compute_path(fault.parts) == (
        "supplyChainConsignment.includedConsignmentItems[1].tradeLineItems[0].tradeProduct.originCountry.code"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "expected an object, got null"),
        (True, "expected an object, got boolean true"),
        (0, "expected an object, got integer 0"),
        ("", "expected an object, got an empty string"),
        ("x" * 200, 'expected an object, got string "' + "x" * 77 + '..."'),
        ([], "expected an object, got an array"),
    ],
)
def test_any_json_value_as_a_document(value: Any, message: str) -> None:
    for document_type in DOCUMENT_TYPES.values():
        fault = fault_of(document_type.schema, value)
        assert fault is not None and fault.message == message and fault.parts == []


def test_exact_json_types_only() -> None:
    class Text(str):
        pass

    class Mapping(dict):  # type: ignore[type-arg]
        pass

    doc = example("coo_preferential.json")
    assert fault_of(CERTIFICATE_OF_ORIGIN.schema, Mapping(doc)) is not None
    doc["name"] = Text("Certificate")
    assert fault_of(CERTIFICATE_OF_ORIGIN.schema, doc) is not None
    doc = example("coo_preferential.json")
    doc["supplyChainConsignment"]["includedConsignmentItems"][0]["tradeLineItems"][0]["sequenceNumber"] = True
    fault = fault_of(CERTIFICATE_OF_ORIGIN.schema, doc)
    assert fault is not None and fault.message == "expected an integer sequence number from 1, got boolean true"


@pytest.mark.parametrize(
    ("text", "accepted"),
    [("x", True), (" x ", True), ("", False), (" ", False), ("\u3000\n\t", False), ("\u200b", True), ("\x1c", False)],
)
def test_text_is_whatever_is_not_only_whitespace(text: str, accepted: bool) -> None:
    assert (fault_of(obj(field("a", TEXT)), {"a": text}) is None) is accepted
    assert accepted is (text != "" and not text.isspace())


def test_an_optional_field_may_be_null_and_a_required_one_may_not() -> None:
    rule = obj(field("a", TEXT), optional("b", COUNTRY))
    assert fault_of(rule, {"a": "x", "b": None}) is None
    fault = fault_of(rule, {"a": None})
    assert fault is not None and fault.message == "expected a non-empty string, got null"
    fault = fault_of(rule, {"b": "EG"})
    assert fault is not None and fault.message == "required field is missing" and fault.parts == ["a"]


def test_required_when_reads_the_document_and_names_the_condition() -> None:
    inner = obj(field("fta", TEXT, required_when=PREFERENTIAL))
    rule = obj(field("isPreferential", Leaf("a boolean", bool, lambda v: True)), optional("inner", inner))
    assert fault_of(rule, {"isPreferential": False, "inner": {}}) is None
    fault = fault_of(rule, {"isPreferential": True, "inner": {}})
    assert fault is not None and fault.message == "required when isPreferential is true"
    assert fault.parts == ["fta", "inner"]
    # 1 equals True in Python, but is not JSON true.
    assert not PREFERENTIAL.holds({"isPreferential": 1})
    assert not PREFERENTIAL.holds({"isPreferential": "true"}) and not PREFERENTIAL.holds([])


def test_a_condition_takes_one_json_type() -> None:
    with pytest.raises(ValueError, match="one JSON type"):
        when("isPreferential", True, 1)
    condition = when("typeCode", "a", "b")
    assert condition.holds({"typeCode": "a"}) and not condition.holds({"typeCode": ["a"]})


def test_any_of() -> None:
    rule = obj(optional("name", TEXT), optional("company", obj(field("name", TEXT))),
               any_of=AnyOf(("name", "company"), "a name or a company"))  # fmt: skip
    assert fault_of(rule, {"name": "A"}) is None and fault_of(rule, {"company": {"name": "B"}}) is None
    fault = fault_of(rule, {"name": None})
    assert fault is not None and fault.message == "expected a name or a company, got neither" and fault.parts == []


def test_arrays_name_the_failing_index() -> None:
    rule = obj(field("items", array(COUNTRY, min_items=2)))
    fault = fault_of(rule, {"items": ["EG"]})
    assert fault is not None and fault.message == "expected at least 2 item(s), got 1"
    fault = fault_of(rule, {"items": ["EG", "AU", "eg"]})
    assert fault is not None and fault.error is CountryCodeError and compute_path(fault.parts) == "items[2]"


def test_text_or_object() -> None:
    rule = obj(field("port", text_or_object(obj(field("code", COUNTRY)))))
    assert fault_of(rule, {"port": "Ravenna"}) is None and fault_of(rule, {"port": {"code": "IT"}}) is None
    fault = fault_of(rule, {"port": " "})
    assert fault is not None and fault.message == 'expected a non-empty string or an object, got string " "'
    fault = fault_of(rule, {"port": {"code": "XX"}})
    assert fault is not None and compute_path(fault.parts) == "port.code"


def test_a_field_declared_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="declared twice"):
        obj(field("a", TEXT), optional("a", TEXT))


def test_a_document_type_declares_its_number_as_a_required_number() -> None:
    with pytest.raises(ValueError, match="required NUMBER"):
        DocumentType("x", "id", obj(field("id", TEXT)))
    with pytest.raises(ValueError, match="required NUMBER"):
        DocumentType("x", "id", obj(optional("id", NUMBER)))
    for name, document_type in DOCUMENT_TYPES.items():
        assert document_type.name == name and get_document_type(name) is document_type


def test_an_exception_from_a_key_comparison_is_not_swallowed() -> None:
    class KeyWithBadEquality:
        """Hashes as "iD" does and raises when compared: a dict lookup of "iD" meets it."""

        def __hash__(self) -> int:
            return hash("iD")

        def __eq__(self, other: object) -> bool:
            raise ArithmeticError("compared")

    with pytest.raises(ArithmeticError):
        CERTIFICATE_OF_ORIGIN.check({KeyWithBadEquality(): 1})


def test_validate_document_raises_the_public_error_without_chaining() -> None:
    doc = example("invoice.json")
    doc["billTo"] = {"countryCode": "SG"}
    with pytest.raises(DocumentSchemaError) as info:
        validate_document("commercial_invoice", doc)
    assert info.value.path == "billTo" and info.value.message == "expected a name or a company, got neither"
    assert info.value.__cause__ is None and info.value.__suppress_context__
