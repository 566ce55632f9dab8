"""Transactions: the signed envelope and one body type per kind (DESIGN §4).

Wire form: ``cb({"tx": T, "sig": bytes64})`` with
``T = {"chain_id", "kind", "signer", "nonce", "body"}``; ``tx_hash = H(cb(envelope))``.
Decoding parses into a typed, size-bounded object or raises; nothing half-checked
escapes this module. Authorization against ledger state lives in
:mod:`ledger.transition`, not here.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, TypeVar

from ledger.encoding import (
    H,
    bounded_repr,
    cb,
    decode_cb,
    expect_bytes,
    expect_int,
    expect_list,
    expect_map,
    expect_str,
)
from ledger.errors import (
    AttachmentError,
    EncodingError,
    MalformedTransactionError,
    SignatureInvalidError,
    TransactionTooLargeError,
    UnknownKindError,
    WrongChainError,
)
from ledger.governance import Action, KeyChange, decode_action
from ledger.keys import TX_DOMAIN, SigningKey, signing_bytes, verify_bytes
from ledger.limits import (
    MAX_ATTACHMENTS,
    MAX_DECODED_ENVELOPES_BYTES,
    MAX_DOC_ID_CHARS,
    MAX_ENVELOPE_BYTES,
    MAX_NAME_CHARS,
    MAX_REASON_CHARS,
)

_T = TypeVar("_T")


def compute_slot_constructor(cls: type[_T]) -> Callable[..., _T]:
    """A constructor of the frozen, slotted dataclass ``cls`` from values already checked,
    every field given in order, that sets the slots directly.

    Decoding builds three or four of these per transaction. The generated ``__init__``
    goes through ``type.__call__``, keyword handling and ``object.__setattr__`` per
    field; setting each slot through its descriptor costs less than half (1.0 against
    2.4 µs for an envelope). Generated, as ``dataclasses`` generates ``__init__``, so
    the fields are positional parameters and not a loop.
    """
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    namespace: dict[str, Any] = {"new": object.__new__, "cls": cls}
    for name in names:
        namespace[f"set_{name}"] = cls.__dict__[name].__set__
    body = "".join(f"    set_{name}(obj, {name})\n" for name in names)
    exec(f"def construct({', '.join(names)}):\n    obj = new(cls)\n{body}    return obj\n", namespace)  # noqa: S102
    construct: Callable[..., _T] = namespace["construct"]
    return construct


MAX_NONCE = 2**64 - 1

KIND_DOC_ISSUE = "doc.issue"
KIND_DOC_AMEND = "doc.amend"
KIND_DOC_REVOKE = "doc.revoke"
KIND_OFFICER_REGISTER = "officer.register"
KIND_OFFICER_REVOKE = "officer.revoke"
KIND_GOV_PROPOSE = "gov.propose"
KIND_GOV_APPROVE = "gov.approve"
KIND_ZONE_ROTATE_KEYS = "zone.rotate_keys"

STATUS_ACTIVE = "active"
"""A document's status in its state-tree value (DESIGN §6) from its issue on."""
STATUS_REVOKED = "revoked"
"""Its status once a ``doc.revoke`` has been committed."""

_ZONE_ID = re.compile(r"[A-Z]{2}-[A-Z0-9][A-Z0-9-]{0,30}\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Everything split_doc_id checks, at once: a zone id, "/", a number without controls.
_WELL_FORMED_DOC_ID = re.compile(r"[A-Z]{2}-[A-Z0-9][A-Z0-9-]{0,30}/[^\x00-\x1f\x7f]+\Z")
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$")


def is_valid_zone_id(zone_id: str) -> bool:
    return bool(_ZONE_ID.match(zone_id))


def split_doc_id(doc_id: str) -> tuple[str, str]:
    """``"<zone_id>/<number>"`` into its parts, or raise ``MalformedTransactionError``."""
    zone_id, sep, number = doc_id.partition("/")
    if len(doc_id) <= MAX_DOC_ID_CHARS and _WELL_FORMED_DOC_ID.match(doc_id):
        return zone_id, number  # one match for the common case; the checks below name a fault
    if not sep or not number or not is_valid_zone_id(zone_id):
        raise MalformedTransactionError(f"doc_id: expected \"<zone_id>/<number>\", got {bounded_repr(doc_id)}")
    if len(doc_id) > MAX_DOC_ID_CHARS:
        raise MalformedTransactionError(f"doc_id: expected at most {MAX_DOC_ID_CHARS} characters, got {len(doc_id)}")
    if _CONTROL.search(number):
        raise MalformedTransactionError("doc_id: expected no control characters in the number")
    return zone_id, number


def _bounded_text(value: Any, what: str, limit: int, *, allow_empty: bool = False) -> str:
    text = expect_str(value, what)
    if not allow_empty and not text.strip():
        raise MalformedTransactionError(f"{what}: expected text, got an empty string")
    if len(text) > limit:
        raise MalformedTransactionError(f"{what}: expected at most {limit} characters, got {len(text)}")
    return text


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file registered beside a document (e.g. the PDF a trader receives)."""

    name: str
    """File name as the issuer gave it."""
    media_type: str
    """MIME type, e.g. ``application/pdf``."""
    sha256: bytes
    """``H(file bytes)``; the file verifies by this hash."""
    size: int
    """File size in bytes."""

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name, "media_type": self.media_type, "sha256": self.sha256, "size": self.size}

    @classmethod
    def from_wire(cls, value: Any, what: str) -> Attachment:
        try:
            m = expect_map(value, what, frozenset({"name", "media_type", "sha256", "size"}))
            name = _bounded_text(m["name"], f"{what}.name", MAX_NAME_CHARS)
            media_type = expect_str(m["media_type"], f"{what}.media_type")
            sha = expect_bytes(m["sha256"], f"{what}.sha256", 32)
            size = expect_int(m["size"], f"{what}.size")
        except EncodingError as exc:
            raise AttachmentError(str(exc)) from exc
        if not _MEDIA_TYPE.match(media_type):
            raise AttachmentError(f"{what}.media_type: expected a MIME type, got {bounded_repr(media_type)}")
        return cls(name, media_type, sha, size)


def _attachments_from_wire(value: Any) -> tuple[Attachment, ...]:
    items = expect_list(value, "body.attachments")
    if not items:
        return ()  # most documents carry none: skip building the checks below
    if len(items) > MAX_ATTACHMENTS:
        raise AttachmentError(f"body.attachments: expected at most {MAX_ATTACHMENTS}, got {len(items)}")
    attachments = tuple(Attachment.from_wire(item, f"body.attachments[{i}]") for i, item in enumerate(items))
    if len({a.sha256 for a in attachments}) != len(attachments):
        raise AttachmentError("body.attachments: expected distinct files, got the same sha256 twice")
    return attachments


def doc_id_parts(doc_id: str) -> tuple[str, str]:
    """Zone and number of a ``doc_id`` already checked by :func:`split_doc_id` (on decoding)."""
    zone_id, _, number = doc_id.partition("/")
    return zone_id, number


class _NamesDocument:
    """The parts of ``doc_id`` for the three document transactions."""

    __slots__ = ()
    doc_id: str

    @property
    def zone_id(self) -> str:
        """The zone part of ``doc_id`` (``from_wire`` checked its shape)."""
        return doc_id_parts(self.doc_id)[0]

    @property
    def number(self) -> str:
        """The document's own number: the part of ``doc_id`` after the zone."""
        return doc_id_parts(self.doc_id)[1]


@dataclass(frozen=True, slots=True)
class DocIssue(_NamesDocument):
    """Registers a new document."""

    KIND: ClassVar[str] = KIND_DOC_ISSUE
    FIELDS: ClassVar[frozenset[str]] = frozenset({"doc_type", "doc_id", "doc_hash", "attachments"})
    doc_type: str
    """One of :data:`ledger.documents.DOC_TYPES`."""
    doc_id: str
    """``"<zone_id>/<number>"``; the number is the document's own."""
    doc_hash: bytes
    """``H(JCS(document))``."""
    attachments: tuple[Attachment, ...] = ()
    """Files registered with this version."""

    def to_wire(self) -> dict[str, Any]:
        return {
            "doc_type": self.doc_type,
            "doc_id": self.doc_id,
            "doc_hash": self.doc_hash,
            "attachments": [a.to_wire() for a in self.attachments],
        }

    @classmethod
    def from_wire(cls, m: dict[str, Any]) -> DocIssue:
        doc_id = _bounded_text(m["doc_id"], "body.doc_id", MAX_DOC_ID_CHARS)
        split_doc_id(doc_id)
        return _new_doc_issue(
            _bounded_text(m["doc_type"], "body.doc_type", 64),
            doc_id,
            expect_bytes(m["doc_hash"], "body.doc_hash", 32),
            _attachments_from_wire(m["attachments"]),
        )


_new_doc_issue = compute_slot_constructor(DocIssue)


@dataclass(frozen=True, slots=True)
class DocAmend(_NamesDocument):
    """Replaces the current version of a document with a new one."""

    KIND: ClassVar[str] = KIND_DOC_AMEND
    FIELDS: ClassVar[frozenset[str]] = frozenset({"doc_id", "doc_hash", "supersedes", "reason", "attachments"})
    doc_id: str
    """The document being amended."""
    doc_hash: bytes
    """Hash of the new version."""
    supersedes: bytes
    """Hash of the version being replaced; must be the current one."""
    reason: str
    """Why, in the officer's words."""
    attachments: tuple[Attachment, ...] = ()
    """Files registered with the new version."""

    def to_wire(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "doc_hash": self.doc_hash,
            "supersedes": self.supersedes,
            "reason": self.reason,
            "attachments": [a.to_wire() for a in self.attachments],
        }

    @classmethod
    def from_wire(cls, m: dict[str, Any]) -> DocAmend:
        doc_id = _bounded_text(m["doc_id"], "body.doc_id", MAX_DOC_ID_CHARS)
        split_doc_id(doc_id)
        return cls(
            doc_id,
            expect_bytes(m["doc_hash"], "body.doc_hash", 32),
            expect_bytes(m["supersedes"], "body.supersedes", 32),
            _bounded_text(m["reason"], "body.reason", MAX_REASON_CHARS),
            _attachments_from_wire(m["attachments"]),
        )


@dataclass(frozen=True, slots=True)
class DocRevoke(_NamesDocument):
    """Withdraws a document; it stays on the log, marked revoked."""

    KIND: ClassVar[str] = KIND_DOC_REVOKE
    FIELDS: ClassVar[frozenset[str]] = frozenset({"doc_id", "doc_hash", "reason"})
    doc_id: str
    """The document being revoked."""
    doc_hash: bytes
    """Its current version's hash."""
    reason: str
    """Why, in the officer's words."""

    def to_wire(self) -> dict[str, Any]:
        return {"doc_id": self.doc_id, "doc_hash": self.doc_hash, "reason": self.reason}

    @classmethod
    def from_wire(cls, m: dict[str, Any]) -> DocRevoke:
        doc_id = _bounded_text(m["doc_id"], "body.doc_id", MAX_DOC_ID_CHARS)
        split_doc_id(doc_id)
        return cls(
            doc_id,
            expect_bytes(m["doc_hash"], "body.doc_hash", 32),
            _bounded_text(m["reason"], "body.reason", MAX_REASON_CHARS),
        )


@dataclass(frozen=True, slots=True)
class OfficerRegister:
    """A zone admin authorises an officer key for that zone."""

    KIND: ClassVar[str] = KIND_OFFICER_REGISTER
    FIELDS: ClassVar[frozenset[str]] = frozenset({"zone_id", "officer_key"})
    zone_id: str
    """The admin's zone."""
    officer_key: bytes
    """The officer's Ed25519 public key."""

    def to_wire(self) -> dict[str, Any]:
        return {"zone_id": self.zone_id, "officer_key": self.officer_key}

    @classmethod
    def from_wire(cls, m: dict[str, Any]) -> OfficerRegister:
        return cls(expect_str(m["zone_id"], "body.zone_id"), expect_bytes(m["officer_key"], "body.officer_key", 32))


@dataclass(frozen=True, slots=True)
class OfficerRevoke:
    """A zone admin withdraws an officer key; it can never be registered again."""

    KIND: ClassVar[str] = KIND_OFFICER_REVOKE
    FIELDS: ClassVar[frozenset[str]] = frozenset({"zone_id", "officer_key"})
    zone_id: str
    """The admin's zone."""
    officer_key: bytes
    """The officer's Ed25519 public key."""

    def to_wire(self) -> dict[str, Any]:
        return {"zone_id": self.zone_id, "officer_key": self.officer_key}

    @classmethod
    def from_wire(cls, m: dict[str, Any]) -> OfficerRevoke:
        return cls(expect_str(m["zone_id"], "body.zone_id"), expect_bytes(m["officer_key"], "body.officer_key", 32))


@dataclass(frozen=True, slots=True)
class GovPropose:
    """A zone admin proposes a change of the alliance; the proposer's approval counts."""

    KIND: ClassVar[str] = KIND_GOV_PROPOSE
    FIELDS: ClassVar[frozenset[str] | None] = frozenset({"action", "expires_height"})
    action: Action
    """What executes once enough admins approve."""
    expires_height: int
    """The last height at which an approval counts."""

    def to_wire(self) -> dict[str, Any]:
        return {"action": self.action.to_wire(), "expires_height": self.expires_height}

    @classmethod
    def from_wire(cls, m: dict[str, Any]) -> GovPropose:
        return cls(decode_action(m["action"]), expect_int(m["expires_height"], "body.expires_height"))


@dataclass(frozen=True, slots=True)
class GovApprove:
    """A zone admin approves an open proposal, named by its propose transaction's hash."""

    KIND: ClassVar[str] = KIND_GOV_APPROVE
    FIELDS: ClassVar[frozenset[str] | None] = frozenset({"proposal_id"})
    proposal_id: bytes

    def to_wire(self) -> dict[str, Any]:
        return {"proposal_id": self.proposal_id}

    @classmethod
    def from_wire(cls, m: dict[str, Any]) -> GovApprove:
        return cls(expect_bytes(m["proposal_id"], "body.proposal_id", 32))


@dataclass(frozen=True, slots=True)
class ZoneRotateKeys:
    """A zone's current admin replaces its own keys (self-service rotation)."""

    KIND: ClassVar[str] = KIND_ZONE_ROTATE_KEYS
    FIELDS: ClassVar[frozenset[str] | None] = None  # optional keys: checked by KeyChange.parse
    change: KeyChange

    @property
    def zone_id(self) -> str:
        return self.change.zone_id

    def to_wire(self) -> dict[str, Any]:
        return self.change.wire_fields()

    @classmethod
    def from_wire(cls, m: dict[str, Any]) -> ZoneRotateKeys:
        return cls(KeyChange.parse(m, "body", frozenset({"zone_id", "possession"})))


Body = DocIssue | DocAmend | DocRevoke | OfficerRegister | OfficerRevoke | GovPropose | GovApprove | ZoneRotateKeys
BODY_TYPES: dict[str, Any] = {
    cls.KIND: cls
    for cls in (DocIssue, DocAmend, DocRevoke, OfficerRegister, OfficerRevoke, GovPropose, GovApprove, ZoneRotateKeys)
}
GOVERNANCE_KINDS = frozenset({KIND_GOV_PROPOSE, KIND_GOV_APPROVE, KIND_ZONE_ROTATE_KEYS})
DOCUMENT_KINDS = frozenset({KIND_DOC_ISSUE, KIND_DOC_AMEND, KIND_DOC_REVOKE})
KINDS_WITH_CONTENT = frozenset({KIND_DOC_ISSUE, KIND_DOC_AMEND})

# map header (1) + "sig" (4) + bin8 header (2) + signature (64) + "tx" (3)
_TX_OFFSET = 1 + 4 + 2 + 64 + 3


def _signed_bytes(data: bytes) -> bytes:
    """What an envelope's signature covers: ``TX_DOMAIN || cb(tx)``. The envelope is
    canonical with keys "sig" < "tx", so ``cb(tx)`` is exactly the bytes after the "tx"
    key: no need to encode the transaction again."""
    return TX_DOMAIN + data[_TX_OFFSET:]
_TX_FIELDS = frozenset({"chain_id", "kind", "signer", "nonce", "body"})
_ENVELOPE_FIELDS = frozenset({"tx", "sig"})


@dataclass(frozen=True, slots=True)
class Transaction:
    """The signed part of an envelope."""

    chain_id: str
    """The genesis ``chain_id``; a transaction for another chain is refused."""
    signer: bytes
    """Ed25519 public key of the officer or admin who signs."""
    nonce: int
    """Any uint64 the signer chooses; makes otherwise equal transactions distinct."""
    body: Body
    """The kind-specific body; its class fixes ``kind``."""

    @property
    def kind(self) -> str:
        return self.body.KIND

    def to_wire(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "kind": self.kind,
            "signer": self.signer,
            "nonce": self.nonce,
            "body": self.body.to_wire(),
        }

    def signing_bytes(self) -> bytes:
        return signing_bytes(TX_DOMAIN, self.to_wire())

    def sign(self, key: SigningKey) -> Envelope:
        if key.public != self.signer:
            raise SignatureInvalidError("signer: expected the signing key's public key, got another key")
        sig = key.sign_bytes(self.signing_bytes())
        return Envelope.create(self, sig)


@dataclass(frozen=True, slots=True)
class Envelope:
    """``{"tx": T, "sig": bytes64}`` with its canonical bytes kept beside it."""

    tx: Transaction
    """The signed transaction."""
    sig: bytes
    """Ed25519 signature over ``TX_DOMAIN || cb(tx)``."""
    encoded: bytes = field(compare=False, repr=False)
    """``cb(envelope)``: the log leaf and the preimage of ``tx_hash``."""
    signed: bytes = field(compare=False, repr=False)
    """``TX_DOMAIN || cb(tx)``: what ``sig`` covers."""
    tx_hash: bytes = field(compare=False, repr=False)
    """``H(cb(envelope))``."""

    @classmethod
    def create(cls, tx: Transaction, sig: bytes) -> Envelope:
        encoded = cb({"tx": tx.to_wire(), "sig": sig})
        return cls(tx, sig, encoded=encoded, tx_hash=H(encoded), signed=tx.signing_bytes())

    def encode(self) -> bytes:
        return self.encoded

    @classmethod
    def decode(cls, data: bytes) -> Envelope:
        """Parse canonical envelope bytes into a typed envelope, or raise.

        A node meets the same envelope several times (admission, proposal, execution);
        envelopes are immutable, so those whose signatures verified are remembered by
        their bytes (:func:`remember_verified_envelope`) and found here again.
        """
        cached = _VERIFIED.get(data)
        if cached is not None:
            return cached
        return cls._decode(data)

    @classmethod
    def _decode(cls, data: bytes) -> Envelope:
        if len(data) > MAX_ENVELOPE_BYTES:
            raise TransactionTooLargeError(f"expected at most {MAX_ENVELOPE_BYTES} bytes, got {len(data)}")
        value = decode_cb(data)
        tx = _checked_transaction(value)
        return _new_envelope(tx, value["sig"], data, _signed_bytes(data), H(data))


def _checked_transaction(value: Any) -> Transaction:
    """The transaction of a decoded envelope, each field checked in turn: raises the
    error naming the first that is wrong."""
    env = expect_map(value, "envelope", _ENVELOPE_FIELDS)
    expect_bytes(env["sig"], "sig", 64)
    t = expect_map(env["tx"], "tx", _TX_FIELDS)
    chain_id = expect_str(t["chain_id"], "tx.chain_id")
    kind = expect_str(t["kind"], "tx.kind")
    signer = expect_bytes(t["signer"], "tx.signer", 32)
    nonce = expect_int(t["nonce"], "tx.nonce")
    body_type = BODY_TYPES.get(kind)
    if body_type is None:
        raise UnknownKindError(f"tx.kind: expected one of {sorted(BODY_TYPES)}, got {bounded_repr(kind)}")
    body = body_type.from_wire(expect_map(t["body"], "tx.body", body_type.FIELDS))
    if nonce > MAX_NONCE:
        raise MalformedTransactionError(f"tx.nonce: expected a uint64, got {nonce}")
    return _new_transaction(chain_id, signer, nonce, body)


_new_envelope = compute_slot_constructor(Envelope)
_new_transaction = compute_slot_constructor(Transaction)


# --- the memory of verified envelopes --------------------------------------------------
#
# Filled only with envelopes whose signature verified, so bytes nobody signed never
# take a place in it, and bounded by bytes, not entries: one envelope may be 16 KiB. It
# is read on the event loop and filled from worker threads too, hence the lock (reads
# are single dict lookups and need none).

_VERIFIED: dict[bytes, Envelope] = {}
_VERIFIED_COST: dict[bytes, int] = {}
_verified_bytes = 0
_verified_lock = threading.Lock()
_ENTRY_OVERHEAD_BYTES = 1024
"""The objects of one decoded envelope beyond its byte strings (measured: ~1 KB)."""


def compute_envelope_cost(envelope: Envelope) -> int:
    """What remembering ``envelope`` counts against ``MAX_DECODED_ENVELOPES_BYTES``: its
    bytes, what its signature covers, its decoded fields (each about the envelope's
    size) and its objects."""
    return 3 * len(envelope.encoded) + _ENTRY_OVERHEAD_BYTES


def remember_verified_envelope(envelope: Envelope) -> None:
    """Keep ``envelope``, whose signature has verified, so that decoding its bytes again
    costs one lookup and its signature need not be checked again; the oldest are
    forgotten beyond ``MAX_DECODED_ENVELOPES_BYTES``."""
    global _verified_bytes
    key = envelope.encoded
    if key in _VERIFIED:
        return
    cost = compute_envelope_cost(envelope)
    with _verified_lock:
        if key in _VERIFIED:
            return
        while _VERIFIED and _verified_bytes + cost > MAX_DECODED_ENVELOPES_BYTES:
            oldest = next(iter(_VERIFIED))
            del _VERIFIED[oldest]
            _verified_bytes -= _VERIFIED_COST.pop(oldest)
        _VERIFIED[key] = envelope
        _VERIFIED_COST[key] = cost
        _verified_bytes += cost


def get_verified_envelope(data: bytes) -> Envelope | None:
    """The remembered envelope of ``data`` if its signature verified in this process, else None."""
    return _VERIFIED.get(data)


def get_verified_envelopes_bytes() -> int:
    """How many bytes the remembered envelopes count for (tests, metrics)."""
    return _verified_bytes


def forget_decoded_envelopes() -> None:
    """Empty the memory of verified envelopes (a benchmark that built its chain in this
    process measures a replay as a fresh auditor process would run it)."""
    global _verified_bytes
    with _verified_lock:
        _VERIFIED.clear()
        _VERIFIED_COST.clear()
        _verified_bytes = 0


def validate_chain_id(envelope: Envelope, chain_id: str) -> None:
    if envelope.tx.chain_id != chain_id:
        raise WrongChainError(
            f"tx.chain_id: expected {chain_id!r}, got {bounded_repr(envelope.tx.chain_id)}",
            expected=repr(chain_id), found=bounded_repr(envelope.tx.chain_id),
        )


def validate_signature(envelope: Envelope) -> None:
    """The envelope's signature is by ``tx.signer`` over the tx domain and ``tx``."""
    verify_bytes(envelope.tx.signer, envelope.signed, envelope.sig, SignatureInvalidError, "tx signature")
