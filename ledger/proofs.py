"""Proof bundles: what a trader or auditor verifies offline, trusting only genesis (DESIGN §9).

This module owns the bundle's two sides:

* :func:`build_bundle` reads one document's proof out of a :class:`~ledger.chain.Chain`
  on its newest committed header: the current version's transaction with its inclusion
  proof, the state value and state proof, every transaction of the document (issue,
  amendments, revocation) each with its inclusion proof, the header and its commit
  certificate. It costs O(versions x log n) storage reads, never a scan.
  :func:`bundle_for_hash` finds which document a hash belongs to.
* :func:`verify_bundle` checks a bundle against a genesis and the hash of the copy the
  trader holds, and returns a :class:`Verification`: one :class:`Check` per rule, in
  a fixed order with stable codes (the web page and the CLI print them), the facts a
  trader wants (zone, officer, commit time, signing validators, timeline) and a
  verdict. Each rule is a ``validate_*`` function that returns a plain sentence or
  raises a :class:`~ledger.errors.LedgerError`.

Check codes, in order: ``genesis``, ``validators``, ``header``, ``commit``,
``inclusion``, ``signature``, ``issuer``, ``integrity``, ``history``, ``status``.

Verdicts: a failed check other than ``integrity`` makes the bundle ``unsound`` (it
proves nothing). In a sound bundle, a copy equal to the current version (or one of its
attachments) is ``valid``, or ``revoked`` when the document is revoked; a copy equal
to an older version is ``amended`` (``revoked`` when the document was revoked since,
because no version of it stands); a copy equal to none is ``tampered``. ``unknown``
(no bundle at all) is the caller's to decide. ``valid`` requires every check to pass.

:func:`verify_checkpoint` applies the ``genesis``/``validators``/``header``/``commit``
rules to a node's ``/v1/checkpoint`` answer, for the log monitor (``zoneledger watch``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from ledger.blocks import CommitCertificate, Header, compute_quorum, validate_commit
from ledger.chain import STATUS_ACTIVE, STATUS_REVOKED, Chain, HistoryEntry
from ledger.encoding import H, decode_cb, expect_bytes, expect_int, expect_map, expect_str
from ledger.errors import (
    BundleGenesisError,
    BundleHeaderError,
    BundleHistoryError,
    BundleIssuerError,
    BundleMalformedError,
    BundleStatusError,
    BundleValidatorsError,
    CopyMismatchError,
    EncodingError,
    LedgerError,
    MalformedTransactionError,
    NotFoundError,
    StoreCorruptError,
)
from ledger.genesis import Genesis
from ledger.merkle import verify_inclusion
from ledger.smt import StateProof, verify_state_proof
from ledger.transactions import (
    KIND_DOC_AMEND,
    KIND_DOC_ISSUE,
    DocAmend,
    DocIssue,
    DocRevoke,
    Envelope,
    split_doc_id,
    validate_signature,
)

__all__ = [
    "BUNDLE_FIELDS",
    "CHECK_CODES",
    "FORMAT",
    "VERDICTS",
    "Check",
    "SigningValidator",
    "TimelineEntry",
    "Verification",
    "build_bundle",
    "bundle_for_hash",
    "verify_bundle",
    "verify_checkpoint",
]

FORMAT = "zoneledger-proof/1"
BUNDLE_FIELDS = frozenset({
    "format", "chain_id", "genesis_hash", "document_hash", "tx", "log_index", "header", "header_fields",
    "commit", "validators", "inclusion_proof", "state_value", "state_proof", "history",
})
CHECKPOINT_FIELDS = frozenset({
    "header", "header_fields", "block_hash", "commit", "validators", "chain_id", "genesis_hash",
})
_HISTORY_FIELDS = frozenset({"tx", "log_index", "inclusion_proof"})
_STATE_VALUE_FIELDS = frozenset({"doc_hash", "status", "version", "log_index"})
# A proof longer than this cannot belong to a log of at most 2^64 leaves.
_MAX_PROOF_HASHES = 64
# Documents have a handful of versions; this only bounds work on a hostile bundle.
_MAX_HISTORY = 10_000

VALID = "valid"
AMENDED = "amended"
REVOKED = "revoked"
TAMPERED = "tampered"
UNSOUND = "unsound"
UNKNOWN = "unknown"
VERDICTS = (VALID, AMENDED, REVOKED, TAMPERED, UNSOUND, UNKNOWN)

MATCH_DOCUMENT = "document"
MATCH_ATTACHMENT = "attachment"

CHECK_CODES = (
    "genesis", "validators", "header", "commit", "inclusion", "signature", "issuer", "integrity", "history",
    "status",
)
_TITLES = {
    "genesis": "Made for your alliance's chain",
    "validators": "Validators are the ones in genesis",
    "header": "Block header is well formed",
    "commit": "Block certified by a quorum of validators",
    "inclusion": "Transaction recorded in the ledger",
    "signature": "Signed by the issuing officer's key",
    "issuer": "Issued by an officer of a member zone",
    "integrity": "Your copy matches a registered version",
    "history": "Document history is complete and in order",
    "status": "Current status proven by the state tree",
}
_FAILURES = {
    "genesis": "This proof was not made for the chain your genesis file describes.",
    "validators": "This proof names validators other than those in your genesis file.",
    "header": "The block header in this proof is unreadable or does not belong to this chain.",
    "commit": "The block was not certified by enough of the alliance's validators.",
    "inclusion": "The transaction is not shown to be in the ledger's log.",
    "signature": "The transaction is unreadable or its signature does not verify.",
    "issuer": "The issuing zone is not a member of the alliance.",
    "integrity": "Your copy matches no version of this document registered on the ledger.",
    "history": "The document's history in this proof is incomplete or out of order.",
    "status": "The document's current status is not proven by this proof.",
}


# --- results -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    """One rule's outcome, in words a trader understands."""

    code: str
    """Stable check code, one of :data:`CHECK_CODES`."""
    ok: bool
    """Whether the rule holds."""
    title: str
    """Short name of the rule."""
    detail: str
    """One or two plain sentences: what was found, or what is wrong."""

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "ok": self.ok, "title": self.title, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class SigningValidator:
    """A validator whose precommit is in the commit certificate."""

    index: int
    """Position in the validator set."""
    zone_id: str
    """The zone that runs it (from genesis)."""

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "zone_id": self.zone_id}


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One transaction of the document, in log order."""

    kind: str
    """``doc.issue``, ``doc.amend`` or ``doc.revoke``."""
    version: int
    """The version it issued, introduced or revoked."""
    doc_hash: str
    """That version's hash, hex."""
    reason: str | None
    """The officer's reason (amendments and revocations)."""
    log_index: int
    """Its leaf in the document log (the bundle carries only the newest header, so no
    per-transaction height or time)."""
    signer: str
    """The officer key that signed it, hex."""

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "version": self.version, "doc_hash": self.doc_hash, "reason": self.reason,
            "log_index": self.log_index, "signer": self.signer,
        }


@dataclass(frozen=True, slots=True)
class Verification:
    """The verdict on a copy, the checks behind it and the facts the bundle proves."""

    verdict: str
    """``valid``, ``amended``, ``revoked``, ``tampered`` or ``unsound``."""
    checks: tuple[Check, ...]
    """Every check, in :data:`CHECK_CODES` order."""
    doc_id: str | None = None
    """``"<zone_id>/<number>"``, when the transaction could be read."""
    doc_type: str | None = None
    """From the issue transaction."""
    zone_id: str | None = None
    """Issuing zone (the ``doc_id`` prefix)."""
    zone_name: str | None = None
    """Its name in genesis."""
    signer: str | None = None
    """Officer key that signed the current version, hex."""
    signer_in_genesis: bool | None = None
    """Whether that key is an officer listed in genesis for the zone."""
    version: int | None = None
    """Current version number."""
    document_hash: str | None = None
    """Current version's hash, hex."""
    matched: str | None = None
    """``document`` or ``attachment`` when the copy matched a registered version."""
    matched_version: int | None = None
    """The version the copy matched."""
    matched_attachment: str | None = None
    """The attachment's file name, when an attachment matched."""
    height: int | None = None
    """Height of the header the proof is built on."""
    commit_time_ms: int | None = None
    """That header's time (Unix ms, the proposer's clock)."""
    signing_validators: tuple[SigningValidator, ...] = ()
    """Validators whose precommits certify that header."""
    timeline: tuple[TimelineEntry, ...] = ()
    """The document's transactions in log order."""
    revocation_reason: str | None = None
    """Why it was revoked, when it was."""

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "checks": [check.to_json() for check in self.checks],
            "doc_id": self.doc_id,
            "doc_type": self.doc_type,
            "zone_id": self.zone_id,
            "zone_name": self.zone_name,
            "signer": self.signer,
            "signer_in_genesis": self.signer_in_genesis,
            "version": self.version,
            "document_hash": self.document_hash,
            "matched": self.matched,
            "matched_version": self.matched_version,
            "matched_attachment": self.matched_attachment,
            "height": self.height,
            "commit_time_ms": self.commit_time_ms,
            "signing_validators": [v.to_json() for v in self.signing_validators],
            "timeline": [entry.to_json() for entry in self.timeline],
            "revocation_reason": self.revocation_reason,
        }


# --- building --------------------------------------------------------------------------


def _get_tx_bytes(chain: Chain, entry: HistoryEntry, blocks: dict[int, tuple[bytes, ...]]) -> bytes:
    """The envelope bytes of a history entry: its location, then its block (one read per block)."""
    location = chain.get_tx_location(entry.tx_hash)
    if location is None:
        raise StoreCorruptError(f"expected a location for transaction {entry.tx_hash.hex()}, got none")
    txs = blocks.get(location.height)
    if txs is None:
        stored = chain.get_stored_block(location.height)
        if stored is None:
            raise StoreCorruptError(f"expected block {location.height}, got none")
        txs = blocks[location.height] = stored.txs
    if not 0 <= location.index < len(txs) or H(txs[location.index]) != entry.tx_hash:
        raise StoreCorruptError(f"expected transaction {entry.tx_hash.hex()} at {location}, got another")
    return txs[location.index]


def build_bundle(chain: Chain, doc_id: str) -> dict[str, Any]:
    """The DESIGN §9 bundle of ``doc_id`` on the newest committed header; NotFoundError if unknown."""
    header = chain.head_header
    if header is None:
        raise NotFoundError("expected a committed block, got an empty chain")
    commit = chain.get_commit(chain.height)
    if commit is None:
        raise StoreCorruptError(f"expected the commit certificate of height {chain.height}, got none")
    record = chain.get_doc(doc_id)
    if record is None:
        raise NotFoundError(f"expected a registered document, got no {doc_id!r}")
    log = chain.log()
    size = header.log_size
    blocks: dict[int, tuple[bytes, ...]] = {}
    history = []
    current: bytes | None = None
    for entry in chain.get_history(doc_id, record.history_len):
        tx = _get_tx_bytes(chain, entry, blocks)
        if entry.log_index == record.log_index:
            current = tx
        history.append({
            "tx": tx.hex(),
            "log_index": entry.log_index,
            "inclusion_proof": [p.hex() for p in log.inclusion_proof(entry.log_index, size)],
        })
    if current is None:
        raise StoreCorruptError(f"{doc_id}: expected its current version in its history, got none")
    key = H(doc_id.encode("utf-8"))
    tree = chain.state_tree()
    if tree.root() != header.state_root:
        raise StoreCorruptError(f"expected state root {header.state_root.hex()}, got {tree.root().hex()}")
    state_value = tree.get(key)
    if state_value is None:
        raise StoreCorruptError(f"{doc_id}: expected a state tree value, got none")
    return {
        "format": FORMAT,
        "chain_id": chain.genesis.chain_id,
        "genesis_hash": chain.genesis.genesis_hash.hex(),
        "document_hash": record.doc_hash.hex(),
        "tx": current.hex(),
        "log_index": record.log_index,
        "header": header.encode().hex(),
        "header_fields": header.to_json(),
        "commit": commit.to_json(),
        "validators": [v.hex() for v in chain.genesis.validators],
        "inclusion_proof": [p.hex() for p in log.inclusion_proof(record.log_index, size)],
        "state_value": state_value.hex(),
        "state_proof": tree.prove(key).to_json(),
        "history": history,
    }


def bundle_for_hash(chain: Chain, h: bytes) -> tuple[str, str] | None:
    """``(doc_id, "document" | "attachment")`` for a document hash of any version or an attachment's sha256."""
    found = chain.get_doc_by_hash(h)
    if found is not None:
        return found[0], MATCH_DOCUMENT
    attachment = chain.get_attachment(h)
    if attachment is not None:
        return str(attachment["doc_id"]), MATCH_ATTACHMENT
    return None


# --- parsing an untrusted bundle ---------------------------------------------------------


def _parse_hex(value: Any, what: str, size: int | None = None) -> bytes:
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


def _parse_int(value: Any, what: str) -> int:
    if type(value) is not int or value < 0:
        raise BundleMalformedError(f"{what}: expected a non-negative integer, got {value!r:.40}")
    return value


def _parse_hashes(value: Any, what: str) -> list[bytes]:
    if type(value) is not list or len(value) > _MAX_PROOF_HASHES:
        raise BundleMalformedError(f"{what}: expected a list of at most {_MAX_PROOF_HASHES} hashes")
    return [_parse_hex(item, f"{what}[{i}]", 32) for i, item in enumerate(value)]


def _parse_envelope(data: bytes, what: str) -> Envelope:
    try:
        return Envelope.decode(data)
    except LedgerError as exc:
        raise BundleMalformedError(f"{what}: expected a canonical transaction envelope, got: {exc}") from exc


@dataclass(frozen=True, slots=True)
class _Entry:
    """One parsed history entry."""

    tx: bytes
    envelope: Envelope
    log_index: int
    proof: list[bytes]


@dataclass(frozen=True, slots=True)
class _Match:
    """Which registered version the copy equals."""

    kind: str
    version: int
    current: bool
    attachment: str | None = None


class _Evidence:
    """An untrusted bundle (or checkpoint), parsed piece by piece on first use.

    Each piece raises when malformed, so a check that needs a broken piece fails with
    the reason instead of the whole verification crashing.
    """

    def __init__(self, raw: Any, genesis: Genesis) -> None:
        self.raw = raw
        self.genesis = genesis
        self.match: _Match | None = None

    def get(self, name: str) -> Any:
        if type(self.raw) is not dict or name not in self.raw:
            raise BundleMalformedError(f"expected a field {name!r}, got none")
        return self.raw[name]

    @cached_property
    def header_bytes(self) -> bytes:
        return _parse_hex(self.get("header"), "header")

    @cached_property
    def header(self) -> Header:
        try:
            return Header.decode(self.header_bytes)
        except LedgerError as exc:
            raise BundleHeaderError(f"header: expected canonical header bytes, got: {exc}") from exc

    @cached_property
    def commit(self) -> CommitCertificate:
        return CommitCertificate.from_json(self.get("commit"))

    @cached_property
    def tx(self) -> bytes:
        return _parse_hex(self.get("tx"), "tx")

    @cached_property
    def envelope(self) -> Envelope:
        envelope = _parse_envelope(self.tx, "tx")
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
        return _parse_int(self.get("log_index"), "log_index")

    @cached_property
    def history(self) -> list[_Entry]:
        raw = self.get("history")
        if type(raw) is not list or not 0 < len(raw) <= _MAX_HISTORY:
            raise BundleMalformedError(f"history: expected a non-empty list of at most {_MAX_HISTORY} entries")
        entries = []
        for i, item in enumerate(raw):
            where = f"history[{i}]"
            if type(item) is not dict or item.keys() != _HISTORY_FIELDS:
                raise BundleMalformedError(f"{where}: expected exactly the fields {sorted(_HISTORY_FIELDS)}")
            tx = _parse_hex(item["tx"], f"{where}.tx")
            entries.append(_Entry(
                tx, _parse_envelope(tx, f"{where}.tx"), _parse_int(item["log_index"], f"{where}.log_index"),
                _parse_hashes(item["inclusion_proof"], f"{where}.inclusion_proof"),
            ))
        return entries

    @property
    def versions(self) -> list[_Entry]:
        """History entries that introduce a version (issue, amendments), version = position + 1."""
        return [e for e in self.history if e.envelope.tx.kind in (KIND_DOC_ISSUE, KIND_DOC_AMEND)]

    @property
    def revocation(self) -> DocRevoke | None:
        last = self.history[-1].envelope.tx.body
        return last if isinstance(last, DocRevoke) else None


def _reason(envelope: Envelope) -> str | None:
    body = envelope.tx.body
    return body.reason if isinstance(body, DocAmend | DocRevoke) else None


def _zone_names(genesis: Genesis, indexes: Sequence[int]) -> str:
    return ", ".join(genesis.zones[i].zone_id for i in indexes if 0 <= i < len(genesis.zones))


# --- the rules (each returns a plain sentence or raises) -----------------------------------


def validate_bundle_shape(raw: Any) -> None:
    """Exactly the DESIGN §9 fields and the format this verifier reads."""
    if type(raw) is not dict:
        raise BundleMalformedError(f"expected a JSON object, got {type(raw).__name__}")
    if raw.keys() != BUNDLE_FIELDS:
        missing, extra = sorted(BUNDLE_FIELDS - raw.keys()), sorted(raw.keys() - BUNDLE_FIELDS)
        raise BundleMalformedError(f"expected the bundle fields, missing {missing}, unexpected {extra}")
    if raw["format"] != FORMAT:
        raise BundleMalformedError(f"format: expected {FORMAT!r}, got {raw['format']!r:.40}")


def validate_genesis(ev: _Evidence) -> str:
    """``chain_id`` and ``genesis_hash`` are the genesis file's."""
    genesis = ev.genesis
    chain_id = ev.get("chain_id")
    if chain_id != genesis.chain_id:
        raise BundleGenesisError(f"chain_id: expected {genesis.chain_id!r}, got {chain_id!r:.80}")
    genesis_hash = _parse_hex(ev.get("genesis_hash"), "genesis_hash", 32)
    if genesis_hash != genesis.genesis_hash:
        raise BundleGenesisError(f"genesis_hash: expected {genesis.genesis_hash.hex()}, got {genesis_hash.hex()}")
    return (f"The proof is for chain {genesis.chain_id}, the one your genesis file describes "
            f"(genesis hash {genesis.genesis_hash.hex()[:16]}…).")


def validate_validators(ev: _Evidence) -> str:
    """The bundle's validator list is genesis's, in order."""
    raw = ev.get("validators")
    expected = [v.hex() for v in ev.genesis.validators]
    if raw != expected:
        raise BundleValidatorsError(f"validators: expected the {len(expected)} keys of genesis in order, got others")
    zones = ", ".join(zone.zone_id for zone in ev.genesis.zones)
    return f"The {len(expected)} validators named are those of genesis: {zones}."


def validate_header(ev: _Evidence) -> str:
    """Header bytes decode canonically, belong to the chain and the set; ``header_fields`` repeat them."""
    header = ev.header
    genesis = ev.genesis
    if header.chain_id != genesis.chain_id:
        raise BundleHeaderError(f"header.chain_id: expected {genesis.chain_id!r}, got {header.chain_id!r}")
    if header.validators_hash != genesis.validators_hash:
        raise BundleHeaderError(
            f"header.validators_hash: expected {genesis.validators_hash.hex()}, got {header.validators_hash.hex()}"
        )
    if ev.get("header_fields") != header.to_json():
        raise BundleHeaderError("header_fields: expected the decoded header's fields, got different ones")
    return (f"Block {header.height} of chain {header.chain_id}: {header.log_size} transactions logged, "
            f"validated by the genesis validator set.")


def validate_bundle_commit(ev: _Evidence) -> str:
    """The certificate signs ``H(header)`` with a quorum of distinct genesis validators."""
    header = ev.header
    commit = ev.commit
    validators = ev.genesis.validators
    validate_commit(
        commit, chain_id=ev.genesis.chain_id, validators=validators, height=header.height,
        block_hash=H(ev.header_bytes),
    )
    signers = [s.validator for s in commit.signatures]
    return (f"Block {header.height} was certified by {len(signers)} of {len(validators)} validators "
            f"({_zone_names(ev.genesis, signers)}); {compute_quorum(len(validators))} were needed.")


def validate_inclusion(ev: _Evidence) -> str:
    """The current transaction is leaf ``log_index`` of the log the header commits to."""
    header = ev.header
    proof = _parse_hashes(ev.get("inclusion_proof"), "inclusion_proof")
    verify_inclusion(ev.tx, ev.log_index, header.log_size, proof, header.log_root)
    return (f"The transaction is entry {ev.log_index} of the ledger's log of {header.log_size} entries "
            f"certified in block {header.height}.")


def validate_tx_signature(ev: _Evidence) -> str:
    """The current transaction is for this chain and signed by its signer."""
    envelope = ev.envelope
    if envelope.tx.chain_id != ev.genesis.chain_id:
        raise BundleMalformedError(f"tx.chain_id: expected {ev.genesis.chain_id!r}, got {envelope.tx.chain_id!r}")
    validate_signature(envelope)
    return f"The {envelope.tx.kind} transaction carries a valid signature by key {envelope.tx.signer.hex()[:16]}…."


def validate_issuer(ev: _Evidence) -> str:
    """The ``doc_id``'s zone is a member; says whether the signer is an officer listed in genesis."""
    envelope = ev.envelope
    try:
        zone_id, _ = split_doc_id(ev.body.doc_id)
    except MalformedTransactionError as exc:
        raise BundleIssuerError(str(exc)) from exc
    zone = ev.genesis.zone(zone_id)
    if zone is None:
        raise BundleIssuerError(f"doc_id: expected a zone of genesis, got {zone_id!r}")
    key = envelope.tx.signer.hex()[:16]
    if envelope.tx.signer in zone.officers:
        return f"Issued by {zone.zone_id} ({zone.name}); key {key}… is an officer listed in genesis."
    return (f"Issued by {zone.zone_id} ({zone.name}); key {key}… was registered after genesis "
            f"(its authority was checked by the validators that committed it).")


def validate_integrity(ev: _Evidence, copy_hash: bytes) -> str:
    """``copy_hash`` is a registered version's hash or one of its attachments'; records which."""
    versions = ev.versions
    count = len(versions)
    for position, entry in enumerate(reversed(versions)):
        version = count - position
        body = entry.envelope.tx.body
        assert isinstance(body, DocIssue | DocAmend)  # versions holds only these
        current = position == 0
        if body.doc_hash == copy_hash:
            ev.match = _Match(MATCH_DOCUMENT, version, current)
            break
        named = next((a.name for a in body.attachments if a.sha256 == copy_hash), None)
        if named is not None:
            ev.match = _Match(MATCH_ATTACHMENT, version, current, named)
            break
    match = ev.match
    if match is None:
        raise CopyMismatchError(f"expected one of the {count} registered versions, got hash {copy_hash.hex()}")
    what = "Your copy is" if match.kind == MATCH_DOCUMENT else f"Your file is the attachment {match.attachment!r} of"
    if match.current:
        return f"{what} version {match.version}, the current one."
    return f"{what} version {match.version}; it has been replaced by version {count}."


def validate_history(ev: _Evidence) -> str:
    """Every entry is included and signed; issue first; amendments chain; one revocation, last."""
    header = ev.header
    history = ev.history
    doc_id = ev.body.doc_id
    previous_index = -1
    previous_hash: bytes | None = None
    for i, entry in enumerate(history):
        where = f"history[{i}]"
        tx = entry.envelope.tx
        verify_inclusion(entry.tx, entry.log_index, header.log_size, entry.proof, header.log_root)
        if tx.chain_id != ev.genesis.chain_id:
            raise BundleHistoryError(f"{where}: expected chain {ev.genesis.chain_id!r}, got {tx.chain_id!r}")
        validate_signature(entry.envelope)
        if entry.log_index <= previous_index:
            raise BundleHistoryError(f"{where}.log_index: expected above {previous_index}, got {entry.log_index}")
        previous_index = entry.log_index
        body = tx.body
        if not isinstance(body, DocIssue | DocAmend | DocRevoke):
            raise BundleHistoryError(f"{where}: expected a document transaction, got {tx.kind}")
        if body.doc_id != doc_id:
            raise BundleHistoryError(f"{where}.doc_id: expected {doc_id!r}, got {body.doc_id!r}")
        if (i == 0) != isinstance(body, DocIssue):
            raise BundleHistoryError(f"{where}: expected doc.issue first and only first, got {tx.kind}")
        if isinstance(body, DocAmend) and body.supersedes != previous_hash:
            raise BundleHistoryError(f"{where}.supersedes: expected the previous version {previous_hash!r:.20}")
        if isinstance(body, DocRevoke):
            if i != len(history) - 1:
                raise BundleHistoryError(f"{where}: expected a revocation only as the last entry")
            if body.doc_hash != previous_hash:
                raise BundleHistoryError(f"{where}.doc_hash: expected the version it revokes")
        else:
            previous_hash = body.doc_hash
    last = ev.versions[-1]
    if (last.tx, last.log_index) != (ev.tx, ev.log_index):
        raise BundleHistoryError("tx: expected the last issue or amendment of the history, got another")
    versions = len(ev.versions)
    amendments = versions - 1
    revoked = " and revoked" if ev.revocation is not None else ""
    return (f"{len(history)} transaction(s) in order: issued, amended {amendments} time(s){revoked}; "
            f"each is in the certified log and signed.")


def validate_status(ev: _Evidence) -> str:
    """The state proof shows the current value for ``H(doc_id)``, and it agrees with tx and history."""
    header = ev.header
    body = ev.body
    document_hash = _parse_hex(ev.get("document_hash"), "document_hash", 32)
    if document_hash != body.doc_hash:
        raise BundleStatusError(f"document_hash: expected the current tx's {body.doc_hash.hex()}, got {document_hash.hex()}")
    value_bytes = _parse_hex(ev.get("state_value"), "state_value")
    try:
        value = expect_map(decode_cb(value_bytes), "state_value", _STATE_VALUE_FIELDS)
        doc_hash = expect_bytes(value["doc_hash"], "state_value.doc_hash", 32)
        status = expect_str(value["status"], "state_value.status")
        version = expect_int(value["version"], "state_value.version", 1)
        log_index = expect_int(value["log_index"], "state_value.log_index")
    except EncodingError as exc:
        raise BundleStatusError(f"state_value: expected the canonical state record, got: {exc}") from exc
    proof = StateProof.from_json(ev.get("state_proof"))
    verify_state_proof(H(body.doc_id.encode("utf-8")), value_bytes, proof, header.state_root)
    expected_status = STATUS_REVOKED if ev.revocation is not None else STATUS_ACTIVE
    versions = len(ev.versions)
    if (doc_hash, log_index, version, status) != (body.doc_hash, ev.log_index, versions, expected_status):
        raise BundleStatusError(
            f"state_value: expected version {versions} ({body.doc_hash.hex()[:16]}…, entry {ev.log_index}) "
            f"{expected_status}, got version {version} ({doc_hash.hex()[:16]}…, entry {log_index}) {status}"
        )
    return f"As of block {header.height}, version {version} is the current one and the document is {status}."


# --- verification ------------------------------------------------------------------------


def _run(code: str, rule: Callable[[], str]) -> Check:
    try:
        detail = rule()
    except LedgerError as exc:
        return Check(code, False, _TITLES[code], f"{_FAILURES[code]} ({exc.one_line()})")
    except Exception as exc:  # noqa: BLE001 - a hostile bundle must fail a check, never crash the verifier
        return Check(code, False, _TITLES[code], f"{_FAILURES[code]} (proof.bundle_malformed: {type(exc).__name__})")
    return Check(code, True, _TITLES[code], detail)


def compute_verdict(checks: Sequence[Check], match: _Match | None, revoked: bool) -> str:
    """The verdict rules of the module docstring; ``valid`` only when every check passed."""
    if not all(check.ok for check in checks if check.code != "integrity"):
        return UNSOUND
    if match is None:
        return TAMPERED
    if revoked:
        return REVOKED
    return VALID if match.current else AMENDED


def verify_bundle(bundle: Any, genesis: Genesis, *, copy_hash: bytes) -> Verification:
    """Check ``bundle`` trusting only ``genesis``, for a copy whose hash is ``copy_hash``."""
    ev = _Evidence(bundle, genesis)

    def genesis_rule() -> str:
        validate_bundle_shape(bundle)
        return validate_genesis(ev)

    rules: dict[str, Callable[[], str]] = {
        "genesis": genesis_rule,
        "validators": lambda: validate_validators(ev),
        "header": lambda: validate_header(ev),
        "commit": lambda: validate_bundle_commit(ev),
        "inclusion": lambda: validate_inclusion(ev),
        "signature": lambda: validate_tx_signature(ev),
        "issuer": lambda: validate_issuer(ev),
        "integrity": lambda: validate_integrity(ev, copy_hash),
        "history": lambda: validate_history(ev),
        "status": lambda: validate_status(ev),
    }
    checks = tuple(_run(code, rules[code]) for code in CHECK_CODES)
    revoked = _try(lambda: ev.revocation is not None) is True
    verdict = compute_verdict(checks, ev.match, revoked)
    return _with_facts(Verification(verdict, checks), ev)


def _try(read: Callable[[], Any]) -> Any:
    """A fact from a possibly broken bundle, or None (facts are shown even when checks fail)."""
    try:
        return read()
    except Exception:  # noqa: BLE001 - see above: reading facts must not crash on a hostile bundle
        return None


def _with_facts(result: Verification, ev: _Evidence) -> Verification:
    genesis = ev.genesis
    body = _try(lambda: ev.body)
    envelope = _try(lambda: ev.envelope)
    zone_id = _try(lambda: split_doc_id(body.doc_id)[0]) if body is not None else None
    zone = genesis.zone(zone_id) if isinstance(zone_id, str) else None
    header = _try(lambda: ev.header)
    commit = _try(lambda: ev.commit)
    history: list[_Entry] = _try(lambda: ev.history) or []
    timeline = []
    version = 0
    for entry in history:
        entry_body = entry.envelope.tx.body
        if not isinstance(entry_body, DocIssue | DocAmend | DocRevoke):
            continue
        if not isinstance(entry_body, DocRevoke):
            version += 1
        timeline.append(TimelineEntry(
            entry.envelope.tx.kind, max(version, 1), entry_body.doc_hash.hex(), _reason(entry.envelope),
            entry.log_index, entry.envelope.tx.signer.hex(),
        ))
    issue = history[0].envelope.tx.body if history else None
    revocation = _try(lambda: ev.revocation)
    signers = tuple(
        SigningValidator(s.validator, genesis.zones[s.validator].zone_id)
        for s in (commit.signatures if commit is not None else ())
        if s.validator < len(genesis.zones)
    )
    match = ev.match
    return Verification(
        verdict=result.verdict,
        checks=result.checks,
        doc_id=body.doc_id if body is not None else None,
        doc_type=issue.doc_type if isinstance(issue, DocIssue) else None,
        zone_id=zone_id if isinstance(zone_id, str) else None,
        zone_name=zone.name if zone is not None else None,
        signer=envelope.tx.signer.hex() if envelope is not None else None,
        signer_in_genesis=(envelope.tx.signer in zone.officers) if envelope is not None and zone else None,
        version=_try(lambda: len(ev.versions)),
        document_hash=body.doc_hash.hex() if body is not None else None,
        matched=match.kind if match else None,
        matched_version=match.version if match else None,
        matched_attachment=match.attachment if match else None,
        height=header.height if header is not None else None,
        commit_time_ms=header.time_ms if header is not None else None,
        signing_validators=signers,
        timeline=tuple(timeline),
        revocation_reason=revocation.reason if revocation is not None else None,
    )


def verify_checkpoint(checkpoint: Any, genesis: Genesis) -> Header:
    """A node's ``/v1/checkpoint``: chain, validators, header and commit against genesis; its header."""
    if type(checkpoint) is not dict or checkpoint.keys() != CHECKPOINT_FIELDS:
        raise BundleMalformedError(f"expected a checkpoint with the fields {sorted(CHECKPOINT_FIELDS)}")
    ev = _Evidence(checkpoint, genesis)
    validate_genesis(ev)
    validate_validators(ev)
    validate_header(ev)
    validate_bundle_commit(ev)
    block_hash = _parse_hex(checkpoint["block_hash"], "block_hash", 32)
    if block_hash != ev.header.block_hash:
        raise BundleHeaderError(f"block_hash: expected {ev.header.block_hash.hex()}, got {block_hash.hex()}")
    return ev.header
