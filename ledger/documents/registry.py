"""The document types by name, and the checks every caller runs: on values and on bytes.

This module owns the entry points. A document is checked in one order whatever form
it arrives in: first the JSON rules of :mod:`ledger.canonical_json` (JSON values only,
no floats, integers of magnitude below 2^53, nesting bounded; for bytes also the RFC
8785 form), whose faults are ``doc.json``; then the schema of its type, whose faults
name the field. So a document held as a Python value and the same document as bytes
get one verdict, with one error code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ledger.canonical_json import parse_canonical_json, validate_json_value
from ledger.documents.bill_of_lading import BILL_OF_LADING
from ledger.documents.certificate_of_non_manipulation import CERTIFICATE_OF_NON_MANIPULATION
from ledger.documents.certificate_of_origin import CERTIFICATE_OF_ORIGIN
from ledger.documents.commercial_invoice import COMMERCIAL_INVOICE
from ledger.documents.customs_declaration import CUSTOMS_DECLARATION
from ledger.documents.rules import MISSING, NUMBER, DocumentType, RuleError, describe
from ledger.errors import DocumentJsonError, DocumentSchemaError, JsonError, UnknownDocTypeError

DOCUMENT_TYPES: Final[Mapping[str, DocumentType]] = {
    t.name: t
    for t in (
        CERTIFICATE_OF_ORIGIN,
        CUSTOMS_DECLARATION,
        COMMERCIAL_INVOICE,
        BILL_OF_LADING,
        CERTIFICATE_OF_NON_MANIPULATION,
    )
}
"""Every document type, by ``doc_type``."""

DOC_TYPES: Final[frozenset[str]] = frozenset(DOCUMENT_TYPES)
"""The names of the document types."""

NUMBER_FIELDS: Final[Mapping[str, str]] = {name: t.number_field for name, t in DOCUMENT_TYPES.items()}
"""The field of each type that carries the document's own number."""


def get_document_type(doc_type: object) -> DocumentType:
    """The declaration of ``doc_type``; raises :class:`UnknownDocTypeError` for any other name."""
    found = DOCUMENT_TYPES.get(doc_type) if type(doc_type) is str else None
    if found is None:
        expected = ", ".join(sorted(DOC_TYPES))
        raise UnknownDocTypeError(f"expected one of {expected}, got {doc_type!r}")
    return found


def _check_schema(document_type: DocumentType, document: Any) -> None:
    try:
        document_type.check(document)
    except RuleError as fault:
        # The internal fault carries nothing a caller needs: no chaining.
        raise fault.to_error() from None


def _as_document_json_error(exc: JsonError) -> DocumentJsonError:
    return DocumentJsonError(exc.message, path=exc.path)


def validate_document(doc_type: str, document: Any) -> None:
    """Check the value ``document`` as a document of ``doc_type``; return None or raise.

    Raises :class:`UnknownDocTypeError` for a type outside :data:`DOC_TYPES`;
    :class:`DocumentJsonError` (``doc.json``) for a value that is no document at all
    (a float anywhere, an integer beyond 2^53, nesting beyond the limit, a non-JSON
    type); otherwise the :class:`DocumentError` subclass of the first failing rule of
    the schema, with ``path`` naming the field.
    """
    document_type = get_document_type(doc_type)
    try:
        validate_json_value(document)
    except JsonError as exc:
        raise _as_document_json_error(exc) from None
    _check_schema(document_type, document)


def validate_document_bytes(doc_type: str, data: bytes) -> str:
    """Check a document's content bytes; return the document's own number or raise.

    This is the content check of block execution and mempool admission: ``data`` must
    be a document in RFC 8785 form (:func:`~ledger.canonical_json.parse_canonical_json`;
    any fault is :class:`DocumentJsonError`), which then passes its type's schema as
    :func:`validate_document` checks it. The same faults are reported in the same
    order as for the parsed value.
    """
    document_type = get_document_type(doc_type)
    try:
        document = parse_canonical_json(data)
    except JsonError as exc:
        raise _as_document_json_error(exc) from None
    _check_schema(document_type, document)
    number: str = document[document_type.number_field]  # the schema checked it
    return number


def document_number(doc_type: str, document: Any) -> str:
    """The document's own number, the ``<number>`` in ``doc_id = "<zone_id>/<number>"``.

    Checks only the number field (and that the document is an object), so it can be
    read before or after :func:`validate_document`.
    """
    field = get_document_type(doc_type).number_field
    if type(document) is not dict:
        raise DocumentSchemaError(f"expected an object, got {describe(document)}", path="")
    if field not in document:
        raise DocumentSchemaError(MISSING, path=field)
    number = document[field]
    try:
        NUMBER.check(number, document)
    except RuleError as fault:
        raise fault.error(fault.message, path=field) from None
    assert isinstance(number, str)  # narrowed by the rule above, for mypy
    return number
