"""``commercial_invoice``: the invoice behind a shipment, in TradeTrust's field names.

This module owns the invoice's light schema (DESIGN §4a): number, date, parties,
currency and countries, with codes checked wherever they are present. ``billTo``
names the buyer by ``name`` or by ``company.name``. Amounts are decimal strings
(``"1250.50"``, signed where a credit note needs it), never JSON numbers. TradeTrust
writes countries as free text ("SINGAPORE") in other fields; those are left unchecked
and the ISO-coded fields below sit beside them.
"""

from __future__ import annotations

from typing import Final

from ledger.documents.rules import (
    COUNTRY,
    CURRENCY,
    DATE,
    DECIMAL,
    HS_CODE,
    NUMBER,
    TEXT,
    AnyOf,
    DocumentType,
    array,
    field,
    obj,
    optional,
)

BILLABLE_ITEM: Final = obj(
    optional("description", TEXT),
    optional("hsCode", HS_CODE),
    optional("quantity", DECIMAL),
    optional("unitPrice", DECIMAL),
    optional("amount", DECIMAL),
)

COMMERCIAL_INVOICE: Final = DocumentType(
    name="commercial_invoice",
    number_field="id",
    schema=obj(
        field("id", NUMBER),
        field("date", DATE),
        field("billFrom", obj(field("name", TEXT), optional("countryCode", COUNTRY))),
        field(
            "billTo",
            obj(
                optional("name", TEXT),
                optional("company", obj(field("name", TEXT))),
                optional("countryCode", COUNTRY),
                any_of=AnyOf(("name", "company"), "a name or a company"),
            ),
        ),
        optional("currency", CURRENCY),
        optional("exportCountry", COUNTRY),
        optional("importCountry", COUNTRY),
        optional("billableItems", array(BILLABLE_ITEM)),
        optional("subtotal", DECIMAL),
        optional("tax", DECIMAL),
        optional("taxTotal", DECIMAL),
        optional("total", DECIMAL),
    ),
)
