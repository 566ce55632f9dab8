"""The verifier's rules: each ``validate_*`` checks one thing a bundle claims against genesis.

Each rule reads what it needs from an :class:`~ledger.proofs.evidence.Evidence` and
returns one plain sentence a trader understands, or raises a
:class:`~ledger.errors.LedgerError` naming what is wrong. Nothing here reads storage:
the rules trust only the genesis file and the copy's hash. :mod:`ledger.proofs.verify`
runs them in the order of its check codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ledger.blocks import compute_quorum, validate_commit
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
)
from ledger.genesis import compute_validators_hash
from ledger.governance import OfficerRecord, compute_officer_state_key, compute_zone_state_key
from ledger.merkle import verify_inclusion
from ledger.proofs.bundle import FIELDS_BY_FORMAT, MATCH_ATTACHMENT, MATCH_DOCUMENT, STATE_VALUE_FIELDS
from ledger.proofs.evidence import Evidence, Match, parse_hashes, parse_hex
from ledger.smt import StateProof, verify_state_proof
from ledger.transactions import (
    STATUS_ACTIVE,
    STATUS_REVOKED,
    DocAmend,
    DocIssue,
    DocRevoke,
    split_doc_id,
    validate_signature,
)


def compute_validator_names(ev: Evidence) -> dict[bytes, str]:
    """Zone ids of the validator keys the bundle lets a verifier name: genesis's, and the
    issuing zone's own record (a zone that joined later)."""
    names = {zone.validator_key: zone.zone_id for zone in ev.genesis.zones}
    try:
        zone = ev.issuer_zone
        names[zone.validator_key] = zone.zone_id
    except Exception:  # noqa: BLE001 - names are decoration; the issuer check reports a bad record
        pass
    return names


def _signer_names(ev: Evidence, validators: Sequence[bytes], indexes: Sequence[int]) -> str:
    names = compute_validator_names(ev)
    return ", ".join(
        names.get(validators[i], f"validator {i} ({validators[i].hex()[:12]}…)") for i in indexes if 0 <= i < len(validators)
    )


def validate_bundle_shape(raw: Any) -> None:
    """Exactly the fields of a format this verifier reads (DESIGN §9, §12)."""
    if type(raw) is not dict:
        raise BundleMalformedError(f"expected a JSON object, got {type(raw).__name__}")
    fields = FIELDS_BY_FORMAT.get(raw.get("format"))  # type: ignore[arg-type]
    if fields is None:
        raise BundleMalformedError(f"format: expected one of {sorted(FIELDS_BY_FORMAT)}, got {raw.get('format')!r:.40}")
    if raw.keys() != fields:
        missing, extra = sorted(fields - raw.keys()), sorted(raw.keys() - fields)
        raise BundleMalformedError(f"expected the bundle fields, missing {missing}, unexpected {extra}")


def compute_held_validators(ev: Evidence) -> tuple[bytes, ...]:
    """Follow ``validator_history`` from genesis's set (DESIGN §12): each entry's header
    is governed by the set held, certified by it, and announces the entry's set as the
    next one; that set is then held. Returns the set that governs the bundle's header."""
    if ev.held is not None:
        return ev.held
    genesis = ev.genesis
    held = genesis.validators
    last_height = 0
    for i, entry in enumerate(ev.validator_history):
        where = f"validator_history[{i}]"
        header = entry.header
        if header.chain_id != genesis.chain_id:
            raise BundleValidatorsError(f"{where}.header.chain_id: expected {genesis.chain_id!r}, got {header.chain_id!r}")
        if header.height <= last_height:
            raise BundleValidatorsError(f"{where}.header.height: expected above {last_height}, got {header.height}")
        if header.validators_hash != compute_validators_hash(held):
            raise BundleValidatorsError(
                f"{where}.header.validators_hash: expected the set held ({compute_validators_hash(held).hex()[:16]}…), "
                "got another: a change of the set is missing before this entry"
            )
        try:
            validate_commit(
                entry.commit, chain_id=genesis.chain_id, validators=held, height=header.height,
                block_hash=H(entry.header_bytes),
            )
        except LedgerError as exc:
            raise BundleValidatorsError(f"{where}.commit: {exc}") from exc
        if header.next_validators_hash == header.validators_hash:
            raise BundleValidatorsError(f"{where}.header: expected a header announcing a new set, got one that keeps it")
        if header.next_validators_hash != compute_validators_hash(entry.validators):
            raise BundleValidatorsError(f"{where}.validators: expected the set whose hash header {header.height} announces")
        held, last_height = entry.validators, header.height
    if ev.header.height <= last_height:
        raise BundleValidatorsError(
            f"header.height: expected above {last_height} (the last change announced), got {ev.header.height}"
        )
    ev.held = held
    return held


def validate_genesis(ev: Evidence) -> str:
    """``chain_id`` and ``genesis_hash`` are the genesis file's."""
    genesis = ev.genesis
    chain_id = ev.get("chain_id")
    if chain_id != genesis.chain_id:
        raise BundleGenesisError(f"chain_id: expected {genesis.chain_id!r}, got {chain_id!r:.80}")
    genesis_hash = parse_hex(ev.get("genesis_hash"), "genesis_hash", 32)
    if genesis_hash != genesis.genesis_hash:
        raise BundleGenesisError(f"genesis_hash: expected {genesis.genesis_hash.hex()}, got {genesis_hash.hex()}")
    return (f"The proof is for chain {genesis.chain_id}, the one your genesis file describes "
            f"(genesis hash {genesis.genesis_hash.hex()[:16]}…).")


def validate_validators(ev: Evidence) -> str:
    """The bundle's validator list is the set genesis's set became through every change
    the bundle shows (genesis's, in order, when there was none)."""
    held = compute_held_validators(ev)
    raw = ev.get("validators")
    if raw != [v.hex() for v in held]:
        what = "of genesis" if held == ev.genesis.validators else "the validator history leads to"
        raise BundleValidatorsError(f"validators: expected the {len(held)} keys {what} in order, got others")
    changes = len(ev.validator_history)
    if changes == 0:
        zones = ", ".join(zone.zone_id for zone in ev.genesis.zones)
        return f"The {len(held)} validators named are those of genesis: {zones}."
    return (f"The {len(held)} validators named are genesis's set after {changes} change(s), "
            f"each certified by the set before it.")


def validate_header(ev: Evidence) -> str:
    """Header bytes decode canonically, belong to the chain and the set; ``header_fields`` repeat them."""
    header = ev.header
    genesis = ev.genesis
    if header.chain_id != genesis.chain_id:
        raise BundleHeaderError(f"header.chain_id: expected {genesis.chain_id!r}, got {header.chain_id!r}")
    held = compute_held_validators(ev)
    expected = compute_validators_hash(held)
    if header.validators_hash != expected:
        raise BundleHeaderError(
            f"header.validators_hash: expected {expected.hex()} (the set held), got {header.validators_hash.hex()}"
        )
    if ev.get("header_fields") != header.to_json():
        raise BundleHeaderError("header_fields: expected the decoded header's fields, got different ones")
    which = "the genesis validator set" if held == genesis.validators else "the validator set genesis's became"
    return (f"Block {header.height} of chain {header.chain_id}: {header.log_size} transactions logged, "
            f"validated by {which}.")


def validate_bundle_commit(ev: Evidence) -> str:
    """The certificate signs ``H(header)`` with a quorum of distinct genesis validators."""
    header = ev.header
    commit = ev.commit
    validators = compute_held_validators(ev)
    validate_commit(
        commit, chain_id=ev.genesis.chain_id, validators=validators, height=header.height,
        block_hash=H(ev.header_bytes),
    )
    signers = [s.validator for s in commit.signatures]
    return (f"Block {header.height} was certified by {len(signers)} of {len(validators)} validators "
            f"({_signer_names(ev, validators, signers)}); {compute_quorum(len(validators))} were needed.")


def validate_inclusion(ev: Evidence) -> str:
    """The current transaction is leaf ``log_index`` of the log the header commits to."""
    header = ev.header
    proof = parse_hashes(ev.get("inclusion_proof"), "inclusion_proof")
    verify_inclusion(ev.tx, ev.log_index, header.log_size, proof, header.log_root)
    return (f"The transaction is entry {ev.log_index} of the ledger's log of {header.log_size} entries "
            f"certified in block {header.height}.")


def validate_tx_signature(ev: Evidence) -> str:
    """The current transaction is for this chain and signed by its signer."""
    envelope = ev.envelope
    if envelope.tx.chain_id != ev.genesis.chain_id:
        raise BundleMalformedError(f"tx.chain_id: expected {ev.genesis.chain_id!r}, got {envelope.tx.chain_id!r}")
    validate_signature(envelope)
    return f"The {envelope.tx.kind} transaction carries a valid signature by key {envelope.tx.signer.hex()[:16]}…."


def validate_issuer(ev: Evidence) -> str:
    """The ``doc_id``'s zone is a member; says whether the signer is an officer listed in
    genesis (``/1``) or proves the signing officer's and its zone's records (``/2``)."""
    envelope = ev.envelope
    try:
        zone_id, _ = split_doc_id(ev.body.doc_id)
    except MalformedTransactionError as exc:
        raise BundleIssuerError(str(exc)) from exc
    if not ev.is_v1:
        return validate_issuer_records(ev, zone_id)
    zone = ev.genesis.zone(zone_id)
    if zone is None:
        raise BundleIssuerError(f"doc_id: expected a zone of genesis, got {zone_id!r}")
    key = envelope.tx.signer.hex()[:16]
    if envelope.tx.signer in zone.officers:
        return f"Issued by {zone.zone_id} ({zone.name}); key {key}… is an officer listed in genesis."
    return (f"Issued by {zone.zone_id} ({zone.name}); key {key}… was registered after genesis "
            f"(its authority was checked by the validators that committed it).")


def validate_issuer_records(ev: Evidence, zone_id: str) -> str:
    """``issuer`` (DESIGN §12): the officer who signed the current version belongs to the
    document's zone, and that zone's record, each proven against ``header.state_root``."""
    signer = ev.envelope.tx.signer
    records = ev.issuer
    root = ev.header.state_root
    try:
        officer = OfficerRecord.from_wire(signer, decode_cb(records.officer_record))
        zone = ev.issuer_zone
    except LedgerError as exc:
        raise BundleIssuerError(f"issuer: expected canonical officer and zone records, got: {exc}") from exc
    try:
        verify_state_proof(compute_officer_state_key(signer), records.officer_record, records.officer_proof, root)
        verify_state_proof(compute_zone_state_key(zone_id), records.zone_record, records.zone_proof, root)
    except LedgerError as exc:
        raise BundleIssuerError(f"issuer: {exc}") from exc
    if officer.zone_id != zone_id:
        raise BundleIssuerError(f"issuer.officer_record.zone_id: expected {zone_id} (the document's zone), got {officer.zone_id!r}")
    if zone.zone_id != zone_id:
        raise BundleIssuerError(f"issuer.zone_record.zone_id: expected {zone_id}, got {zone.zone_id!r}")
    origin = "listed in genesis" if officer.registered_height == 0 else f"registered at height {officer.registered_height}"
    text = f"Issued by {zone.zone_id} ({zone.name}, {zone.country}); key {signer.hex()[:16]}… is an officer {origin}"
    if officer.revoked_height is not None:
        text += f", revoked at height {officer.revoked_height} (documents signed before stand)"
    if not zone.is_active:
        text += f"; the zone left the alliance at height {zone.since_height}"
    return text + "."


def validate_integrity(ev: Evidence, copy_hash: bytes) -> str:
    """``copy_hash`` is a registered version's hash or one of its attachments'; records which."""
    versions = ev.versions
    count = len(versions)
    for position, entry in enumerate(reversed(versions)):
        version = count - position
        body = entry.envelope.tx.body
        assert isinstance(body, DocIssue | DocAmend)  # versions holds only these
        current = position == 0
        if body.doc_hash == copy_hash:
            ev.match = Match(MATCH_DOCUMENT, version, current)
            break
        named = next((a.name for a in body.attachments if a.sha256 == copy_hash), None)
        if named is not None:
            ev.match = Match(MATCH_ATTACHMENT, version, current, named)
            break
    match = ev.match
    if match is None:
        raise CopyMismatchError(f"expected one of the {count} registered versions, got hash {copy_hash.hex()}")
    what = "Your copy is" if match.kind == MATCH_DOCUMENT else f"Your file is the attachment {match.attachment!r} of"
    if match.current:
        return f"{what} version {match.version}, the current one."
    return f"{what} version {match.version}; it has been replaced by version {count}."


def validate_history(ev: Evidence) -> str:
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


def validate_status(ev: Evidence) -> str:
    """The state proof shows the current value for ``H(doc_id)``, and it agrees with tx and history."""
    header = ev.header
    body = ev.body
    document_hash = parse_hex(ev.get("document_hash"), "document_hash", 32)
    if document_hash != body.doc_hash:
        raise BundleStatusError(f"document_hash: expected the current tx's {body.doc_hash.hex()}, got {document_hash.hex()}")
    value_bytes = parse_hex(ev.get("state_value"), "state_value")
    try:
        value = expect_map(decode_cb(value_bytes), "state_value", STATE_VALUE_FIELDS)
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
