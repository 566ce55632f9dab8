"""The state transition's rules for membership (DESIGN §12): officers, proposals,
approvals, and what an executed action changes.

Each ``check_`` function raises the precise error of the first rule a transaction breaks
and writes nothing; each ``apply_`` function writes its effects into the block's batch
and notes the state-tree entries it changed. :mod:`ledger.transition` calls them in
the order the block carries the transactions, so every rule sees the effects of the
transactions before it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ledger.encoding import bounded_repr, pack_uint64
from ledger.errors import (
    GovAlreadyApprovedError,
    GovAuditorExistsError,
    GovAuditorUnknownError,
    GovDuplicateKeyError,
    GovExpiryError,
    GovNotAdminError,
    GovProposalClosedError,
    GovProposalExpiredError,
    GovProposalUnknownError,
    GovTooFewValidatorsError,
    GovZoneExistsError,
    MalformedTransactionError,
    NotOfficerOfZoneError,
    NotZoneAdminError,
    OfficerAlreadyActiveError,
    OfficerNotActiveError,
    OfficerRevokedError,
    UnknownZoneError,
    ZoneRemovedError,
)
from ledger.governance import (
    MAX_PROPOSAL_LIFETIME,
    MIN_VALIDATORS,
    PROPOSAL_EXECUTED,
    PROPOSAL_EXPIRED,
    PROPOSAL_OPEN,
    ZONE_ACTIVE,
    ZONE_REMOVED,
    Action,
    AuditorAdd,
    AuditorRemove,
    ConsensusSet,
    KeyChange,
    OfficerRecord,
    ProposalRecord,
    ZoneAdd,
    ZoneRecord,
    ZoneRemove,
    ZoneRotate,
    validate_possession,
)
from ledger.keys import is_valid_public_key
from ledger.membership import (
    EXPIRY_PREFIX,
    ROLE_ADMIN,
    ROLE_VALIDATOR,
    key_expiry,
    put_auditors,
    put_consensus_settings,
    put_members,
    put_officer,
    put_proposal,
    put_zone,
    put_zone_key,
)
from ledger.transactions import (
    Envelope,
    GovApprove,
    GovPropose,
    OfficerRegister,
    OfficerRevoke,
    ZoneRotateKeys,
)

if TYPE_CHECKING:
    from ledger.transition import BlockContext


# --- who may write -----------------------------------------------------------------


def get_active_zone(ctx: BlockContext, zone_id: str) -> ZoneRecord:
    """The zone ``zone_id``, which must be a member now."""
    zone = ctx.view.get_zone(zone_id)
    if zone is None:
        raise UnknownZoneError(f"expected a member zone, got {bounded_repr(zone_id)}")
    if zone.status == ZONE_REMOVED:
        raise ZoneRemovedError(f"{zone_id} left the alliance at height {zone.since_height}")
    return zone


def validate_officer_of_zone(ctx: BlockContext, signer: bytes, zone_id: str) -> None:
    """The signer is an active officer of ``zone_id``, a zone still in the alliance."""
    get_active_zone(ctx, zone_id)
    officer = ctx.view.get_officer(signer)
    if officer is None or officer.zone_id != zone_id:
        raise NotOfficerOfZoneError(f"expected an officer of {zone_id}, got key {signer.hex()}")
    if not officer.is_active:
        raise OfficerRevokedError(f"officer {signer.hex()} of {zone_id} was revoked at height {officer.revoked_height}")


def validate_zone_admin(ctx: BlockContext, signer: bytes, zone_id: str) -> ZoneRecord:
    """The signer is the current admin key of ``zone_id``, a zone still in the alliance."""
    zone = get_active_zone(ctx, zone_id)
    if signer != zone.admin_key:
        raise NotZoneAdminError(f"expected the admin key of {zone_id}, got {signer.hex()}")
    return zone


def validate_active_admin(ctx: BlockContext, signer: bytes) -> ZoneRecord:
    """The signer is the admin key of some zone still in the alliance (it may govern)."""
    zone = ctx.view.get_admin_zone(signer)
    if zone is None:
        raise GovNotAdminError(f"expected the admin key of an active member zone, got {signer.hex()}")
    return zone


def validate_unused_key(ctx: BlockContext, public: bytes, what: str) -> None:
    """A key serves one role of one zone, once: never an admin, validator, officer or
    auditor key used before, so a signature always names one party."""
    if not is_valid_public_key(public):
        raise MalformedTransactionError(f"{what}: expected an Ed25519 public key, got {public.hex()}")
    owner = ctx.view.get_zone_key_owner(public)
    if owner is not None:
        raise GovDuplicateKeyError(f"{what}: {public.hex()} is (or was) the {owner[1]} key of {owner[0]}")
    officer = ctx.view.get_officer(public)
    if officer is not None:
        raise GovDuplicateKeyError(f"{what}: {public.hex()} is (or was) an officer key of {officer.zone_id}")
    if public in ctx.view.get_auditors():
        raise GovDuplicateKeyError(f"{what}: {public.hex()} is an auditor key")


def validate_no_content(content: bytes | None, kind: str) -> None:
    if content is not None:
        raise MalformedTransactionError(f"documents: expected no content beside a {kind} transaction")


# --- officers --------------------------------------------------------------------------


def check_officer_register(ctx: BlockContext, envelope: Envelope, body: OfficerRegister) -> None:
    validate_zone_admin(ctx, envelope.tx.signer, body.zone_id)
    if not is_valid_public_key(body.officer_key):
        raise MalformedTransactionError(f"officer_key: expected an Ed25519 public key, got {body.officer_key.hex()}")
    officer = ctx.view.get_officer(body.officer_key)
    if officer is not None and officer.is_active:
        raise OfficerAlreadyActiveError(f"officer {body.officer_key.hex()} is already active in {officer.zone_id}")
    if officer is not None:
        raise OfficerRevokedError(
            f"officer {body.officer_key.hex()} was revoked in {officer.zone_id} at height {officer.revoked_height} "
            "and stays revoked"
        )
    owner = ctx.view.get_zone_key_owner(body.officer_key)
    if owner is not None:
        raise GovDuplicateKeyError(
            f"officer_key: {body.officer_key.hex()} is (or was) the {owner[1]} key of {owner[0]}; an officer needs its own key"
        )
    if body.officer_key in ctx.view.get_auditors():
        raise GovDuplicateKeyError(f"officer_key: {body.officer_key.hex()} is an auditor key")


def apply_officer_register(ctx: BlockContext, body: OfficerRegister) -> None:
    set_officer(ctx, OfficerRecord(body.officer_key, body.zone_id, ctx.height, None))


def check_officer_revoke(ctx: BlockContext, envelope: Envelope, body: OfficerRevoke) -> OfficerRecord:
    validate_zone_admin(ctx, envelope.tx.signer, body.zone_id)
    officer = ctx.view.get_officer(body.officer_key)
    if officer is None or officer.zone_id != body.zone_id or not officer.is_active:
        raise OfficerNotActiveError(f"officer {body.officer_key.hex()} is not active in {body.zone_id}")
    return officer


def apply_officer_revoke(ctx: BlockContext, officer: OfficerRecord) -> None:
    set_officer(ctx, replace(officer, revoked_height=ctx.height))


# --- proposals and approvals -----------------------------------------------------------


def validate_expiry(height: int, expires_height: int) -> None:
    if not height <= expires_height <= height + MAX_PROPOSAL_LIFETIME:
        raise GovExpiryError(
            f"expires_height: expected {height} to {height + MAX_PROPOSAL_LIFETIME} (this block's height and on), "
            f"got {expires_height}"
        )


def validate_key_change(ctx: BlockContext, change: KeyChange) -> ZoneRecord:
    """New keys for an active zone: unused, distinct, and each proven by its signature."""
    zone = get_active_zone(ctx, change.zone_id)
    if change.admin_key is not None:
        validate_unused_key(ctx, change.admin_key, "admin_key")
    if change.validator_key is not None:
        validate_unused_key(ctx, change.validator_key, "validator_key")
    if change.admin_key is not None and change.admin_key == change.validator_key:
        raise GovDuplicateKeyError("admin_key and validator_key: expected two different keys")
    validate_possession(
        change.possession, ctx.chain.genesis.chain_id, zone.zone_id,
        change.admin_key or zone.admin_key, change.validator_key or zone.validator_key,
        new_admin=change.admin_key is not None, new_validator=change.validator_key is not None,
    )
    return zone


def validate_action(ctx: BlockContext, action: Action) -> None:
    """The action could execute against the ledger as it stands: checked when it is
    proposed and again when the last approval arrives, since the alliance may have
    changed in between."""
    if isinstance(action, ZoneAdd):
        if ctx.view.get_zone(action.zone_id) is not None:
            raise GovZoneExistsError(f"zone_id: {action.zone_id} is (or was) a member; a zone id is never reused")
        validate_unused_key(ctx, action.admin_key, "admin_key")
        validate_unused_key(ctx, action.validator_key, "validator_key")
        if action.admin_key == action.validator_key:
            raise GovDuplicateKeyError("admin_key and validator_key: expected two different keys")
        validate_possession(
            action.possession, ctx.chain.genesis.chain_id, action.zone_id, action.admin_key, action.validator_key,
            new_admin=True, new_validator=True,
        )
    elif isinstance(action, ZoneRemove):
        get_active_zone(ctx, action.zone_id)
        remaining = len(ctx.view.get_active_zones()) - 1
        if remaining < MIN_VALIDATORS:
            raise GovTooFewValidatorsError(
                f"removing {action.zone_id} would leave {remaining} validators; at least {MIN_VALIDATORS} are needed"
            )
    elif isinstance(action, ZoneRotate):
        validate_key_change(ctx, action.change)
    elif isinstance(action, AuditorAdd):
        if action.auditor_key in ctx.view.get_auditors():
            raise GovAuditorExistsError(f"auditor_key: {action.auditor_key.hex()} is an auditor already")
        validate_unused_key(ctx, action.auditor_key, "auditor_key")
    elif isinstance(action, AuditorRemove) and action.auditor_key not in ctx.view.get_auditors():
        raise GovAuditorUnknownError(f"auditor_key: {action.auditor_key.hex()} is not an auditor")
    # consensus.set: its bounds were checked when it was decoded


def check_gov_propose(ctx: BlockContext, envelope: Envelope, body: GovPropose) -> None:
    validate_active_admin(ctx, envelope.tx.signer)
    validate_expiry(ctx.height, body.expires_height)
    validate_action(ctx, body.action)


def apply_gov_propose(ctx: BlockContext, envelope: Envelope, body: GovPropose) -> None:
    proposal = ProposalRecord(
        envelope.tx_hash, body.action, (envelope.tx.signer,), PROPOSAL_OPEN, ctx.height, body.expires_height,
        len(ctx.view.get_active_zones()),
    )
    ctx.batch.put(key_expiry(proposal.expires_height, proposal.proposal_id), b"")
    record_approval(ctx, proposal)


def check_gov_approve(ctx: BlockContext, envelope: Envelope, body: GovApprove) -> ProposalRecord:
    zone = validate_active_admin(ctx, envelope.tx.signer)
    proposal = ctx.view.get_proposal(body.proposal_id)
    if proposal is None:
        raise GovProposalUnknownError(f"proposal_id: no proposal {body.proposal_id.hex()}")
    if proposal.status == PROPOSAL_EXECUTED:
        raise GovProposalClosedError(f"proposal {body.proposal_id.hex()} was executed at height {proposal.closed_height}")
    if proposal.status == PROPOSAL_EXPIRED or ctx.height > proposal.expires_height:
        raise GovProposalExpiredError(
            f"proposal {body.proposal_id.hex()} expired after height {proposal.expires_height}"
        )
    for key in proposal.approvals:
        owner = ctx.view.get_zone_key_owner(key)
        if key == envelope.tx.signer or (owner is not None and owner[0] == zone.zone_id):
            raise GovAlreadyApprovedError(f"{zone.zone_id} has approved proposal {body.proposal_id.hex()} already")
    return proposal


def apply_gov_approve(ctx: BlockContext, envelope: Envelope, proposal: ProposalRecord) -> None:
    record_approval(ctx, replace(proposal, approvals=(*proposal.approvals, envelope.tx.signer)))


def record_approval(ctx: BlockContext, proposal: ProposalRecord) -> None:
    """Store the proposal with its approvals; the approval that reaches the threshold
    executes the action in this block, after checking it still can."""
    if len(proposal.approvals) >= proposal.approvals_needed:
        validate_action(ctx, proposal.action)
        execute_action(ctx, proposal.action)
        ctx.batch.delete(key_expiry(proposal.expires_height, proposal.proposal_id))
        proposal = replace(proposal, status=PROPOSAL_EXECUTED, closed_height=ctx.height)
    set_proposal(ctx, proposal)


def apply_expiries(ctx: BlockContext) -> None:
    """Before a block's transactions: every open proposal whose last height has passed
    is marked expired in the state tree (a deterministic step of every block)."""
    limit = EXPIRY_PREFIX + pack_uint64(ctx.height)
    for key, _ in ctx.chain.store.iterate(EXPIRY_PREFIX):
        if key >= limit:
            break
        proposal = ctx.view.get_proposal(key[len(limit):])
        ctx.batch.delete(key)
        if proposal is not None and proposal.status == PROPOSAL_OPEN:
            set_proposal(ctx, replace(proposal, status=PROPOSAL_EXPIRED, closed_height=ctx.height))


# --- what actions change --------------------------------------------------------------


def execute_action(ctx: BlockContext, action: Action) -> None:
    if isinstance(action, ZoneAdd):
        zone = ZoneRecord(
            action.zone_id, action.name, action.country, action.admin_key, action.validator_key, ZONE_ACTIVE, ctx.height
        )
        put_zone_key(ctx.batch, zone.admin_key, zone.zone_id, ROLE_ADMIN)
        put_zone_key(ctx.batch, zone.validator_key, zone.zone_id, ROLE_VALIDATOR)
        put_members(ctx.batch, [*ctx.view.get_member_ids(), zone.zone_id])
        set_zone(ctx, zone)
    elif isinstance(action, ZoneRemove):
        zone = get_active_zone(ctx, action.zone_id)
        set_zone(ctx, replace(zone, status=ZONE_REMOVED, since_height=ctx.height))
    elif isinstance(action, ZoneRotate):
        apply_key_change(ctx, action.change)
    elif isinstance(action, AuditorAdd):
        put_auditors(ctx.batch, (*ctx.view.get_auditors(), action.auditor_key))
        ctx.membership_changed = True
    elif isinstance(action, AuditorRemove):
        put_auditors(ctx.batch, tuple(k for k in ctx.view.get_auditors() if k != action.auditor_key))
        ctx.membership_changed = True
    elif isinstance(action, ConsensusSet):
        put_consensus_settings(ctx.batch, replace(ctx.view.get_consensus_settings(), **dict(action.settings)))
        ctx.membership_changed = True


def check_zone_rotate_keys(ctx: BlockContext, envelope: Envelope, body: ZoneRotateKeys) -> None:
    validate_zone_admin(ctx, envelope.tx.signer, body.zone_id)
    validate_key_change(ctx, body.change)


def apply_key_change(ctx: BlockContext, change: KeyChange) -> None:
    """New keys keep the zone's place in the validator set and its status."""
    zone = get_active_zone(ctx, change.zone_id)
    if change.admin_key is not None:
        put_zone_key(ctx.batch, change.admin_key, zone.zone_id, ROLE_ADMIN)
    if change.validator_key is not None:
        put_zone_key(ctx.batch, change.validator_key, zone.zone_id, ROLE_VALIDATOR)
    set_zone(ctx, replace(
        zone, admin_key=change.admin_key or zone.admin_key, validator_key=change.validator_key or zone.validator_key,
    ))


# --- records -------------------------------------------------------------------------


def set_zone(ctx: BlockContext, zone: ZoneRecord) -> None:
    put_zone(ctx.batch, zone)
    ctx.changed_state[zone.state_key] = zone.state_value()
    ctx.membership_changed = True


def set_officer(ctx: BlockContext, officer: OfficerRecord) -> None:
    put_officer(ctx.batch, officer)
    ctx.changed_state[officer.state_key] = officer.state_value()


def set_proposal(ctx: BlockContext, proposal: ProposalRecord) -> None:
    put_proposal(ctx.batch, proposal)
    ctx.changed_state[proposal.state_key] = proposal.state_value()
