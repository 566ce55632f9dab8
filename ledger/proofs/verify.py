"""Verifying a proof bundle offline, trusting only genesis: the checks, the verdict and the facts.

:func:`verify_bundle` checks a bundle against a genesis and the hash of the copy the
trader holds, and returns a :class:`Verification`: one :class:`Check` per rule, in a
fixed order with stable codes (the web page and the CLI print them), the facts a trader
wants (zone, officer, commit time, signing validators, timeline) and a verdict. The rules
themselves are in :mod:`ledger.proofs.rules`, the parsing of the untrusted bundle in
:mod:`ledger.proofs.evidence`. Nothing this module imports reads storage (a test loads
it in a fresh interpreter and finds no ``ledger.chain``, ``ledger.store`` or ``plyvel``).

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
from typing import Any

from ledger.blocks import Header
from ledger.errors import BundleHeaderError, BundleMalformedError, LedgerError
from ledger.genesis import Genesis
from ledger.proofs.bundle import CHECKPOINT_FIELDS
from ledger.proofs.evidence import Entry, Evidence, Match, parse_hex
from ledger.proofs.rules import (
    compute_held_validators,
    compute_validator_names,
    validate_bundle_commit,
    validate_bundle_shape,
    validate_genesis,
    validate_header,
    validate_history,
    validate_inclusion,
    validate_integrity,
    validate_issuer,
    validate_status,
    validate_tx_signature,
    validate_validators,
)
from ledger.transactions import DocAmend, DocIssue, DocRevoke, Envelope, split_doc_id

VALID = "valid"
AMENDED = "amended"
REVOKED = "revoked"
TAMPERED = "tampered"
UNSOUND = "unsound"
UNKNOWN = "unknown"
VERDICTS = (VALID, AMENDED, REVOKED, TAMPERED, UNSOUND, UNKNOWN)

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


# --- verification ------------------------------------------------------------------------


def _run(code: str, rule: Callable[[], str]) -> Check:
    try:
        detail = rule()
    except LedgerError as exc:
        return Check(code, False, _TITLES[code], f"{_FAILURES[code]} ({exc.one_line()})")
    except Exception as exc:  # noqa: BLE001 - a hostile bundle must fail a check, never crash the verifier
        return Check(code, False, _TITLES[code], f"{_FAILURES[code]} (proof.bundle_malformed: {type(exc).__name__})")
    return Check(code, True, _TITLES[code], detail)


def compute_verdict(checks: Sequence[Check], match: Match | None, revoked: bool) -> str:
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
    ev = Evidence(bundle, genesis)

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


def _with_facts(result: Verification, ev: Evidence) -> Verification:
    genesis = ev.genesis
    body = _try(lambda: ev.body)
    envelope = _try(lambda: ev.envelope)
    zone_id = _try(lambda: split_doc_id(body.doc_id)[0]) if body is not None else None
    zone = genesis.zone(zone_id) if isinstance(zone_id, str) else None
    zone_name = zone.name if zone is not None else None
    if not ev.is_v1:
        record = _try(lambda: ev.issuer_zone)
        if record is not None and record.zone_id == zone_id:
            zone_name = record.name
    header = _try(lambda: ev.header)
    commit = _try(lambda: ev.commit)
    history: list[Entry] = _try(lambda: ev.history) or []
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
    held = _try(lambda: compute_held_validators(ev)) or genesis.validators
    names = _try(lambda: compute_validator_names(ev)) or {z.validator_key: z.zone_id for z in genesis.zones}
    signers = tuple(
        SigningValidator(s.validator, names.get(held[s.validator], f"validator {s.validator}"))
        for s in (commit.signatures if commit is not None else ())
        if s.validator < len(held)
    )
    match = ev.match
    return Verification(
        verdict=result.verdict,
        checks=result.checks,
        doc_id=body.doc_id if body is not None else None,
        doc_type=issue.doc_type if isinstance(issue, DocIssue) else None,
        zone_id=zone_id if isinstance(zone_id, str) else None,
        zone_name=zone_name,
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
    if type(checkpoint) is not dict or checkpoint.keys() - {"validator_history"} != CHECKPOINT_FIELDS:
        raise BundleMalformedError(
            f"expected a checkpoint with the fields {sorted(CHECKPOINT_FIELDS)} (and validator_history)"
        )
    ev = Evidence(checkpoint, genesis)
    validate_genesis(ev)
    validate_validators(ev)
    validate_header(ev)
    validate_bundle_commit(ev)
    block_hash = parse_hex(checkpoint["block_hash"], "block_hash", 32)
    if block_hash != ev.header.block_hash:
        raise BundleHeaderError(f"block_hash: expected {ev.header.block_hash.hex()}, got {block_hash.hex()}")
    return ev.header


def _reason(envelope: Envelope) -> str | None:
    body = envelope.tx.body
    return body.reason if isinstance(body, DocAmend | DocRevoke) else None
