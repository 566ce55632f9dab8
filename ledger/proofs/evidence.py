"""Reading an untrusted bundle (or checkpoint) piece by piece, trusting nothing in it.

:class:`Evidence` parses each piece of a bundle on first use (header, certificate,
transaction, history, ...) and raises a :class:`~ledger.errors.LedgerError` (mostly
``proof.bundle_malformed``) when that piece is malformed, so that a check that needs a
broken piece fails with the reason while the other checks still run. The ``parse_*``
functions accept exactly one spelling of each value (lowercase hex, non-negative
integers, bounded lists).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from ledger.blocks import CommitCertificate, Header
from ledger.encoding import decode_cb
from ledger.errors import BundleHeaderError, BundleMalformedError, LedgerError
from ledger.genesis import Genesis
from ledger.governance import ZoneRecord
from ledger.proofs.bundle import (
    FORMAT_V1,
    HISTORY_FIELDS,
    ISSUER_FIELDS,
    MAX_HISTORY,
    MAX_PROOF_HASHES,
    MAX_SET_CHANGES,
    MAX_VALIDATORS,
    SET_CHANGE_FIELDS,
)
from ledger.smt import StateProof
from ledger.transactions import KIND_DOC_AMEND, KIND_DOC_ISSUE, DocAmend, DocIssue, DocRevoke, Envelope


def parse_hex(value: Any, what: str, size: int | None = None) -> bytes:
    """Lowercase hex only: one spelling per value, as for every hash in the contract."""
    if type(value) is not str:
        raise BundleMalformedError(f"{what}: expected lowercase hex, got {type(value).__name__}")
    try:
        raw = bytes.fromhex(value)
    except ValueError as exc:
        raise BundleMalformedError(f"{what}: expected lowercase hex, got {value[:24]!r}") from exc
    if raw.hex() != value:
        raise BundleMalformedError(f"{what}: expected lowercase hex without spaces, got {value[:24]!r}")
    if size is not None and len(raw) != size:
        raise BundleMalformedError(f"{what}: expected {size} bytes, got {len(raw)}")
    return raw


def parse_int(value: Any, what: str) -> int:
    if type(value) is not int or value < 0:
        raise BundleMalformedError(f"{what}: expected a non-negative integer, got {value!r:.40}")
    return value


def parse_hashes(value: Any, what: str) -> list[bytes]:
    if type(value) is not list or len(value) > MAX_PROOF_HASHES:
        raise BundleMalformedError(f"{what}: expected a list of at most {MAX_PROOF_HASHES} hashes")
    return [parse_hex(item, f"{what}[{i}]", 32) for i, item in enumerate(value)]


def parse_fields(value: Any, what: str, fields: frozenset[str]) -> dict[str, Any]:
    """A map with exactly ``fields``, or raise."""
    if type(value) is not dict or value.keys() != fields:
        raise BundleMalformedError(f"{what}: expected exactly the fields {sorted(fields)}")
    return value


def parse_entries(
    value: Any, what: str, fields: frozenset[str], *, most: int, least: int = 0,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The entries of a bounded list of maps with exactly ``fields``, each with where it
    stands (``what[i]``) for the messages of its own fields."""
    if type(value) is not list or not least <= len(value) <= most:
        raise BundleMalformedError(f"{what}: expected {'a non-empty list' if least else 'a list'} of at most {most} entries")
    for i, item in enumerate(value):
        where = f"{what}[{i}]"
        yield where, parse_fields(item, where, fields)


def parse_envelope(data: bytes, what: str) -> Envelope:
    try:
        return Envelope.decode(data)
    except LedgerError as exc:
        raise BundleMalformedError(f"{what}: expected a canonical transaction envelope, got: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Entry:
    """One parsed history entry."""

    tx: bytes
    envelope: Envelope
    log_index: int
    proof: list[bytes]


@dataclass(frozen=True, slots=True)
class SetChangeEntry:
    """One parsed ``validator_history`` entry: the header that announces a new set, its
    certificate, and the set."""

    header_bytes: bytes
    header: Header
    commit: CommitCertificate
    validators: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class IssuerRecords:
    """The parsed ``issuer``: the signing officer's record and its zone's, each with its proof."""

    officer_record: bytes
    officer_proof: StateProof
    zone_record: bytes
    zone_proof: StateProof


def parse_validators(value: Any, what: str) -> tuple[bytes, ...]:
    if type(value) is not list or not 0 < len(value) <= MAX_VALIDATORS:
        raise BundleMalformedError(f"{what}: expected a list of 1 to {MAX_VALIDATORS} keys")
    return tuple(parse_hex(item, f"{what}[{i}]", 32) for i, item in enumerate(value))


def parse_header(data: bytes, what: str) -> Header:
    try:
        return Header.decode(data)
    except LedgerError as exc:
        raise BundleHeaderError(f"{what}: expected canonical header bytes, got: {exc}") from exc


def parse_commit(value: Any, what: str) -> CommitCertificate:
    try:
        return CommitCertificate.from_json(value)
    except LedgerError as exc:
        raise BundleMalformedError(f"{what}: expected a commit certificate, got: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Match:
    """Which registered version the copy equals."""

    kind: str
    version: int
    current: bool
    attachment: str | None = None


class Evidence:
    """An untrusted bundle (or checkpoint), parsed piece by piece on first use.

    Each piece raises when malformed, so a check that needs a broken piece fails with
    the reason instead of the whole verification crashing.
    """

    def __init__(self, raw: Any, genesis: Genesis) -> None:
        self.raw = raw
        self.genesis = genesis
        self.match: Match | None = None
        self.held: tuple[bytes, ...] | None = None
        """The validator set the bundle's header is governed by, once the history was followed."""

    def get(self, name: str) -> Any:
        if type(self.raw) is not dict or name not in self.raw:
            raise BundleMalformedError(f"expected a field {name!r}, got none")
        return self.raw[name]

    @cached_property
    def header_bytes(self) -> bytes:
        return parse_hex(self.get("header"), "header")

    @cached_property
    def header(self) -> Header:
        return parse_header(self.header_bytes, "header")

    @property
    def is_v1(self) -> bool:
        return type(self.raw) is dict and self.raw.get("format") == FORMAT_V1

    @cached_property
    def validator_history(self) -> list[SetChangeEntry]:
        """Empty for a ``/1`` bundle and for a checkpoint made before any change of the set."""
        if self.is_v1 or (type(self.raw) is dict and "validator_history" not in self.raw and "format" not in self.raw):
            return []
        entries = []
        for where, item in parse_entries(self.get("validator_history"), "validator_history", SET_CHANGE_FIELDS,
                                         most=MAX_SET_CHANGES):
            header_bytes = parse_hex(item["header"], f"{where}.header")
            entries.append(SetChangeEntry(
                header_bytes, parse_header(header_bytes, f"{where}.header"), parse_commit(item["commit"], f"{where}.commit"),
                parse_validators(item["validators"], f"{where}.validators"),
            ))
        return entries

    @cached_property
    def issuer(self) -> IssuerRecords:
        raw = parse_fields(self.get("issuer"), "issuer", ISSUER_FIELDS)
        return IssuerRecords(
            parse_hex(raw["officer_record"], "issuer.officer_record"), StateProof.from_json(raw["officer_proof"]),
            parse_hex(raw["zone_record"], "issuer.zone_record"), StateProof.from_json(raw["zone_proof"]),
        )

    @cached_property
    def issuer_zone(self) -> ZoneRecord:
        """The issuing zone's record as ``issuer`` carries it (its proof is the issuer rule's)."""
        return ZoneRecord.from_wire(decode_cb(self.issuer.zone_record))

    @cached_property
    def commit(self) -> CommitCertificate:
        return CommitCertificate.from_json(self.get("commit"))

    @cached_property
    def tx(self) -> bytes:
        return parse_hex(self.get("tx"), "tx")

    @cached_property
    def envelope(self) -> Envelope:
        envelope = parse_envelope(self.tx, "tx")
        if envelope.tx.kind not in (KIND_DOC_ISSUE, KIND_DOC_AMEND):
            raise BundleMalformedError(f"tx: expected a doc.issue or doc.amend transaction, got {envelope.tx.kind}")
        return envelope

    @property
    def body(self) -> DocIssue | DocAmend:
        body = self.envelope.tx.body
        assert isinstance(body, DocIssue | DocAmend)  # narrowed by envelope
        return body

    @cached_property
    def log_index(self) -> int:
        return parse_int(self.get("log_index"), "log_index")

    @cached_property
    def history(self) -> list[Entry]:
        entries = []
        for where, item in parse_entries(self.get("history"), "history", HISTORY_FIELDS, least=1, most=MAX_HISTORY):
            tx = parse_hex(item["tx"], f"{where}.tx")
            entries.append(Entry(
                tx, parse_envelope(tx, f"{where}.tx"), parse_int(item["log_index"], f"{where}.log_index"),
                parse_hashes(item["inclusion_proof"], f"{where}.inclusion_proof"),
            ))
        return entries

    @property
    def versions(self) -> list[Entry]:
        """History entries that introduce a version (issue, amendments), version = position + 1."""
        return [e for e in self.history if e.envelope.tx.kind in (KIND_DOC_ISSUE, KIND_DOC_AMEND)]

    @property
    def revocation(self) -> DocRevoke | None:
        last = self.history[-1].envelope.tx.body
        return last if isinstance(last, DocRevoke) else None
