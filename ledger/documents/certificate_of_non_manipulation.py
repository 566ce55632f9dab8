"""``certificate_of_non_manipulation``: goods held in a zone were not worked on before leaving.

This module owns the certificate's light schema (DESIGN §4a), in TradeTrust's field
names: number, recipient, the consignment with its origin and destination countries
and dates, and who certified it when.
"""

from __future__ import annotations

from typing import Final

from ledger.documents.rules import COUNTRY, DATE, NUMBER, TEXT, DocumentType, field, obj, optional

CERTIFICATE_OF_NON_MANIPULATION: Final = DocumentType(
    name="certificate_of_non_manipulation",
    number_field="id",
    schema=obj(
        field("id", NUMBER),
        field("recipient", obj(field("name", TEXT))),
        field(
            "consignment",
            obj(
                field("description", TEXT),
                optional("originCountryCode", COUNTRY),
                optional("destinationCountryCode", COUNTRY),
                optional("dateOfDischarge", DATE),
                optional("dateOfDeparture", DATE),
            ),
        ),
        optional("declaration", obj(field("name", TEXT), optional("date", DATE))),
        field("certification", obj(field("name", TEXT), field("date", DATE))),
    ),
)
