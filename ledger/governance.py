"""Governance formats (DESIGN §12): actions, proofs of possession and the records the
state tree holds for zones, officers and proposals.

This module defines the wire forms and their canonical bytes only. The rules that
decide whether a proposal or an approval is allowed, and what executing an action
changes, live in :mod:`ledger.governance_rules`; where the records are stored, in
:mod:`ledger.membership`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ledger.encoding import H, bounded_repr, cb, expect_bytes, expect_int, expect_list, expect_map, expect_str
from ledger.errors import GovParamsError, GovPossessionError, MalformedTransactionError
from ledger.keys import JOIN_DOMAIN, SigningKey, signing_bytes, verify_bytes
from ledger.limits import MAX_NAME_CHARS

ACTION_ZONE_ADD = "zone.add"
ACTION_ZONE_REMOVE = "zone.remove"
ACTION_ZONE_ROTATE = "zone.rotate"
ACTION_AUDITOR_ADD = "auditor.add"
ACTION_AUDITOR_REMOVE = "auditor.remove"
ACTION_CONSENSUS_SET = "consensus.set"

ZONE_ACTIVE = "active"
ZONE_REMOVED = "removed"

PROPOSAL_OPEN = "open"
PROPOSAL_EXECUTED = "executed"
PROPOSAL_EXPIRED = "expired"

MIN_VALIDATORS = 4
"""The smallest set that tolerates one fault; no change may leave fewer."""

MAX_PROPOSAL_LIFETIME = 1_000_000
"""How many heights ahead ``expires_height`` may lie (weeks at one block a second)."""

CONSENSUS_SETTING_BOUNDS: dict[str, tuple[int, int]] = {
    "timeout_propose_ms": (100, 600_000),
    "timeout_delta_ms": (50, 600_000),
    "max_block_txs": (1, 20_000),
}
"""What ``consensus.set`` may change, and within which bounds: a timeout too short
stalls every round, a block limit too large outgrows the size limits of the wire."""


def compute_approvals_needed(members: int) -> int:
    """Approvals that execute a proposal made when ``members`` zones were active:
    ``floor(2m/3) + 1``."""
    return (2 * members) // 3 + 1


# --- proof of possession -----------------------------------------------------------


def compute_join_claim(chain_id: str, zone_id: str, admin_key: bytes, validator_key: bytes) -> dict[str, Any]:
    """What each new key of a zone signs: the zone's whole key pair on this chain."""
    return {"chain_id": chain_id, "zone_id": zone_id, "admin_key": admin_key, "validator_key": validator_key}


def compute_join_signing_bytes(chain_id: str, zone_id: str, admin_key: bytes, validator_key: bytes) -> bytes:
    return signing_bytes(JOIN_DOMAIN, compute_join_claim(chain_id, zone_id, admin_key, validator_key))


@dataclass(frozen=True, slots=True)
class Possession:
    """Signatures by the new keys over the join claim: each key shows it can sign."""

    admin_sig: bytes | None
    """By the new admin key, when the admin key is new."""
    validator_sig: bytes | None
    """By the new validator key, when the validator key is new."""

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.admin_sig is not None:
            out["admin_sig"] = self.admin_sig
        if self.validator_sig is not None:
            out["validator_sig"] = self.validator_sig
        return out

    @classmethod
    def from_wire(cls, value: Any, what: str) -> Possession:
        m = expect_map(value, what)
        unknown = sorted(set(m) - {"admin_sig", "validator_sig"})
        if unknown:
            raise MalformedTransactionError(f"{what}: unexpected fields {unknown[:4]}")
        admin = expect_bytes(m["admin_sig"], f"{what}.admin_sig", 64) if "admin_sig" in m else None
        validator = expect_bytes(m["validator_sig"], f"{what}.validator_sig", 64) if "validator_sig" in m else None
        return cls(admin, validator)

    @classmethod
    def sign(
        cls, chain_id: str, zone_id: str, admin_key: bytes, validator_key: bytes, *,
        new_admin: SigningKey | None, new_validator: SigningKey | None,
    ) -> Possession:
        """The possession proof a joining (or rotating) zone makes with its new keys."""
        message = compute_join_signing_bytes(chain_id, zone_id, admin_key, validator_key)
        return cls(
            None if new_admin is None else new_admin.sign_bytes(message),
            None if new_validator is None else new_validator.sign_bytes(message),
        )


def validate_possession(
    possession: Possession, chain_id: str, zone_id: str, admin_key: bytes, validator_key: bytes, *,
    new_admin: bool, new_validator: bool,
) -> None:
    """Each new key signed the claim of the zone's resulting key pair, and nothing else was sent."""
    message = compute_join_signing_bytes(chain_id, zone_id, admin_key, validator_key)
    for is_new, sig, key, role in (
        (new_admin, possession.admin_sig, admin_key, "admin"),
        (new_validator, possession.validator_sig, validator_key, "validator"),
    ):
        if not is_new:
            if sig is not None:
                raise GovPossessionError(f"possession.{role}_sig: expected none, the {role} key does not change")
            continue
        if sig is None:
            raise GovPossessionError(f"possession.{role}_sig: expected the new {role} key's signature of the join claim")
        verify_bytes(key, message, sig, GovPossessionError, f"possession.{role}_sig (the claim for {zone_id})")


# --- actions ------------------------------------------------------------------------


def _zone_id(value: Any, what: str) -> str:
    from ledger.transactions import is_valid_zone_id

    zone_id = expect_str(value, what)
    if not is_valid_zone_id(zone_id):
        raise MalformedTransactionError(f"{what}: expected a zone id such as \"EG-TEDA\", got {bounded_repr(zone_id)}")
    return zone_id


@dataclass(frozen=True, slots=True)
class ZoneAdd:
    """Admit a zone: its keys, each proven by its own signature."""

    TYPE: ClassVar[str] = ACTION_ZONE_ADD
    FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"type", "zone_id", "name", "country", "admin_key", "validator_key", "possession"}
    )
    zone_id: str
    name: str
    country: str
    admin_key: bytes
    validator_key: bytes
    possession: Possession

    def to_wire(self) -> dict[str, Any]:
        return {
            "type": self.TYPE, "zone_id": self.zone_id, "name": self.name, "country": self.country,
            "admin_key": self.admin_key, "validator_key": self.validator_key, "possession": self.possession.to_wire(),
        }

    @classmethod
    def from_wire(cls, m: dict[str, Any]) -> ZoneAdd:
        from ledger.codes import is_country_code

        name = expect_str(m["name"], "action.name")
        if not name or len(name) > MAX_NAME_CHARS:
            raise MalformedTransactionError(f"action.name: expected 1 to {MAX_NAME_CHARS} characters")
        country = expect_str(m["country"], "action.country")
        if not is_country_code(country):
            raise MalformedTransactionError(f"action.country: expected an ISO 3166-1 alpha-2 code, got {bounded_repr(country)}")
        return cls(
            _zone_id(m["zone_id"], "action.zone_id"), name, country,
            expect_bytes(m["admin_key"], "action.admin_key", 32),
            expect_bytes(m["validator_key"], "action.validator_key", 32),
            Possession.from_wire(m["possession"], "action.possession"),
        )


@dataclass(frozen=True, slots=True)
class ZoneRemove:
    """A zone leaves: its validator leaves the set, its officers can no longer write,
    its documents stay verifiable."""

    TYPE: ClassVar[str] = ACTION_ZONE_REMOVE
    FIELDS: ClassVar[frozenset[str]] = frozenset({"type", "zone_id"})
    zone_id: str

    def to_wire(self) -> dict[str, Any]:
        return {"type": self.TYPE, "zone_id": self.zone_id}

    @classmethod
    def from_wire(cls, m: dict[str, Any]) -> ZoneRemove:
        return cls(_zone_id(m["zone_id"], "action.zone_id"))


@dataclass(frozen=True, slots=True)
class KeyChange:
    """New keys for a zone (the alliance's ``zone.rotate``, or the zone's own
    ``zone.rotate_keys``): either or both, each proven by its signature."""

    zone_id: str
    admin_key: bytes | None
    validator_key: bytes | None
    possession: Possession

    def wire_fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"zone_id": self.zone_id, "possession": self.possession.to_wire()}
        if self.admin_key is not None:
            out["admin_key"] = self.admin_key
        if self.validator_key is not None:
            out["validator_key"] = self.validator_key
        return out

    @classmethod
    def parse(cls, m: dict[str, Any], what: str, required: frozenset[str]) -> KeyChange:
        optional = frozenset({"admin_key", "validator_key"})
        missing = sorted(required - set(m))
        unknown = sorted(set(m) - required - optional)
        if missing or unknown:
            raise MalformedTransactionError(
                f"{what}: expected fields {sorted(required)} and any of {sorted(optional)}, "
                f"missing {missing}, unexpected {unknown[:4]}"
            )
        admin = expect_bytes(m["admin_key"], f"{what}.admin_key", 32) if "admin_key" in m else None
        validator = expect_bytes(m["validator_key"], f"{what}.validator_key", 32) if "validator_key" in m else None
        if admin is None and validator is None:
            raise MalformedTransactionError(f"{what}: expected a new admin_key, a new validator_key or both")
        return cls(
            _zone_id(m["zone_id"], f"{what}.zone_id"), admin, validator,
            Possession.from_wire(m["possession"], f"{what}.possession"),
        )


@dataclass(frozen=True, slots=True)
class ZoneRotate:
    """The alliance replaces the keys of a zone that lost them."""

    TYPE: ClassVar[str] = ACTION_ZONE_ROTATE
    FIELDS: ClassVar[frozenset[str] | None] = None  # optional keys: checked by KeyChange.parse
    change: KeyChange

    def to_wire(self) -> dict[str, Any]:
        return {"type": self.TYPE, **self.change.wire_fields()}

    @classmethod
    def from_wire(cls, m: dict[str, Any]) -> ZoneRotate:
        return cls(KeyChange.parse(m, "action", frozenset({"type", "zone_id", "possession"})))


@dataclass(frozen=True, slots=True)
class AuditorAdd:
    TYPE: ClassVar[str] = ACTION_AUDITOR_ADD
    FIELDS: ClassVar[frozenset[str]] = frozenset({"type", "auditor_key"})
    auditor_key: bytes

    def to_wire(self) -> dict[str, Any]:
        return {"type": self.TYPE, "auditor_key": self.auditor_key}

    @classmethod
    def from_wire(cls, m: dict[str, Any]) -> AuditorAdd:
        return cls(expect_bytes(m["auditor_key"], "action.auditor_key", 32))


@dataclass(frozen=True, slots=True)
class AuditorRemove:
    TYPE: ClassVar[str] = ACTION_AUDITOR_REMOVE
    FIELDS: ClassVar[frozenset[str]] = frozenset({"type", "auditor_key"})
    auditor_key: bytes

    def to_wire(self) -> dict[str, Any]:
        return {"type": self.TYPE, "auditor_key": self.auditor_key}

    @classmethod
    def from_wire(cls, m: dict[str, Any]) -> AuditorRemove:
        return cls(expect_bytes(m["auditor_key"], "action.auditor_key", 32))


@dataclass(frozen=True, slots=True)
class ConsensusSet:
    """New chain-wide consensus settings; those not named keep their value."""

    TYPE: ClassVar[str] = ACTION_CONSENSUS_SET
    FIELDS: ClassVar[frozenset[str] | None] = None
    settings: tuple[tuple[str, int], ...]
    """Sorted (name, value) pairs."""

    def to_wire(self) -> dict[str, Any]:
        return {"type": self.TYPE, **dict(self.settings)}

    @classmethod
    def from_wire(cls, m: dict[str, Any]) -> ConsensusSet:
        names = set(m) - {"type"}
        unknown = sorted(names - set(CONSENSUS_SETTING_BOUNDS))
        if unknown:
            raise GovParamsError(
                f"action: expected settings among {sorted(CONSENSUS_SETTING_BOUNDS)}, got unknown {unknown[:4]}"
            )
        if not names:
            raise GovParamsError("action: expected at least one setting to change")
        settings = []
        for name in sorted(names):
            value = expect_int(m[name], f"action.{name}")
            low, high = CONSENSUS_SETTING_BOUNDS[name]
            if not low <= value <= high:
                raise GovParamsError(f"action.{name}: expected {low} to {high}, got {value}")
            settings.append((name, value))
        return cls(tuple(settings))


Action = ZoneAdd | ZoneRemove | ZoneRotate | AuditorAdd | AuditorRemove | ConsensusSet
ACTION_TYPES: dict[str, Any] = {
    cls.TYPE: cls for cls in (ZoneAdd, ZoneRemove, ZoneRotate, AuditorAdd, AuditorRemove, ConsensusSet)
}


def decode_action(value: Any) -> Action:
    m = expect_map(value, "body.action")
    kind = expect_str(m.get("type"), "body.action.type") if "type" in m else None
    cls = ACTION_TYPES.get(kind) if kind is not None else None
    if cls is None:
        raise MalformedTransactionError(
            f"body.action.type: expected one of {sorted(ACTION_TYPES)}, got {bounded_repr(kind or '')}"
        )
    if cls.FIELDS is not None:
        expect_map(m, "body.action", cls.FIELDS)
    action: Action = cls.from_wire(m)
    return action


# --- records in the state tree -------------------------------------------------------


def compute_zone_state_key(zone_id: str) -> bytes:
    return H(b"zone:" + zone_id.encode("utf-8"))


def compute_officer_state_key(officer_key: bytes) -> bytes:
    return H(b"officer:" + officer_key.hex().encode("ascii"))


def compute_proposal_state_key(proposal_id: bytes) -> bytes:
    return H(b"proposal:" + proposal_id.hex().encode("ascii"))


@dataclass(frozen=True, slots=True)
class ZoneRecord:
    """A member zone as the state tree holds it."""

    zone_id: str
    name: str
    country: str
    admin_key: bytes
    validator_key: bytes
    status: str
    """``active`` or ``removed``."""
    since_height: int
    """The height of the block that gave the zone its status (0: genesis)."""

    def to_wire(self) -> dict[str, Any]:
        return {
            "zone_id": self.zone_id, "name": self.name, "country": self.country, "admin_key": self.admin_key,
            "validator_key": self.validator_key, "status": self.status, "since_height": self.since_height,
        }

    def state_value(self) -> bytes:
        return cb(self.to_wire())

    @property
    def state_key(self) -> bytes:
        return compute_zone_state_key(self.zone_id)

    @property
    def is_active(self) -> bool:
        return self.status == ZONE_ACTIVE

    @classmethod
    def from_wire(cls, value: Any) -> ZoneRecord:
        m = expect_map(value, "zone record", frozenset(
            {"zone_id", "name", "country", "admin_key", "validator_key", "status", "since_height"}
        ))
        status = expect_str(m["status"], "zone record.status")
        if status not in (ZONE_ACTIVE, ZONE_REMOVED):
            raise MalformedTransactionError(f"zone record.status: expected active or removed, got {bounded_repr(status)}")
        return cls(
            expect_str(m["zone_id"], "zone record.zone_id"), expect_str(m["name"], "zone record.name"),
            expect_str(m["country"], "zone record.country"), expect_bytes(m["admin_key"], "zone record.admin_key", 32),
            expect_bytes(m["validator_key"], "zone record.validator_key", 32), status,
            expect_int(m["since_height"], "zone record.since_height"),
        )


@dataclass(frozen=True, slots=True)
class OfficerRecord:
    """An officer key: its zone, when it was registered and, once, revoked."""

    officer_key: bytes
    zone_id: str
    registered_height: int
    revoked_height: int | None

    def to_wire(self) -> dict[str, Any]:
        return {"zone_id": self.zone_id, "registered_height": self.registered_height, "revoked_height": self.revoked_height}

    def state_value(self) -> bytes:
        return cb(self.to_wire())

    @property
    def state_key(self) -> bytes:
        return compute_officer_state_key(self.officer_key)

    @property
    def is_active(self) -> bool:
        return self.revoked_height is None

    @classmethod
    def from_wire(cls, officer_key: bytes, value: Any) -> OfficerRecord:
        m = expect_map(value, "officer record", frozenset({"zone_id", "registered_height", "revoked_height"}))
        revoked = m["revoked_height"]
        return cls(
            officer_key, expect_str(m["zone_id"], "officer record.zone_id"),
            expect_int(m["registered_height"], "officer record.registered_height"),
            None if revoked is None else expect_int(revoked, "officer record.revoked_height"),
        )


@dataclass(frozen=True, slots=True)
class ProposalRecord:
    """A proposal: the state tree's part (action, approvals, status) and the node's own
    bookkeeping beside it (when it was made, by how many members, until when)."""

    proposal_id: bytes
    action: Action
    approvals: tuple[bytes, ...]
    """Admin keys that approved, the proposer's first, in order of approval."""
    status: str
    proposed_height: int
    expires_height: int
    members: int
    """Active zones when it was proposed: fixes the approvals needed."""
    closed_height: int | None = None
    """Where it was executed or expired."""

    @property
    def approvals_needed(self) -> int:
        return compute_approvals_needed(self.members)

    def state_wire(self) -> dict[str, Any]:
        return {"action": self.action.to_wire(), "approvals": list(self.approvals), "status": self.status}

    def state_value(self) -> bytes:
        return cb(self.state_wire())

    @property
    def state_key(self) -> bytes:
        return compute_proposal_state_key(self.proposal_id)

    def to_store(self) -> dict[str, Any]:
        return {
            **self.state_wire(), "proposed_height": self.proposed_height, "expires_height": self.expires_height,
            "members": self.members, "closed_height": self.closed_height,
        }

    @classmethod
    def from_store(cls, proposal_id: bytes, m: dict[str, Any]) -> ProposalRecord:
        approvals = tuple(expect_bytes(k, "proposal.approvals[]", 32) for k in expect_list(m["approvals"], "approvals"))
        return cls(
            proposal_id, decode_action(m["action"]), approvals, expect_str(m["status"], "proposal.status"),
            m["proposed_height"], m["expires_height"], m["members"], m["closed_height"],
        )
