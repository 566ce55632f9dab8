"""A few human-facing facts per document: what the CLI and the web page show.

This module owns which facts are shown for each document type and where they are read
from. Each fact is read at the first of its paths that holds a non-empty string (or,
for a yes/no fact, a boolean); a summary decides nothing and never raises on a
malformed document.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ledger.documents.registry import get_document_type


@dataclass(frozen=True, slots=True)
class Fact:
    """One fact of a summary."""

    label: str
    """Its name in the summary ("issuer", "export_country")."""
    paths: tuple[str, ...]
    """Where it is read, dotted, first match wins: a non-empty string there."""
    yes_no: bool = False
    """The fact is a boolean, shown as "yes" or "no"."""

    def read(self, document: Any) -> str | None:
        """The fact's value in ``document``, or None when no path holds one."""
        for path in self.paths:
            value = document
            for key in path.split("."):
                if type(value) is not dict:
                    value = None
                    break
                value = value.get(key)
            if self.yes_no:
                if type(value) is bool:
                    return "yes" if value else "no"
            elif type(value) is str and value:
                return value
        return None


def fact(label: str, *paths: str, yes_no: bool = False) -> Fact:
    """A fact read at the first of ``paths`` (dotted) that holds one."""
    return Fact(label, paths, yes_no)


SUMMARIES: Final[Mapping[str, tuple[Fact, ...]]] = {
    "certificate_of_origin": (
        fact("number", "iD"),
        fact("issued", "issueDateTime"),
        fact("issuer", "issuer.name"),
        fact("exporter", "supplyChainConsignment.exporter.name"),
        fact("importer", "supplyChainConsignment.importer.name"),
        fact("export_country", "supplyChainConsignment.exportCountry.code"),
        fact("import_country", "supplyChainConsignment.importCountry.code"),
        fact("preferential", "isPreferential", yes_no=True),
        fact("free_trade_agreement", "freeTradeAgreement"),
    ),
    "customs_declaration": (
        fact("number", "declarationId"),
        fact("type", "typeCode"),
        fact("issued", "issueDateTime"),
        fact("declarant", "declarant.name"),
        fact("exporter", "exporter.name"),
        fact("importer", "importer.name"),
        fact("export_country", "exportCountry"),
        fact("import_country", "destinationCountry"),
        fact("free_zone", "freeZoneId"),
    ),
    "commercial_invoice": (
        fact("number", "id"),
        fact("issued", "date"),
        fact("issuer", "billFrom.name"),
        fact("buyer", "billTo.company.name", "billTo.name"),
        fact("export_country", "exportCountry", "billFrom.countryCode"),
        fact("import_country", "importCountry", "billTo.countryCode"),
    ),
    "bill_of_lading": (
        fact("number", "blNumber"),
        fact("issued", "shippedOnBoardDate"),
        fact("issuer", "carrierName"),
        fact("shipper", "shipper.name"),
        fact("consignee", "consignee.name"),
        fact("export_country", "shipper.countryCode"),
        fact("import_country", "consignee.countryCode"),
    ),
    "certificate_of_non_manipulation": (
        fact("number", "id"),
        fact("issued", "certification.date"),
        fact("issuer", "certification.name"),
        fact("recipient", "recipient.name"),
        fact("origin_country", "consignment.originCountryCode"),
        fact("destination_country", "consignment.destinationCountryCode"),
    ),
}
"""For each type, the facts in display order."""


def document_summary(doc_type: str, document: Any) -> dict[str, str]:
    """A few human-facing facts (number, issue date, issuer, countries...) for CLIs and the web page.

    Meant for a validated document, but never raises on a malformed one: a fact that
    is absent or not a string is left out. Raises only for an unknown ``doc_type``.
    """
    get_document_type(doc_type)
    facts = ((f.label, f.read(document)) for f in SUMMARIES[doc_type])
    return {label: value for label, value in facts if value is not None}
