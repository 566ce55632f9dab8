"""Trade documents: what a registered document must look like for each ``doc_type`` (DESIGN §4a).

The package owns the document schemas, which field carries a document's own number
(the ``<number>`` of ``doc_id``), and the short summary shown by the CLI and the web
page. The code lists and code predicates live in :mod:`ledger.codes`; what counts as
a JSON document at all (no floats, safe integers, bounded nesting, RFC 8785 bytes) in
:mod:`ledger.canonical_json`. Its modules, in reading order:

    rules                           the rule language: fields, objects, arrays, leaves
                                    (text, number, country, HS code...), conditions,
                                    and the interpreter that runs a schema
    certificate_of_origin           one module per document type: its schema, written
    customs_declaration             once in that language, which is what runs
    commercial_invoice
    bill_of_lading
    certificate_of_non_manipulation
    registry                        the types by name; the checks on values and bytes
    summaries                       the facts shown per type

Public API::

    DOC_TYPES                                      the five document types
    validate_document(doc_type, document)          a value: returns None or raises
    validate_document_bytes(doc_type, data) -> str content bytes (RFC 8785): the number, or raises
    document_number(doc_type, document) -> str     the document's own number
    document_summary(doc_type, document)           a few human-facing facts

A rejected document raises one :class:`~ledger.errors.DocumentError` subclass. JSON
that is no document (a float anywhere, an integer beyond 2^53, nesting beyond
``MAX_NESTING_DEPTH``, bytes not in RFC 8785 form) is ``doc.json``. Against the
schema, ``path`` names the field (``supplyChainConsignment.includedConsignmentItems[0]
.tradeLineItems[1].tradeProduct.harmonisedTariffCode.classCode``; ``""`` is the
document itself) and the message states the rule: a missing field, a ``null`` required
field or a wrong JSON type is :class:`~ledger.errors.DocumentSchemaError`; a string of
the right type but a bad code raises the code's own class (country, currency, HS,
UN/LOCODE, date-time, decimal, procedure code). Fields a schema does not name are
allowed and kept: trade data carries extensions, TradeTrust envelopes (``$template``,
``issuers``) and the optional ``salt``. An optional field may be ``null`` (exports
from trade systems write absent values that way). Checks run in the order the fields
are declared, so the first failure reported is deterministic, and the same for a
document as a value and as bytes.
"""

from __future__ import annotations

from ledger.documents.customs_declaration import DECLARATION_TYPE_CODES, FREE_ZONE_TYPE_CODES
from ledger.documents.registry import (
    DOC_TYPES,
    DOCUMENT_TYPES,
    NUMBER_FIELDS,
    document_number,
    get_document_type,
    validate_document,
    validate_document_bytes,
)
from ledger.documents.rules import compute_path
from ledger.documents.summaries import document_summary

__all__ = [
    "DECLARATION_TYPE_CODES",
    "DOCUMENT_TYPES",
    "DOC_TYPES",
    "FREE_ZONE_TYPE_CODES",
    "NUMBER_FIELDS",
    "compute_path",
    "document_number",
    "document_summary",
    "get_document_type",
    "validate_document",
    "validate_document_bytes",
]
