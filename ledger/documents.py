"""Trade document schemas and their validation (DESIGN §4a).

This module owns what a registered document must look like for each ``doc_type``,
which field carries its own number (the ``<number>`` of ``doc_id``), and the short
summary shown by the CLI and the web page. The code lists and code predicates live in
:mod:`ledger.codes`; this module applies them to fields and names the failing field.

Public API::

    DOC_TYPES                                   the five document types
    validate_document(doc_type, document)       returns None or raises a DocumentError
    document_number(doc_type, document) -> str  the document's own number
    document_summary(doc_type, document)        a few human-facing facts
    check_canonical_document(doc_type, data)    the number of content bytes shown
                                                canonical and valid in one compiled
                                                pass, or None

A rejected document raises one :class:`~ledger.errors.DocumentError` subclass whose
``path`` names the field (``supplyChainConsignment.includedConsignmentItems[0]
.tradeLineItems[1].tradeProduct.harmonisedTariffCode.classCode``; ``""`` is the
document itself) and whose message states the rule. A missing field, a ``null``
required field or a wrong JSON type is :class:`~ledger.errors.DocumentSchemaError`;
a string of the right type but a bad code raises the code's own class (country,
currency, HS, UN/LOCODE, date-time, decimal, procedure code). Fields a schema does
not name are allowed and kept: trade data carries extensions, TradeTrust envelopes
(``$template``, ``issuers``) and the optional ``salt``. An optional field may be
``null`` (exports from trade systems write absent values that way). Checks run in the
order the fields are listed below, so the first failure reported is deterministic.

Conventions: *text* is a non-empty string that is not only whitespace; a *number*
(the document's own number) is 1 to 128 printable ASCII characters without spaces,
because it becomes part of ``doc_id`` in URLs, CLIs and logs; a *sequence number* is
an integer from 1 to 2^53 - 1; a *country* is an ISO 3166-1 alpha-2 code; a *location*
is ``{iD: UN/LOCODE, name?: text}``; a *date-time* is RFC 3339 with an offset.

certificate_of_origin (UN/CEFACT CertificateOfOrigin JSON, as TradeTrust's CHAFTA
template) -- required unless marked ``?``; ``P`` = required when ``isPreferential``::

    iD: number, issueDateTime: date-time, name: text,
    issuer {iD?: text, name: text, postalAddress {countryCode: country}},
    issueLocation: location, isPreferential: bool, freeTradeAgreement (P): text,
    supplyChainConsignment {
        iD?: text, exportCountry {code: country}, importCountry {code: country},
        exporter {iD?, name, postalAddress {countryCode}}, importer (P) {same},
        loadingBaseportLocation?: location, unloadingBaseportLocation?: location,
        mainCarriageTransportMovement? {iD?: text, usedTransportMeans? {iD?, name?},
                                        departureEvent? {departureDateTime?: date-time}},
        includedConsignmentItems [>= 1] {
            iD?: text, crossBorderRegulatoryProcedure (P) {originCriteriaText (P): text},
            manufacturer? {iD?, name, postalAddress? {countryCode}},
            tradeLineItems [>= 1] {
                sequenceNumber, invoiceReference? {iD: text, formattedIssueDateTime: date-time},
                tradeProduct {iD?: text, description: text,
                              harmonisedTariffCode {classCode: HS code, className?: text},
                              originCountry {code: country}},
                transportPackages? [{iD?: text}]}}},
    firstSignatoryAuthentication {actualDateTime: date-time, statement?: text}

  The CHAFTA sample has no ``statement`` (its signatory block is an image and a time),
  so only ``actualDateTime`` is required there. ``invoiceReference`` is optional
  because origin can be certified before invoicing; when present it is complete.

customs_declaration (WCO Data Model declaration, JSON)::

    declarationId: number, typeCode: one of DECLARATION_TYPE_CODES,
    issueDateTime: date-time, declarant: party, exporter?: party, importer?: party,
    exportCountry: country, destinationCountry: country, customsOffice?: text,
    freeZoneId: text (required for free_zone_entry, free_zone_exit and transfer),
    goodsItems [>= 1] {sequenceNumber, description: text, commodityCode: HS code,
        originCountry: country, grossMassKg?, netMassKg?: non-negative decimal,
        procedureCode: 4 digits, statisticalValue? {amount: non-negative decimal,
        currency: ISO 4217}, supportingDocuments? [{typeCode: text, id: text}]},
    transport? {modeCode: one digit (UN Rec. 19), meansId?: text}
    party = {name: text, iD?: text, countryCode: country}

  ``re_export`` does not require ``freeZoneId``: goods are re-exported from customs
  warehouses, temporary storage and inward processing as well as from zones. A
  re-export out of a zone names the zone (checked as text when present), as the
  example ``decl_re_export.json`` does. A supporting document's ``id`` may be a
  ledger ``doc_id`` such as ``"EG-TEDA/CO-2026-000123"``; whether it is registered is
  the state transition's concern, not the schema's.

Light types (field names from TradeTrust's templates; dates are RFC 3339 full-date
or date-time; codes are checked wherever they are present)::

    commercial_invoice: id: number, date, billFrom {name: text, countryCode?},
        billTo {name?: text, company? {name: text}, countryCode?} (a name or a
        company name), currency?: ISO 4217, exportCountry?, importCountry?,
        billableItems? [{description?: text, hsCode?, quantity?, unitPrice?, amount?:
        decimal}], subtotal?, tax?, taxTotal?, total?: decimal
    bill_of_lading: blNumber: number, shipper {name: text, countryCode?},
        consignee? and notifyParty? {name?: text, countryCode?}, portOfLoading and
        portOfDischarge: text or {location {locationName?: text, UNLocationCode?:
        UN/LOCODE}}, placeOfReceipt?, placeOfDelivery?, vessel?, voyageNo?,
        carrierName?: text, shippedOnBoardDate?: date
    certificate_of_non_manipulation: id: number, recipient {name: text},
        consignment {description: text, originCountryCode?, destinationCountryCode?:
        country, dateOfDischarge?, dateOfDeparture?: date},
        declaration? {name: text, date?}, certification {name: text, date}

  TradeTrust writes countries as free text ("SINGAPORE", "AUSTRALIA"); those fields
  are left unchecked and the ISO-coded fields above sit beside them.

Speed: this runs once per document on the ledger's hot path. Each schema is written
once, as a tree of nodes, and used three ways. The *reference* rules are plain nested
closures that raise at the first failing field; the path is built only then, each
enclosing object or array adding its key while the failure unwinds. The *fast path*
only answers valid / invalid, and the reference rules run only to explain a rejection.
It is the compiled walk of ``ledger._docschema`` (about 7 µs for the 4.6 KB
certificate of the benchmark), given the tree as nested tuples; without the compiled
helper, and as its specification, it is one Python predicate per schema generated at
import from the same tree as straight-line code (about 43 µs). The tests hold all
three to the same verdict on every single-field mutation of every example, and on
random mutations of them.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ledger.codes import (
    COUNTRY_CODES,
    CURRENCY_CODES,
    is_country_code,
    is_currency_code,
    is_decimal,
    is_hs_code,
    is_locode,
    is_non_negative_decimal,
    is_procedure_code,
    is_rfc3339_date,
    is_rfc3339_datetime,
)
from ledger.compiled import load_compiled
from ledger.errors import (
    CountryCodeError,
    CurrencyCodeError,
    DateTimeError,
    DecimalError,
    DocumentError,
    DocumentSchemaError,
    HsCodeError,
    LocodeError,
    ProcedureCodeError,
    UnknownDocTypeError,
)
from ledger.limits import MAX_ECHO_CHARS

__all__ = [
    "DECLARATION_TYPE_CODES",
    "DOC_TYPES",
    "FREE_ZONE_TYPE_CODES",
    "check_canonical_document",
    "compute_path",
    "document_number",
    "document_summary",
    "validate_document",
]

Check = Callable[[Any], None]
"""A compiled rule: returns None or raises :class:`_RuleError`."""

_Members = Callable[[str], Any]
"""A document's top-level members, read as ``dict.get`` reads them (None when absent)."""

DECLARATION_TYPE_CODES: Final = frozenset(
    {"export", "import", "free_zone_entry", "free_zone_exit", "re_export", "transfer"}
)
FREE_ZONE_TYPE_CODES: Final = frozenset({"free_zone_entry", "free_zone_exit", "transfer"})
"""Declaration types that take place in a zone and so must name it in ``freeZoneId``."""

_MAX_SEQUENCE_NUMBER: Final = 2**53 - 1
_DOCUMENT_NUMBER_MAX: Final = 128
_DOCUMENT_NUMBER = re.compile(f"[!-~]{{1,{_DOCUMENT_NUMBER_MAX}}}")
_MODE_CODE = re.compile(r"[0-9]")
_QUOTE_LIMIT: Final = MAX_ECHO_CHARS


class _RuleError(Exception):
    """Internal: one rule failed. ``parts`` is the path, innermost first, filled while unwinding."""

    def __init__(self, error: type[DocumentError], message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message
        self.parts: list[str | int] = []


def compute_path(parts_innermost_first: list[str | int]) -> str:
    """Render path parts as ``a.b[0].c``; ``""`` is the document itself."""
    out: list[str] = []
    for part in reversed(parts_innermost_first):
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif out:
            out.append("." + part)
        else:
            out.append(part)
    return "".join(out)


def _quote(value: str) -> str:
    if len(value) > _QUOTE_LIMIT:
        value = value[: _QUOTE_LIMIT - 3] + "..."
    return json.dumps(value, ensure_ascii=False)


def _describe(value: Any) -> str:
    """Name a JSON value for an "expected X, got Y" message."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "boolean " + ("true" if value else "false")
    if isinstance(value, str):
        return "string " + _quote(value) if value else "an empty string"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _type_error(expected: str, value: Any) -> _RuleError:
    return _RuleError(DocumentSchemaError, f"expected {expected}, got {_describe(value)}")


# --- leaf rules ---------------------------------------------------------------
# ``type(x) is str`` rather than isinstance: JSON values are exact built-in types, and
# it keeps ``True`` (an int subclass) out of integer fields.


def _validate_string(value: Any) -> None:
    if type(value) is not str:
        raise _type_error("a string", value)


def _validate_text(value: Any) -> None:
    if type(value) is not str or not value or value.isspace():
        raise _type_error("a non-empty string", value)


def _validate_bool(value: Any) -> None:
    if type(value) is not bool:
        raise _type_error("a boolean", value)


def _validate_sequence_number(value: Any) -> None:
    if type(value) is not int or not 1 <= value <= _MAX_SEQUENCE_NUMBER:
        raise _type_error("an integer sequence number from 1", value)


def _validate_document_number(value: Any) -> None:
    if type(value) is not str or _DOCUMENT_NUMBER.fullmatch(value) is None:
        raise _type_error("a document number of 1 to 128 printable ASCII characters without spaces", value)


def _validate_country(value: Any) -> None:
    if type(value) is not str:
        raise _type_error("an ISO 3166-1 alpha-2 country code", value)
    if not is_country_code(value):
        raise _RuleError(CountryCodeError, f"{_quote(value)} is not an ISO 3166-1 alpha-2 country code")


def _validate_currency(value: Any) -> None:
    if type(value) is not str:
        raise _type_error("an ISO 4217 currency code", value)
    if not is_currency_code(value):
        raise _RuleError(CurrencyCodeError, f"{_quote(value)} is not an ISO 4217 currency code")


def _validate_hs_code(value: Any) -> None:
    if type(value) is not str:
        raise _type_error("an HS code string", value)
    if not is_hs_code(value):
        raise _RuleError(HsCodeError, f"{_quote(value)} is not an HS code of at least 6 digits")


def _validate_locode(value: Any) -> None:
    if type(value) is not str:
        raise _type_error("a UN/LOCODE string", value)
    if not is_locode(value):
        raise _RuleError(LocodeError, f"{_quote(value)} is not a UN/LOCODE")


def _validate_datetime(value: Any) -> None:
    if type(value) is not str:
        raise _type_error("an RFC 3339 date-time string", value)
    if not is_rfc3339_datetime(value):
        raise _RuleError(
            DateTimeError, f"{_quote(value)} is not an RFC 3339 date-time with a time zone offset"
        )


def _validate_date(value: Any) -> None:
    """A light document's date: RFC 3339 full-date or date-time."""
    if type(value) is not str:
        raise _type_error("an RFC 3339 date string", value)
    if not (is_rfc3339_date(value) or is_rfc3339_datetime(value)):
        raise _RuleError(DateTimeError, f"{_quote(value)} is not an RFC 3339 full-date or date-time")


def _validate_decimal(value: Any) -> None:
    if type(value) is not str:
        raise _type_error("a decimal string", value)
    if not is_decimal(value):
        raise _RuleError(DecimalError, f'{_quote(value)} is not a decimal string such as "1250.50"')


def _validate_non_negative_decimal(value: Any) -> None:
    if type(value) is not str:
        raise _type_error("a decimal string", value)
    if not is_non_negative_decimal(value):
        raise _RuleError(
            DecimalError, f'{_quote(value)} is not a non-negative decimal string such as "1250.50"'
        )


def _validate_procedure_code(value: Any) -> None:
    if type(value) is not str:
        raise _type_error("a procedure code string", value)
    if not is_procedure_code(value):
        raise _RuleError(ProcedureCodeError, f"{_quote(value)} is not a 4-digit customs procedure code")


def _validate_mode_code(value: Any) -> None:
    if type(value) is not str or _MODE_CODE.fullmatch(value) is None:
        raise _type_error("a one-digit transport mode code (UN Rec. 19)", value)


def _validate_declaration_type_code(value: Any) -> None:
    if type(value) is not str or value not in DECLARATION_TYPE_CODES:
        raise _type_error("one of " + ", ".join(sorted(DECLARATION_TYPE_CODES)), value)


# --- combinators --------------------------------------------------------------
# A schema is a tree of nodes. Each node carries its reference rule ``check`` (clear
# code that raises :class:`_RuleError` and so names the failing field); each leaf also
# carries ``fast``, a Python expression that is true exactly when ``check`` passes.
# :func:`_compile_is_valid` turns a whole tree into one straight-line predicate for
# the hot path; the reference rules run only to explain a rejection.

_MISSING: Final = "required field is missing"
_WHEN_PREFERENTIAL: Final = "required when isPreferential is true"
_FAST_TEXT: Final = "(type({x}) is str and {x} != '' and not {x}.isspace())"

# Leaf rule -> equivalent expression over ``{x}``, evaluated in ``_FAST_NAMESPACE``.
_FAST_LEAVES: Final[dict[Check, str]] = {
    _validate_string: "type({x}) is str",
    _validate_text: _FAST_TEXT,
    _validate_bool: "type({x}) is bool",
    _validate_sequence_number: f"(type({{x}}) is int and 1 <= {{x}} <= {_MAX_SEQUENCE_NUMBER})",
    _validate_document_number: "(type({x}) is str and _number_re({x}) is not None)",
    _validate_country: "(type({x}) is str and {x} in _countries)",
    _validate_currency: "(type({x}) is str and {x} in _currencies)",
    _validate_hs_code: "(type({x}) is str and _is_hs_code({x}))",
    _validate_locode: "(type({x}) is str and _is_locode({x}))",
    _validate_datetime: "(type({x}) is str and _is_datetime({x}))",
    _validate_date: "(type({x}) is str and (_is_date({x}) or _is_datetime({x})))",
    _validate_decimal: "(type({x}) is str and _is_decimal({x}))",
    _validate_non_negative_decimal: "(type({x}) is str and _is_non_negative_decimal({x}))",
    _validate_procedure_code: "(type({x}) is str and _is_procedure_code({x}))",
    _validate_mode_code: "(type({x}) is str and _mode_re({x}) is not None)",
    _validate_declaration_type_code: "(type({x}) is str and {x} in _type_codes)",
}

_FAST_NAMESPACE: Final[dict[str, Any]] = {
    "_number_re": _DOCUMENT_NUMBER.fullmatch,
    "_mode_re": _MODE_CODE.fullmatch,
    "_countries": COUNTRY_CODES,
    "_currencies": CURRENCY_CODES,
    "_type_codes": DECLARATION_TYPE_CODES,
    "_is_hs_code": is_hs_code,
    "_is_locode": is_locode,
    "_is_datetime": is_rfc3339_datetime,
    "_is_date": is_rfc3339_date,
    "_is_decimal": is_decimal,
    "_is_non_negative_decimal": is_non_negative_decimal,
    "_is_procedure_code": is_procedure_code,
}


@dataclass(frozen=True, slots=True)
class _Leaf:
    """A single value: a string, a code, a number."""

    check: Check
    """The reference rule."""
    fast: str
    """The same rule as an expression over ``{x}``."""


@dataclass(frozen=True, slots=True)
class _Field:
    """One named member of an object."""

    key: str
    """The JSON member name."""
    node: _Node
    """The rule its value must pass."""
    required: bool
    """Whether absence (or null) is an error."""
    missing: str
    """The message when a required field is absent."""


@dataclass(frozen=True, slots=True)
class _Object:
    """A JSON object with named fields; members not named are allowed."""

    fields: tuple[_Field, ...]
    """The named fields, checked in this order."""
    rule: Check | None
    """A rule across fields, run after them."""
    check: Check
    """The reference rule."""


@dataclass(frozen=True, slots=True)
class _Array:
    """A JSON array of like items."""

    item: _Node
    """The rule every item must pass."""
    min_items: int
    """The fewest items allowed."""
    check: Check
    """The reference rule."""


@dataclass(frozen=True, slots=True)
class _TextOrObject:
    """A value trade systems write either as plain text or as a structured object."""

    obj: _Object
    """The rule for the object form."""
    check: Check
    """The reference rule."""


_Node = _Leaf | _Object | _Array | _TextOrObject


def _as_node(rule: _Node | Check) -> _Node:
    if isinstance(rule, _Leaf | _Object | _Array | _TextOrObject):
        return rule
    return _Leaf(rule, _FAST_LEAVES[rule])


def _field(key: str, rule: _Node | Check, *, required: bool = True, missing: str = _MISSING) -> _Field:
    return _Field(key, _as_node(rule), required, missing)


def _optional(key: str, rule: _Node | Check) -> _Field:
    return _Field(key, _as_node(rule), False, _MISSING)


def _object(*fields: _Field, rule: Check | None = None) -> _Object:
    """An object with the named fields checked in order; other keys are allowed and ignored."""
    specs = tuple((f.key, f.node.check, f.required, f.missing) for f in fields)

    def validate_object(value: Any) -> None:
        if type(value) is not dict:
            raise _type_error("an object", value)
        key = ""
        try:
            for key, check, required, missing in specs:
                item = value.get(key)
                if item is None:
                    if not required:
                        continue
                    if key not in value:
                        raise _RuleError(DocumentSchemaError, missing)
                check(item)  # a required null fails its own type check here
        except _RuleError as exc:
            exc.parts.append(key)
            raise
        if rule is not None:
            rule(value)

    return _Object(tuple(fields), rule, validate_object)


def _array(item: _Node | Check, *, min_items: int = 0) -> _Array:
    """An array whose every item passes ``item``."""
    item_node = _as_node(item)
    check = item_node.check

    def validate_array(value: Any) -> None:
        if type(value) is not list:
            raise _type_error("an array", value)
        if len(value) < min_items:
            raise _RuleError(DocumentSchemaError, f"expected at least {min_items} item(s), got {len(value)}")
        index = 0
        try:
            for index, element in enumerate(value):  # noqa: B007 -- index is read on failure
                check(element)
        except _RuleError as exc:
            exc.parts.append(index)
            raise

    return _Array(item_node, min_items, validate_array)


def _text_or_object(obj: _Object) -> _TextOrObject:
    def validate_text_or_object(value: Any) -> None:
        if type(value) is dict:
            obj.check(value)
        elif type(value) is not str or not value or value.isspace():
            raise _type_error("a non-empty string or an object", value)

    return _TextOrObject(obj, validate_text_or_object)


# --- the fast path -------------------------------------------------------------


def _is_rule_satisfied(rule: Check, value: Any) -> bool:
    try:
        rule(value)
    except _RuleError:
        return False
    return True


class _FastCompiler:
    """Writes one predicate function for a schema tree: no calls per object or field."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names = 0
        self.namespace: dict[str, Any] = {**_FAST_NAMESPACE, "_is_rule_satisfied": _is_rule_satisfied}

    def new_name(self) -> str:
        self.names += 1
        return f"v{self.names}"

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)

    def emit_node(self, node: _Node, var: str, depth: int) -> None:
        if isinstance(node, _Leaf):
            self.emit(depth, f"if not {node.fast.format(x=var)}: return False")
        elif isinstance(node, _Object):
            self.emit_object(node, var, depth)
        elif isinstance(node, _Array):
            self.emit(depth, f"if type({var}) is not list or len({var}) < {node.min_items}: return False")
            element = self.new_name()
            self.emit(depth, f"for {element} in {var}:")
            self.emit_node(node.item, element, depth + 1)
        else:
            self.emit(depth, f"if type({var}) is dict:")
            self.emit_object(node.obj, var, depth + 1)
            self.emit(depth, f"elif not {_FAST_TEXT.format(x=var)}: return False")

    def emit_object(self, node: _Object, var: str, depth: int) -> None:
        self.emit(depth, f"if type({var}) is not dict: return False")
        for field in node.fields:
            member = self.new_name()
            self.emit(depth, f"{member} = {var}.get({field.key!r})")
            if field.required:
                self.emit(depth, f"if {member} is None: return False")
                self.emit_node(field.node, member, depth)
            else:
                self.emit(depth, f"if {member} is not None:")
                self.emit_node(field.node, member, depth + 1)
        if node.rule is not None:
            rule_name = f"_rule_{self.new_name()}"
            self.namespace[rule_name] = node.rule
            self.emit(depth, f"if not _is_rule_satisfied({rule_name}, {var}): return False")


def _compile_is_valid(node: _Node) -> Callable[[Any], bool]:
    """The predicate "``node.check`` would pass", as one generated function."""
    compiler = _FastCompiler()
    compiler.emit(0, "def is_valid(v0):")
    compiler.emit_node(node, "v0", 1)
    compiler.emit(1, "return True")
    source = "\n".join(compiler.lines) + "\n"
    exec(compile(source, "<zoneledger schema>", "exec"), compiler.namespace)  # noqa: S102 -- our own code
    is_valid: Callable[[Any], bool] = compiler.namespace["is_valid"]
    return is_valid


# --- the compiled fast path ------------------------------------------------------
# ``ledger._docschema`` walks a document against a nested-tuple spec of the node tree
# (its header comment defines the format) with no Python call per node. Each leaf rule
# maps to a leaf kind the C code implements exactly as the predicate in ``_FAST_LEAVES``
# does; the property tests hold every kind to its Python predicate.

_NATIVE_LEAVES: Final[dict[Check, tuple[str, Any]]] = {
    _validate_string: ("string", None),
    _validate_text: ("text", None),
    _validate_bool: ("bool", None),
    _validate_sequence_number: ("int_range", (1, _MAX_SEQUENCE_NUMBER)),
    _validate_document_number: ("ascii_graphic", (1, _DOCUMENT_NUMBER_MAX)),
    _validate_country: ("in_set", COUNTRY_CODES),
    _validate_currency: ("in_set", CURRENCY_CODES),
    _validate_hs_code: ("hs_code", None),
    _validate_locode: ("locode", COUNTRY_CODES),
    _validate_datetime: ("datetime", None),
    _validate_date: ("date_or_datetime", None),
    _validate_decimal: ("decimal", None),
    _validate_non_negative_decimal: ("non_negative_decimal", None),
    _validate_procedure_code: ("digits", (4, 4)),  # codes.is_procedure_code: [0-9]{4}
    _validate_mode_code: ("digits", (1, 1)),  # _MODE_CODE: [0-9]
    _validate_declaration_type_code: ("in_set", DECLARATION_TYPE_CODES),
}


def _leaf_predicate(leaf: _Leaf) -> Callable[[Any], bool]:
    """A leaf's fast expression as a function, for a leaf the C code has no kind for."""
    namespace = dict(_FAST_NAMESPACE)
    predicate: Callable[[Any], bool] = eval(  # noqa: S307 -- our own expression
        "lambda x: " + leaf.fast.format(x="x"), namespace
    )
    return predicate


def _native_spec(node: _Node) -> tuple[Any, ...]:
    """The node tree as the nested tuples ``ledger._docschema.Schema`` compiles."""
    if isinstance(node, _Leaf):
        native = _NATIVE_LEAVES.get(node.check)
        if native is None:  # a new leaf rule still works, at the cost of a call
            return ("leaf", "python", _leaf_predicate(node))
        return ("leaf", *native)
    if isinstance(node, _Object):
        rule = None if node.rule is None else functools.partial(_is_rule_satisfied, node.rule)
        fields = tuple((field.key, field.required, _native_spec(field.node)) for field in node.fields)
        return ("object", fields, rule)
    if isinstance(node, _Array):
        return ("array", node.min_items, _native_spec(node.item))
    return ("text_or_object", _native_spec(node.obj))


_docschema: Final = load_compiled("_docschema")


class _Schema:
    """A document schema: the fast predicate and the reference rule beside it.

    ``is_valid`` is the compiled walk when ``ledger._docschema`` is built, else the
    generated Python predicate, which stays reachable as ``is_valid_python``.
    """

    __slots__ = ("is_valid", "is_valid_python", "is_valid_scanned", "node")

    def __init__(self, node: _Node) -> None:
        self.node = node
        self.is_valid_python = _compile_is_valid(node)
        self.is_valid: Callable[[Any], bool] = self.is_valid_python
        self.is_valid_scanned: Callable[[Any], bool] | None = None
        """``is_valid`` of a ``_docschema.Scanned`` document, read from its bytes (compiled only)."""
        if _docschema is not None:
            native = _docschema.Schema(_native_spec(node))
            self.is_valid = native.is_valid
            self.is_valid_scanned = native.is_valid_scanned

    def validate(self, document: Any) -> None:
        """Return None or raise :class:`_RuleError` for the first failing field."""
        if not self.is_valid(document):
            # The reference rule explains the rejection. Should it pass after all, the
            # reference is the specification and the document stands; the
            # differential tests keep the two in agreement.
            self.node.check(document)


# --- certificate_of_origin -----------------------------------------------------

_COUNTRY_REF = _object(_field("code", _validate_country))
_ADDRESS = _object(_field("countryCode", _validate_country))
_PARTY_WITH_ADDRESS = _object(
    _optional("iD", _validate_text),
    _field("name", _validate_text),
    _field("postalAddress", _ADDRESS),
)
_PARTY = _object(
    _optional("iD", _validate_text),
    _field("name", _validate_text),
    _optional("postalAddress", _ADDRESS),
)
_LOCATION = _object(_field("iD", _validate_locode), _optional("name", _validate_text))
_TRANSPORT_MOVEMENT = _object(
    _optional("iD", _validate_text),
    _optional(
        "usedTransportMeans", _object(_optional("iD", _validate_text), _optional("name", _validate_text))
    ),
    _optional("departureEvent", _object(_optional("departureDateTime", _validate_datetime))),
)
_TRADE_LINE_ITEM = _object(
    _field("sequenceNumber", _validate_sequence_number),
    _optional(
        "invoiceReference",
        _object(_field("iD", _validate_text), _field("formattedIssueDateTime", _validate_datetime)),
    ),
    _field(
        "tradeProduct",
        _object(
            _optional("iD", _validate_text),
            _field("description", _validate_text),
            _field(
                "harmonisedTariffCode",
                _object(_field("classCode", _validate_hs_code), _optional("className", _validate_text)),
            ),
            _field("originCountry", _COUNTRY_REF),
        ),
    ),
    _optional("transportPackages", _array(_object(_optional("iD", _validate_text)))),
)


def _compile_certificate_of_origin(preferential: bool) -> _Object:
    """The CoO schema; a preferential certificate also needs FTA, importer and origin criteria."""
    consignment_item = _object(
        _optional("iD", _validate_text),
        _field(
            "crossBorderRegulatoryProcedure",
            _object(
                _field(
                    "originCriteriaText", _validate_text, required=preferential, missing=_WHEN_PREFERENTIAL
                )
            ),
            required=preferential,
            missing=_WHEN_PREFERENTIAL,
        ),
        _optional("manufacturer", _PARTY),
        _field("tradeLineItems", _array(_TRADE_LINE_ITEM, min_items=1)),
    )
    consignment = _object(
        _optional("iD", _validate_text),
        _field("exportCountry", _COUNTRY_REF),
        _field("importCountry", _COUNTRY_REF),
        _field("exporter", _PARTY_WITH_ADDRESS),
        _field("importer", _PARTY_WITH_ADDRESS, required=preferential, missing=_WHEN_PREFERENTIAL),
        _optional("loadingBaseportLocation", _LOCATION),
        _optional("unloadingBaseportLocation", _LOCATION),
        _optional("mainCarriageTransportMovement", _TRANSPORT_MOVEMENT),
        _field("includedConsignmentItems", _array(consignment_item, min_items=1)),
    )
    return _object(
        _field("iD", _validate_document_number),
        _field("issueDateTime", _validate_datetime),
        _field("name", _validate_text),
        _field("issuer", _PARTY_WITH_ADDRESS),
        _field("issueLocation", _LOCATION),
        _field("isPreferential", _validate_bool),
        _field("freeTradeAgreement", _validate_text, required=preferential, missing=_WHEN_PREFERENTIAL),
        _field("supplyChainConsignment", consignment),
        _field(
            "firstSignatoryAuthentication",
            _object(_field("actualDateTime", _validate_datetime), _optional("statement", _validate_text)),
        ),
    )


_COO_PREFERENTIAL = _Schema(_compile_certificate_of_origin(preferential=True))
_COO_NON_PREFERENTIAL = _Schema(_compile_certificate_of_origin(preferential=False))


def _select_certificate_of_origin(get: _Members) -> _Schema:
    # Only a literal ``true`` selects the stricter schema; anything else is checked by
    # the other one, whose isPreferential rule then reports a non-boolean.
    if get("isPreferential") is True:
        return _COO_PREFERENTIAL
    return _COO_NON_PREFERENTIAL


# --- customs_declaration -------------------------------------------------------

_DECLARATION_PARTY = _object(
    _field("name", _validate_text),
    _optional("iD", _validate_text),
    _field("countryCode", _validate_country),
)
_GOODS_ITEM = _object(
    _field("sequenceNumber", _validate_sequence_number),
    _field("description", _validate_text),
    _field("commodityCode", _validate_hs_code),
    _field("originCountry", _validate_country),
    _optional("grossMassKg", _validate_non_negative_decimal),
    _optional("netMassKg", _validate_non_negative_decimal),
    _field("procedureCode", _validate_procedure_code),
    _optional(
        "statisticalValue",
        _object(_field("amount", _validate_non_negative_decimal), _field("currency", _validate_currency)),
    ),
    _optional(
        "supportingDocuments",
        _array(_object(_field("typeCode", _validate_text), _field("id", _validate_text))),
    ),
)


def _compile_customs_declaration(type_code: str | None) -> _Object:
    """The declaration schema for one ``typeCode`` (``None``: the code itself is invalid)."""
    in_zone = type_code in FREE_ZONE_TYPE_CODES
    return _object(
        _field("declarationId", _validate_document_number),
        _field("typeCode", _validate_declaration_type_code),
        _field("issueDateTime", _validate_datetime),
        _field("declarant", _DECLARATION_PARTY),
        _optional("exporter", _DECLARATION_PARTY),
        _optional("importer", _DECLARATION_PARTY),
        _field("exportCountry", _validate_country),
        _field("destinationCountry", _validate_country),
        _optional("customsOffice", _validate_text),
        _field(
            "freeZoneId", _validate_text, required=in_zone, missing=f"required when typeCode is {type_code}"
        ),
        _field("goodsItems", _array(_GOODS_ITEM, min_items=1)),
        _optional(
            "transport",
            _object(_field("modeCode", _validate_mode_code), _optional("meansId", _validate_text)),
        ),
    )


_DECLARATIONS: Final = {code: _Schema(_compile_customs_declaration(code)) for code in DECLARATION_TYPE_CODES}
_DECLARATION_BAD_TYPE = _Schema(_compile_customs_declaration(None))


def _select_customs_declaration(get: _Members) -> _Schema:
    type_code = get("typeCode")
    if type(type_code) is str:  # an unhashable value must not reach dict.get
        return _DECLARATIONS.get(type_code, _DECLARATION_BAD_TYPE)
    return _DECLARATION_BAD_TYPE


# --- light types -----------------------------------------------------------------


def _validate_bill_to_names_someone(bill_to: Any) -> None:
    if bill_to.get("name") is None and bill_to.get("company") is None:
        raise _RuleError(DocumentSchemaError, "expected a name or a company, got neither")


_COMMERCIAL_INVOICE = _Schema(
    _object(
        _field("id", _validate_document_number),
        _field("date", _validate_date),
        _field(
            "billFrom", _object(_field("name", _validate_text), _optional("countryCode", _validate_country))
        ),
        _field(
            "billTo",
            _object(
                _optional("name", _validate_text),
                _optional("company", _object(_field("name", _validate_text))),
                _optional("countryCode", _validate_country),
                rule=_validate_bill_to_names_someone,
            ),
        ),
        _optional("currency", _validate_currency),
        _optional("exportCountry", _validate_country),
        _optional("importCountry", _validate_country),
        _optional(
            "billableItems",
            _array(
                _object(
                    _optional("description", _validate_text),
                    _optional("hsCode", _validate_hs_code),
                    _optional("quantity", _validate_decimal),
                    _optional("unitPrice", _validate_decimal),
                    _optional("amount", _validate_decimal),
                )
            ),
        ),
        _optional("subtotal", _validate_decimal),
        _optional("tax", _validate_decimal),
        _optional("taxTotal", _validate_decimal),
        _optional("total", _validate_decimal),
    )
)

_LIGHT_PARTY = _object(_optional("name", _validate_text), _optional("countryCode", _validate_country))
_PORT = _text_or_object(
    _object(
        _field(
            "location",
            _object(_optional("locationName", _validate_text), _optional("UNLocationCode", _validate_locode)),
        )
    )
)
_BILL_OF_LADING = _Schema(
    _object(
        _field("blNumber", _validate_document_number),
        _field(
            "shipper", _object(_field("name", _validate_text), _optional("countryCode", _validate_country))
        ),
        _optional("consignee", _LIGHT_PARTY),
        _optional("notifyParty", _LIGHT_PARTY),
        _field("portOfLoading", _PORT),
        _field("portOfDischarge", _PORT),
        _optional("placeOfReceipt", _validate_text),
        _optional("placeOfDelivery", _validate_text),
        _optional("vessel", _validate_text),
        _optional("voyageNo", _validate_text),
        _optional("carrierName", _validate_text),
        _optional("shippedOnBoardDate", _validate_date),
    )
)

_CERTIFICATE_OF_NON_MANIPULATION = _Schema(
    _object(
        _field("id", _validate_document_number),
        _field("recipient", _object(_field("name", _validate_text))),
        _field(
            "consignment",
            _object(
                _field("description", _validate_text),
                _optional("originCountryCode", _validate_country),
                _optional("destinationCountryCode", _validate_country),
                _optional("dateOfDischarge", _validate_date),
                _optional("dateOfDeparture", _validate_date),
            ),
        ),
        _optional("declaration", _object(_field("name", _validate_text), _optional("date", _validate_date))),
        _field("certification", _object(_field("name", _validate_text), _field("date", _validate_date))),
    )
)


# --- public API ------------------------------------------------------------------

# A schema is chosen from top-level members only, read through ``get(key)`` as
# ``dict.get`` reads them: the one choice then serves a parsed document (its ``get``)
# and a scanned one (``_docschema.Scanned.get``) alike.
_CHOOSERS: Final[Mapping[str, Callable[[_Members], _Schema]]] = {
    "certificate_of_origin": _select_certificate_of_origin,
    "customs_declaration": _select_customs_declaration,
    "commercial_invoice": lambda _get: _COMMERCIAL_INVOICE,
    "bill_of_lading": lambda _get: _BILL_OF_LADING,
    "certificate_of_non_manipulation": lambda _get: _CERTIFICATE_OF_NON_MANIPULATION,
}


def _no_members(_key: str) -> None:
    """``get`` of a document that is not an object: it has no members."""
    return None


def _selector(choose: Callable[[_Members], _Schema]) -> Callable[[Any], _Schema]:
    """The schema of a parsed document, chosen by ``choose``."""

    def select(document: Any) -> _Schema:
        return choose(document.get if type(document) is dict else _no_members)

    return select


_SELECTORS: Final[Mapping[str, Callable[[Any], _Schema]]] = {
    doc_type: _selector(choose) for doc_type, choose in _CHOOSERS.items()
}

NUMBER_FIELDS: Final[Mapping[str, str]] = {
    "certificate_of_origin": "iD",
    "customs_declaration": "declarationId",
    "commercial_invoice": "id",
    "bill_of_lading": "blNumber",
    "certificate_of_non_manipulation": "id",
}

DOC_TYPES: Final[frozenset[str]] = frozenset(_SELECTORS)


def _unknown_doc_type(doc_type: object) -> UnknownDocTypeError:
    expected = ", ".join(sorted(DOC_TYPES))
    return UnknownDocTypeError(f"expected one of {expected}, got {doc_type!r}")


def _get_selector(doc_type: object) -> Callable[[Any], _Schema]:
    selector = _SELECTORS.get(doc_type) if type(doc_type) is str else None
    if selector is None:
        raise _unknown_doc_type(doc_type)
    return selector


def validate_document(doc_type: str, document: Any) -> None:
    """Check ``document`` against the schema of ``doc_type``; return None or raise.

    Raises :class:`UnknownDocTypeError` for a type outside :data:`DOC_TYPES`, and
    otherwise the :class:`DocumentError` subclass of the first failing rule, with
    ``path`` naming the field.
    """
    schema = _get_selector(doc_type)(document)
    try:
        schema.validate(document)
    except _RuleError as exc:
        # The internal exception carries nothing a caller needs: no chaining.
        raise exc.error(exc.message, path=compute_path(exc.parts)) from None


def document_number(doc_type: str, document: Any) -> str:
    """The document's own number, the ``<number>`` in ``doc_id = "<zone_id>/<number>"``.

    Checks only the number field (and that the document is an object), so it can be
    read before or after :func:`validate_document`.
    """
    _get_selector(doc_type)
    field = NUMBER_FIELDS[doc_type]
    if type(document) is not dict:
        raise DocumentSchemaError(f"expected an object, got {_describe(document)}", path="")
    if field not in document:
        raise DocumentSchemaError(_MISSING, path=field)
    number = document[field]
    try:
        _validate_document_number(number)
    except _RuleError as exc:
        raise exc.error(exc.message, path=field) from None
    assert isinstance(number, str)  # narrowed by the rule above, for mypy
    return number


def check_canonical_document(doc_type: str, data: bytes) -> str | None:
    """The number of the document whose content is ``data``, when one compiled pass shows it all.

    A number is a promise: :func:`~ledger.encoding.parse_canonical_json` accepts
    ``data`` (its bytes are exactly the RFC 8785 form of a document without floats or
    unsafe integers), :func:`validate_document` accepts the parsed document, and
    :func:`document_number` gives this number. None promises nothing: the bytes may be
    fine yet left to the exact path (a key holding a character beyond U+FFFF, nesting
    beyond 512, an unknown ``doc_type``, no compiled helper), and the caller runs that
    path, which names any fault.

    This is the hot path of content checks (about 13 µs for the 4.6 KB certificate of
    the benchmark, against 45 µs to parse, check and validate): ``_docschema`` scans
    the bytes once into a table of tokens and walks the schema over it, building Python
    values only where a rule needs one.
    """
    choose = _CHOOSERS.get(doc_type) if type(doc_type) is str else None
    if choose is None or _docschema is None or type(data) is not bytes:
        return None
    scanned = _docschema.scan_canonical(data)
    if scanned is None or not scanned.is_object:
        return None
    schema = choose(scanned.get)
    if schema.is_valid_scanned is None or not schema.is_valid_scanned(scanned):
        return None
    number = scanned.get(NUMBER_FIELDS[doc_type])
    if not _is_rule_satisfied(_validate_document_number, number):
        return None  # every schema checks its number field: unreachable, but cheap
    assert isinstance(number, str)  # narrowed by the rule above, for mypy
    return number


def _get_text(document: Any, *keys: str) -> str | None:
    """The string at ``document[k1][k2]...``, or None when any step is absent or not a string."""
    value = document
    for key in keys:
        if type(value) is not dict:
            return None
        value = value.get(key)
    return value if type(value) is str and value else None


def _summary_fields(doc_type: str, document: Any) -> list[tuple[str, str | None]]:
    if doc_type == "certificate_of_origin":
        preferential = document.get("isPreferential") if type(document) is dict else None
        return [
            ("number", _get_text(document, "iD")),
            ("issued", _get_text(document, "issueDateTime")),
            ("issuer", _get_text(document, "issuer", "name")),
            ("exporter", _get_text(document, "supplyChainConsignment", "exporter", "name")),
            ("importer", _get_text(document, "supplyChainConsignment", "importer", "name")),
            ("export_country", _get_text(document, "supplyChainConsignment", "exportCountry", "code")),
            ("import_country", _get_text(document, "supplyChainConsignment", "importCountry", "code")),
            (
                "preferential",
                {True: "yes", False: "no"}.get(preferential) if type(preferential) is bool else None,
            ),
            ("free_trade_agreement", _get_text(document, "freeTradeAgreement")),
        ]
    if doc_type == "customs_declaration":
        return [
            ("number", _get_text(document, "declarationId")),
            ("type", _get_text(document, "typeCode")),
            ("issued", _get_text(document, "issueDateTime")),
            ("declarant", _get_text(document, "declarant", "name")),
            ("exporter", _get_text(document, "exporter", "name")),
            ("importer", _get_text(document, "importer", "name")),
            ("export_country", _get_text(document, "exportCountry")),
            ("import_country", _get_text(document, "destinationCountry")),
            ("free_zone", _get_text(document, "freeZoneId")),
        ]
    if doc_type == "commercial_invoice":
        buyer = _get_text(document, "billTo", "company", "name") or _get_text(document, "billTo", "name")
        return [
            ("number", _get_text(document, "id")),
            ("issued", _get_text(document, "date")),
            ("issuer", _get_text(document, "billFrom", "name")),
            ("buyer", buyer),
            (
                "export_country",
                _get_text(document, "exportCountry") or _get_text(document, "billFrom", "countryCode"),
            ),
            (
                "import_country",
                _get_text(document, "importCountry") or _get_text(document, "billTo", "countryCode"),
            ),
        ]
    if doc_type == "bill_of_lading":
        return [
            ("number", _get_text(document, "blNumber")),
            ("issued", _get_text(document, "shippedOnBoardDate")),
            ("issuer", _get_text(document, "carrierName")),
            ("shipper", _get_text(document, "shipper", "name")),
            ("consignee", _get_text(document, "consignee", "name")),
            ("export_country", _get_text(document, "shipper", "countryCode")),
            ("import_country", _get_text(document, "consignee", "countryCode")),
        ]
    return [  # certificate_of_non_manipulation
        ("number", _get_text(document, "id")),
        ("issued", _get_text(document, "certification", "date")),
        ("issuer", _get_text(document, "certification", "name")),
        ("recipient", _get_text(document, "recipient", "name")),
        ("origin_country", _get_text(document, "consignment", "originCountryCode")),
        ("destination_country", _get_text(document, "consignment", "destinationCountryCode")),
    ]


def document_summary(doc_type: str, document: Any) -> dict[str, str]:
    """A few human-facing facts (number, issue date, issuer, countries...) for CLIs and the web page.

    Meant for a validated document, but never raises on a malformed one: a fact that
    is absent or not a string is left out. Raises only for an unknown ``doc_type``.
    """
    _get_selector(doc_type)
    return {key: value for key, value in _summary_fields(doc_type, document) if value is not None}
