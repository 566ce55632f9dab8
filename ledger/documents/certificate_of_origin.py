"""``certificate_of_origin``: the UN/CEFACT CertificateOfOrigin in its JSON form.

This module owns the certificate's schema, as used by the edi3 work and TradeTrust's
CHAFTA template (DESIGN §4a). Required unless ``optional``; *when preferential*
marks what a preferential certificate (``isPreferential`` is ``true``) must also
carry: the free trade agreement, the importer and each item's origin criteria.

The CHAFTA sample has no ``firstSignatoryAuthentication.statement`` (its signatory
block is an image and a time), so only ``actualDateTime`` is required there.
``invoiceReference`` is optional because origin can be certified before invoicing;
when present it is complete. A *location* is ``{iD: UN/LOCODE, name?: text}``.
"""

from __future__ import annotations

from typing import Final

from ledger.documents.rules import (
    BOOLEAN,
    COUNTRY,
    DATE_TIME,
    HS_CODE,
    LOCODE,
    NUMBER,
    SEQUENCE_NUMBER,
    TEXT,
    DocumentType,
    array,
    field,
    obj,
    optional,
    when,
)

PREFERENTIAL: Final = when("isPreferential", True)
"""The certificate claims preferential origin under a free trade agreement."""

COUNTRY_REF: Final = obj(field("code", COUNTRY))
ADDRESS: Final = obj(field("countryCode", COUNTRY))
PARTY_WITH_ADDRESS: Final = obj(
    optional("iD", TEXT),
    field("name", TEXT),
    field("postalAddress", ADDRESS),
)
PARTY: Final = obj(
    optional("iD", TEXT),
    field("name", TEXT),
    optional("postalAddress", ADDRESS),
)
LOCATION: Final = obj(field("iD", LOCODE), optional("name", TEXT))

TRANSPORT_MOVEMENT: Final = obj(
    optional("iD", TEXT),
    optional("usedTransportMeans", obj(optional("iD", TEXT), optional("name", TEXT))),
    optional("departureEvent", obj(optional("departureDateTime", DATE_TIME))),
)

TRADE_LINE_ITEM: Final = obj(
    field("sequenceNumber", SEQUENCE_NUMBER),
    optional(
        "invoiceReference",
        obj(field("iD", TEXT), field("formattedIssueDateTime", DATE_TIME)),
    ),
    field(
        "tradeProduct",
        obj(
            optional("iD", TEXT),
            field("description", TEXT),
            field("harmonisedTariffCode", obj(field("classCode", HS_CODE), optional("className", TEXT))),
            field("originCountry", COUNTRY_REF),
        ),
    ),
    optional("transportPackages", array(obj(optional("iD", TEXT)))),
)

CONSIGNMENT_ITEM: Final = obj(
    optional("iD", TEXT),
    field(
        "crossBorderRegulatoryProcedure",
        obj(field("originCriteriaText", TEXT, required_when=PREFERENTIAL)),
        required_when=PREFERENTIAL,
    ),
    optional("manufacturer", PARTY),
    field("tradeLineItems", array(TRADE_LINE_ITEM, min_items=1)),
)

CONSIGNMENT: Final = obj(
    optional("iD", TEXT),
    field("exportCountry", COUNTRY_REF),
    field("importCountry", COUNTRY_REF),
    field("exporter", PARTY_WITH_ADDRESS),
    field("importer", PARTY_WITH_ADDRESS, required_when=PREFERENTIAL),
    optional("loadingBaseportLocation", LOCATION),
    optional("unloadingBaseportLocation", LOCATION),
    optional("mainCarriageTransportMovement", TRANSPORT_MOVEMENT),
    field("includedConsignmentItems", array(CONSIGNMENT_ITEM, min_items=1)),
)

CERTIFICATE_OF_ORIGIN: Final = DocumentType(
    name="certificate_of_origin",
    number_field="iD",
    schema=obj(
        field("iD", NUMBER),
        field("issueDateTime", DATE_TIME),
        field("name", TEXT),
        field("issuer", PARTY_WITH_ADDRESS),
        field("issueLocation", LOCATION),
        field("isPreferential", BOOLEAN),
        field("freeTradeAgreement", TEXT, required_when=PREFERENTIAL),
        field("supplyChainConsignment", CONSIGNMENT),
        field(
            "firstSignatoryAuthentication",
            obj(field("actualDateTime", DATE_TIME), optional("statement", TEXT)),
        ),
    ),
)
