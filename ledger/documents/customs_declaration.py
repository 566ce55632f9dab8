"""``customs_declaration``: the WCO Data Model's goods declaration, in JSON.

This module owns the declaration's schema (DESIGN §4a) and its list of declaration
types. Required unless ``optional``; ``freeZoneId`` is required for the procedures
that take place in a zone (``free_zone_entry``, ``free_zone_exit``, ``transfer``).

``re_export`` does not require ``freeZoneId``: goods are re-exported from customs
warehouses, temporary storage and inward processing as well as from zones. A
re-export out of a zone names the zone (checked as text when present), as the example
``decl_re_export.json`` does. A supporting document's ``id`` may be a ledger
``doc_id`` such as ``"EG-TEDA/CO-2026-000123"``; whether it is registered is the state
transition's concern, not the schema's. Masses and values are decimal strings
(``"1250.50"``), never JSON numbers.
"""

from __future__ import annotations

from typing import Final

from ledger.documents.rules import (
    COUNTRY,
    CURRENCY,
    DATE_TIME,
    HS_CODE,
    NON_NEGATIVE_DECIMAL,
    NUMBER,
    PROCEDURE_CODE,
    SEQUENCE_NUMBER,
    TEXT,
    DocumentType,
    array,
    digits,
    field,
    obj,
    one_of,
    optional,
    when,
)

DECLARATION_TYPE_CODES: Final = frozenset(
    {"export", "import", "free_zone_entry", "free_zone_exit", "re_export", "transfer"}
)
"""Every ``typeCode`` a declaration may have."""
FREE_ZONE_TYPE_CODES: Final = frozenset({"free_zone_entry", "free_zone_exit", "transfer"})
"""Declaration types that take place in a zone and so must name it in ``freeZoneId``."""

IN_A_ZONE: Final = when("typeCode", *sorted(FREE_ZONE_TYPE_CODES))
"""The procedure takes place in a free zone."""

DECLARATION_TYPE_CODE: Final = one_of(DECLARATION_TYPE_CODES)
MODE_CODE: Final = digits(1, "a one-digit transport mode code (UN Rec. 19)")

PARTY: Final = obj(
    field("name", TEXT),
    optional("iD", TEXT),
    field("countryCode", COUNTRY),
)

GOODS_ITEM: Final = obj(
    field("sequenceNumber", SEQUENCE_NUMBER),
    field("description", TEXT),
    field("commodityCode", HS_CODE),
    field("originCountry", COUNTRY),
    optional("grossMassKg", NON_NEGATIVE_DECIMAL),
    optional("netMassKg", NON_NEGATIVE_DECIMAL),
    field("procedureCode", PROCEDURE_CODE),
    optional("statisticalValue", obj(field("amount", NON_NEGATIVE_DECIMAL), field("currency", CURRENCY))),
    optional("supportingDocuments", array(obj(field("typeCode", TEXT), field("id", TEXT)))),
)

CUSTOMS_DECLARATION: Final = DocumentType(
    name="customs_declaration",
    number_field="declarationId",
    schema=obj(
        field("declarationId", NUMBER),
        field("typeCode", DECLARATION_TYPE_CODE),
        field("issueDateTime", DATE_TIME),
        field("declarant", PARTY),
        optional("exporter", PARTY),
        optional("importer", PARTY),
        field("exportCountry", COUNTRY),
        field("destinationCountry", COUNTRY),
        optional("customsOffice", TEXT),
        field("freeZoneId", TEXT, required_when=IN_A_ZONE),
        field("goodsItems", array(GOODS_ITEM, min_items=1)),
        optional("transport", obj(field("modeCode", MODE_CODE), optional("meansId", TEXT))),
    ),
)
