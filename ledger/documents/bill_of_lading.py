"""``bill_of_lading``: the carrier's receipt for goods shipped, in TradeTrust's field names.

This module owns the bill of lading's light schema (DESIGN §4a): number, shipper and
consignee, the ports and the shipment date. A port is written as plain text or as
``{location: {locationName?, UNLocationCode?}}``; a UN/LOCODE is checked where one is
given.
"""

from __future__ import annotations

from typing import Final

from ledger.documents.rules import (
    COUNTRY,
    DATE,
    LOCODE,
    NUMBER,
    TEXT,
    DocumentType,
    field,
    obj,
    optional,
    text_or_object,
)

PARTY: Final = obj(optional("name", TEXT), optional("countryCode", COUNTRY))
PORT: Final = text_or_object(
    obj(field("location", obj(optional("locationName", TEXT), optional("UNLocationCode", LOCODE))))
)

BILL_OF_LADING: Final = DocumentType(
    name="bill_of_lading",
    number_field="blNumber",
    schema=obj(
        field("blNumber", NUMBER),
        field("shipper", obj(field("name", TEXT), optional("countryCode", COUNTRY))),
        optional("consignee", PARTY),
        optional("notifyParty", PARTY),
        field("portOfLoading", PORT),
        field("portOfDischarge", PORT),
        optional("placeOfReceipt", TEXT),
        optional("placeOfDelivery", TEXT),
        optional("vessel", TEXT),
        optional("voyageNo", TEXT),
        optional("carrierName", TEXT),
        optional("shippedOnBoardDate", DATE),
    ),
)
