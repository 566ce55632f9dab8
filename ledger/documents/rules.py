"""The rule language of the document schemas, and the one interpreter that runs it.

This module owns how a schema is written and what checking a document against one
means. A schema is a tree of rules, declared once per document type in that type's
module with these constructors::

    field("iD", NUMBER)                          a required member
    field("importer", PARTY, required_when=PREFERENTIAL)
    optional("statement", TEXT)                  may be absent or null
    obj(field(...), ..., any_of=AnyOf(...))      an object: the fields in order
    array(ITEM, min_items=1)                     an array of like items
    text_or_object(obj(...))                     plain text, or a structured object

and the leaves below (``TEXT``, ``NUMBER``, ``COUNTRY``, ``HS_CODE``...). A leaf states
what it expects in words, the JSON type, the test a value of that type must pass (the
predicates of :mod:`ledger.codes`), and, for a coded value, the error class and the
rule's wording when the value has the right type but is not a valid code.

The declaration is what runs: :meth:`Object.check` walks a parsed document along the
tree (only along it: members a schema does not name are never visited, so unusual
content elsewhere costs nothing here) and raises at the first failing rule, in the
order the fields are declared. Nothing is generated from the tree and no other
implementation of it exists. A failure's path is built only when there is one: the
failing leaf raises a :class:`RuleError`, and each enclosing object or array adds its key
or index while the fault unwinds (``compute_path`` renders them).

What counts as a document before any schema runs (JSON values only, no floats,
integers of magnitude below 2^53, nesting bounded) is :mod:`ledger.canonical_json`'s rule;
:mod:`ledger.documents.registry` applies it first.

Conventions: *text* is a string that is not empty and not only whitespace; a
*number* (a document's own number) is 1 to 128 printable ASCII characters without
spaces, because it becomes part of ``doc_id`` in URLs, CLIs and logs; a *sequence
number* is an integer from 1 to 2^53 - 1; JSON values are compared by exact type
(``type(x) is str``), so ``true`` is never an integer and a ``str`` subclass is no
string.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from ledger.codes import (
    COUNTRY_CODES,
    CURRENCY_CODES,
    is_decimal,
    is_hs_code,
    is_locode,
    is_non_negative_decimal,
    is_procedure_code,
    is_rfc3339_date,
    is_rfc3339_datetime,
)
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
)
from ledger.limits import MAX_ECHO_CHARS

MISSING: Final = "required field is missing"
MAX_SEQUENCE_NUMBER: Final = 2**53 - 1
DOCUMENT_NUMBER_MAX_CHARS: Final = 128


# --- faults and their words -----------------------------------------------------------


class RuleError(Exception):
    """One rule failed: the error class to raise, its message, and the path so far.

    ``parts`` is the path, innermost first, filled while the fault unwinds through the
    objects and arrays that hold the failing value.
    """

    def __init__(self, error: type[DocumentError], message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message
        self.parts: list[str | int] = []

    def to_error(self) -> DocumentError:
        """The public error, its path rendered."""
        return self.error(self.message, path=compute_path(self.parts))


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


def quote(value: str) -> str:
    """A string from the document as an error message shows it: in JSON quotes, cut after 80 characters."""
    if len(value) > MAX_ECHO_CHARS:
        value = value[: MAX_ECHO_CHARS - 3] + "..."
    return json.dumps(value, ensure_ascii=False)


def describe(value: Any) -> str:
    """Name a JSON value for an "expected X, got Y" message."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "boolean " + ("true" if value else "false")
    if type(value) is str:
        return "string " + quote(value) if value else "an empty string"
    if type(value) is int:
        return f"integer {value}"
    if type(value) is list:
        return "an array"
    if type(value) is dict:
        return "an object"
    return type(value).__name__


def type_fault(expected: str, value: Any) -> RuleError:
    """The fault of a value that is not what a rule expects (``doc.schema``)."""
    return RuleError(DocumentSchemaError, f"expected {expected}, got {describe(value)}")


# --- rules ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Leaf:
    """A single value: a string, a code, a number, a boolean."""

    expected: str
    """What the rule expects, in words ("an ISO 4217 currency code")."""
    json_type: type
    """The JSON type of the value: ``str``, ``int`` or ``bool``."""
    test: Callable[[Any], object]
    """True (or truthy) for a value of that type that passes."""
    code_error: type[DocumentError] | None = None
    """The error of a value of the right type that fails the test; None: ``doc.schema``."""
    not_a: str = ""
    """With ``code_error``: the rule's wording after the value, "is not a UN/LOCODE"."""

    def fault(self, value: Any) -> RuleError:
        """Why ``value`` fails this leaf."""
        if self.code_error is not None and type(value) is self.json_type:
            return RuleError(self.code_error, f"{quote(str(value))} {self.not_a}")
        return type_fault(self.expected, value)

    def check(self, value: Any, root: Any) -> None:
        """Return None or raise the :class:`RuleError` of ``value``."""
        if type(value) is not self.json_type or not self.test(value):
            raise self.fault(value)


@dataclass(frozen=True, slots=True)
class Condition:
    """When a field is required: a top-level member of the document holds one of some values."""

    key: str
    """The top-level member read ("isPreferential", "typeCode")."""
    json_type: type
    """Its JSON type when the condition holds (so ``1`` is never ``true``)."""
    values: frozenset[Any]
    """The values for which the condition holds."""

    def holds(self, root: Any) -> bool:
        """Whether the document ``root`` meets the condition."""
        if type(root) is not dict:
            return False
        value = root.get(self.key)
        return type(value) is self.json_type and value in self.values

    def describe(self, root: Any) -> str:
        """The condition as met by ``root``: "isPreferential is true", "typeCode is transfer"."""
        value = root[self.key]
        shown = json.dumps(value) if type(value) is bool else str(value)
        return f"{self.key} is {shown}"


@dataclass(frozen=True, slots=True)
class AnyOf:
    """An object must hold at least one of some members (not absent, not null)."""

    keys: tuple[str, ...]
    """The members, one of which must be present."""
    expected: str
    """Them in words: "a name or a company"."""

    def check(self, value: dict[str, Any]) -> None:
        """Return None or raise the fault "expected ..., got neither"."""
        get = value.get
        for key in self.keys:
            if get(key) is not None:
                return
        raise RuleError(DocumentSchemaError, f"expected {self.expected}, got neither")


@dataclass(frozen=True, slots=True)
class Field:
    """One named member of an object."""

    key: str
    """The JSON member name."""
    rule: Rule
    """What its value must pass."""
    required: bool
    """Whether absence (or null) is a fault, unless ``required_when`` says when."""
    required_when: Condition | None
    """Required only when this condition holds (``required`` is then True)."""

    def absent_fault(self, value: dict[str, Any], root: Any) -> RuleError | None:
        """The fault of this field absent (or null) from ``value``, or None when that is allowed."""
        if not self.required:
            return None
        when = self.required_when
        if when is not None and not when.holds(root):
            return None
        if self.key in value:  # present and null: the value's own rule names what it expected
            return _fault_of(self.rule, None, root)
        return RuleError(DocumentSchemaError, MISSING if when is None else f"required when {when.describe(root)}")


class Object:
    """A JSON object whose named fields are checked in order; members not named are allowed."""

    __slots__ = ("any_of", "fields", "_plan")

    fields: tuple[Field, ...]
    """The named fields, checked in this order."""
    any_of: AnyOf | None
    """A rule across fields, checked after them."""

    def __init__(self, fields: tuple[Field, ...], any_of: AnyOf | None) -> None:
        self.fields = fields
        self.any_of = any_of
        # The fields as the walk reads them, so that a leaf costs one call of its test:
        # (key, JSON type or None for a container, leaf test or container check, field).
        self._plan = tuple(_plan_row(f) for f in fields)

    def __repr__(self) -> str:
        return f"Object({[f.key for f in self.fields]})"

    def check(self, value: Any, root: Any) -> None:
        """Return None or raise the :class:`RuleError` of the first failing field."""
        if type(value) is not dict:
            raise type_fault("an object", value)
        get = value.get
        key = ""
        try:
            for key, json_type, test, member in self._plan:
                item = get(key)
                if item is None:
                    if member.required:
                        fault = member.absent_fault(value, root)
                        if fault is not None:
                            raise fault
                elif json_type is None:
                    test(item, root)
                elif type(item) is not json_type or not test(item):
                    raise member.rule.fault(item)  # type: ignore[union-attr]  # a leaf, as json_type says
        except RuleError as fault:
            fault.parts.append(key)
            raise
        if self.any_of is not None:
            self.any_of.check(value)


def _plan_row(member: Field) -> tuple[str, type | None, Callable[..., Any], Field]:
    rule = member.rule
    if type(rule) is Leaf:
        return (member.key, rule.json_type, rule.test, member)
    return (member.key, None, rule.check, member)


@dataclass(frozen=True, slots=True)
class Array:
    """A JSON array of like items."""

    item: Rule
    """What every item must pass."""
    min_items: int
    """The fewest items allowed."""

    def check(self, value: Any, root: Any) -> None:
        """Return None or raise the :class:`RuleError` of the first failing item."""
        if type(value) is not list:
            raise type_fault("an array", value)
        if len(value) < self.min_items:
            raise RuleError(DocumentSchemaError, f"expected at least {self.min_items} item(s), got {len(value)}")
        index = 0
        rule = self.item
        try:
            if type(rule) is Leaf:
                json_type = rule.json_type
                test = rule.test
                for index, element in enumerate(value):  # noqa: B007 -- index is read on failure
                    if type(element) is not json_type or not test(element):
                        raise rule.fault(element)
            else:
                check = rule.check
                for index, element in enumerate(value):  # noqa: B007 -- index is read on failure
                    check(element, root)
        except RuleError as fault:
            fault.parts.append(index)
            raise


@dataclass(frozen=True, slots=True)
class TextOrObject:
    """A value trade systems write either as plain text or as a structured object."""

    obj: Object
    """The rule for the object form."""

    def check(self, value: Any, root: Any) -> None:
        """Return None or raise the :class:`RuleError` of ``value``."""
        if type(value) is dict:
            self.obj.check(value, root)
        elif type(value) is not str or not value.strip():
            raise type_fault("a non-empty string or an object", value)


Rule = Leaf | Object | Array | TextOrObject
"""Anything a value can be checked against."""


def _fault_of(rule: Rule, value: Any, root: Any) -> RuleError:
    """The fault ``rule`` raises for ``value`` (which fails it)."""
    try:
        rule.check(value, root)
    except RuleError as fault:
        return fault
    raise AssertionError(f"{value!r} passes {rule!r}")  # pragma: no cover - only called on failures


# --- constructors: how a schema is written ---------------------------------------------


def field(key: str, rule: Rule, *, required_when: Condition | None = None) -> Field:
    """A required member (or required when ``required_when`` holds for the document)."""
    return Field(key, rule, True, required_when)


def optional(key: str, rule: Rule) -> Field:
    """A member that may be absent or null; when present it must pass ``rule``."""
    return Field(key, rule, False, None)


def obj(*fields: Field, any_of: AnyOf | None = None) -> Object:
    """An object with the named fields, checked in order; other members are allowed and kept."""
    keys = [f.key for f in fields]
    if len(set(keys)) != len(keys):
        raise ValueError(f"a field is declared twice among {keys}")
    return Object(fields, any_of)


def array(item: Rule, *, min_items: int = 0) -> Array:
    """An array whose every item passes ``item``."""
    return Array(item, min_items)


def text_or_object(form: Object) -> TextOrObject:
    """Plain text, or an object passing ``form``."""
    return TextOrObject(form)


def when(key: str, *values: Any) -> Condition:
    """The condition "top-level ``key`` is one of ``values``" (all of one JSON type)."""
    types = {type(v) for v in values}
    if len(types) != 1:
        raise ValueError(f"expected values of one JSON type, got {sorted(t.__name__ for t in types)}")
    return Condition(key, types.pop(), frozenset(values))


# --- leaves -------------------------------------------------------------------------------


def _is_sequence_number(value: int) -> bool:
    return 1 <= value <= MAX_SEQUENCE_NUMBER


def _is_date_or_datetime(value: str) -> bool:
    return is_rfc3339_date(value) or is_rfc3339_datetime(value)


def _always(value: Any) -> bool:
    return True


_DOCUMENT_NUMBER = re.compile(f"[!-~]{{1,{DOCUMENT_NUMBER_MAX_CHARS}}}")

TEXT: Final = Leaf("a non-empty string", str, str.strip)
"""Text: something is left once whitespace (``str.isspace``) is stripped from both ends."""
BOOLEAN: Final = Leaf("a boolean", bool, _always)
SEQUENCE_NUMBER: Final = Leaf("an integer sequence number from 1", int, _is_sequence_number)
NUMBER: Final = Leaf(
    f"a document number of 1 to {DOCUMENT_NUMBER_MAX_CHARS} printable ASCII characters without spaces",
    str,
    _DOCUMENT_NUMBER.fullmatch,
)
COUNTRY: Final = Leaf(
    "an ISO 3166-1 alpha-2 country code",
    str,
    COUNTRY_CODES.__contains__,
    CountryCodeError,
    "is not an ISO 3166-1 alpha-2 country code",
)
CURRENCY: Final = Leaf(
    "an ISO 4217 currency code", str, CURRENCY_CODES.__contains__, CurrencyCodeError, "is not an ISO 4217 currency code"
)
HS_CODE: Final = Leaf("an HS code string", str, is_hs_code, HsCodeError, "is not an HS code of at least 6 digits")
LOCODE: Final = Leaf("a UN/LOCODE string", str, is_locode, LocodeError, "is not a UN/LOCODE")
DATE_TIME: Final = Leaf(
    "an RFC 3339 date-time string",
    str,
    is_rfc3339_datetime,
    DateTimeError,
    "is not an RFC 3339 date-time with a time zone offset",
)
DATE: Final = Leaf(
    "an RFC 3339 date string", str, _is_date_or_datetime, DateTimeError, "is not an RFC 3339 full-date or date-time"
)
"""A light document's date: an RFC 3339 full-date or date-time."""
DECIMAL: Final = Leaf(
    "a decimal string", str, is_decimal, DecimalError, 'is not a decimal string such as "1250.50"'
)
NON_NEGATIVE_DECIMAL: Final = Leaf(
    "a decimal string",
    str,
    is_non_negative_decimal,
    DecimalError,
    'is not a non-negative decimal string such as "1250.50"',
)
PROCEDURE_CODE: Final = Leaf(
    "a procedure code string", str, is_procedure_code, ProcedureCodeError, "is not a 4-digit customs procedure code"
)


def one_of(values: frozenset[str]) -> Leaf:
    """A string from a closed list, such as a declaration's ``typeCode``."""
    return Leaf("one of " + ", ".join(sorted(values)), str, values.__contains__)


def digits(count: int, what: str) -> Leaf:
    """A string of exactly ``count`` ASCII digits."""
    pattern = re.compile(f"[0-9]{{{count}}}")
    return Leaf(what, str, pattern.fullmatch)


# --- a document type ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DocumentType:
    """One ``doc_type``: its schema and the field that carries its own number."""

    name: str
    """The ``doc_type`` a transaction names."""
    number_field: str
    """The top-level field holding the document's own number (the ``<number>`` of ``doc_id``)."""
    schema: Object
    """What every document of the type must pass."""

    def __post_init__(self) -> None:
        number = [f for f in self.schema.fields if f.key == self.number_field]
        if not number or number[0].rule is not NUMBER or not number[0].required:
            raise ValueError(f"{self.name}: expected {self.number_field!r} declared as a required NUMBER")

    def check(self, document: Any) -> None:
        """Return None or raise the :class:`RuleError` of the first failing rule of the schema."""
        self.schema.check(document, document)
