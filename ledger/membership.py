"""Where the alliance's membership lives in the store, and how it is read back.

Key layout (beside :mod:`ledger.chain`'s):

    z/<zone_id>               cb(ZoneRecord)            the state tree's zone record
    y/<key32>                 cb({"zone_id", "role"})   every admin and validator key ever used
    O/<key32>                 cb(OfficerRecord)         the state tree's officer record
    g/<proposal_id>           cb(ProposalRecord store)  a proposal and its bookkeeping
    G/<expires_h8><id>        empty                     open proposals by their last height
    V/<from_h8>               cb([validator keys])      the set governing heights from ``from``
    m/members                 cb([zone_id, ...])        zones in order of admission
    m/consensus               cb({setting: value})      consensus settings now in force
    m/auditors                cb([auditor keys])

The state tree holds zone, officer and proposal records (DESIGN §12); the rest are this
node's indexes over the same facts, written in the same batch as the block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack

from ledger.encoding import cb, pack_uint64
from ledger.errors import StoreCorruptError
from ledger.genesis import ConsensusParams, Genesis
from ledger.governance import ZONE_ACTIVE, OfficerRecord, ProposalRecord, ZoneRecord
from ledger.store import KVReader, WriteBatch

KEY_MEMBERS = b"m/members"
KEY_CONSENSUS = b"m/consensus"
KEY_AUDITORS = b"m/auditors"
OFFICER_PREFIX = b"O/"
ZONE_PREFIX = b"z/"
PROPOSAL_PREFIX = b"g/"
EXPIRY_PREFIX = b"G/"
VALIDATORS_PREFIX = b"V/"

ROLE_ADMIN = "admin"
ROLE_VALIDATOR = "validator"


def key_zone(zone_id: str) -> bytes:
    return ZONE_PREFIX + zone_id.encode("utf-8")


def key_zone_key(public: bytes) -> bytes:
    return b"y/" + public


def key_officer_record(officer_key: bytes) -> bytes:
    return OFFICER_PREFIX + officer_key


def key_proposal(proposal_id: bytes) -> bytes:
    return PROPOSAL_PREFIX + proposal_id


def key_expiry(expires_height: int, proposal_id: bytes) -> bytes:
    return EXPIRY_PREFIX + pack_uint64(expires_height) + proposal_id


def key_validators(from_height: int) -> bytes:
    return VALIDATORS_PREFIX + pack_uint64(from_height)


def unpack_stored(data: bytes, what: str) -> Any:
    """A stored MessagePack record, or ``store.corrupt`` naming it."""
    try:
        return msgpack.unpackb(data, raw=False)
    except Exception as exc:
        raise StoreCorruptError(f"{what}: stored record does not decode: {exc}") from exc


@dataclass(frozen=True, slots=True)
class SetChange:
    """The validator set that governs heights from ``from_height`` on."""

    from_height: int
    validators: tuple[bytes, ...]


class MembershipView:
    """Reads of membership records through ``self.reader`` (the store, or a block's overlay)."""

    reader: KVReader
    genesis: Genesis

    def get_zone(self, zone_id: str) -> ZoneRecord | None:
        raw = self.reader.get(key_zone(zone_id))
        return None if raw is None else ZoneRecord.from_wire(unpack_stored(raw, f"zone {zone_id}"))

    def get_zone_key_owner(self, public: bytes) -> tuple[str, str] | None:
        """The zone and role (admin or validator) that ever held ``public``, if any."""
        raw = self.reader.get(key_zone_key(public))
        if raw is None:
            return None
        m = unpack_stored(raw, "zone key")
        return m["zone_id"], m["role"]

    def get_officer(self, officer_key: bytes) -> OfficerRecord | None:
        raw = self.reader.get(key_officer_record(officer_key))
        return None if raw is None else OfficerRecord.from_wire(officer_key, unpack_stored(raw, "officer record"))

    def get_proposal(self, proposal_id: bytes) -> ProposalRecord | None:
        raw = self.reader.get(key_proposal(proposal_id))
        return None if raw is None else ProposalRecord.from_store(proposal_id, unpack_stored(raw, "proposal"))

    def get_member_ids(self) -> list[str]:
        """Every zone ever admitted, in order of admission."""
        raw = self.reader.get(KEY_MEMBERS)
        return [] if raw is None else list(unpack_stored(raw, "members"))

    def get_members(self) -> list[ZoneRecord]:
        out = []
        for zone_id in self.get_member_ids():
            record = self.get_zone(zone_id)
            if record is None:
                raise StoreCorruptError(f"member {zone_id} has no zone record")
            out.append(record)
        return out

    def get_active_zones(self) -> list[ZoneRecord]:
        return [zone for zone in self.get_members() if zone.status == ZONE_ACTIVE]

    def get_admin_zone(self, admin_key: bytes) -> ZoneRecord | None:
        """The active zone whose admin key is ``admin_key`` now."""
        owner = self.get_zone_key_owner(admin_key)
        if owner is None or owner[1] != ROLE_ADMIN:
            return None
        zone = self.get_zone(owner[0])
        if zone is None or not zone.is_active or zone.admin_key != admin_key:
            return None
        return zone

    def compute_active_validators(self) -> tuple[bytes, ...]:
        """The validator keys of active zones in order of admission: the set a change
        committed now hands to the height after next."""
        return tuple(zone.validator_key for zone in self.get_active_zones())

    def get_consensus_settings(self) -> ConsensusParams:
        raw = self.reader.get(KEY_CONSENSUS)
        if raw is None:
            return self.genesis.consensus
        return ConsensusParams(**unpack_stored(raw, "consensus settings"))

    def get_auditors(self) -> tuple[bytes, ...]:
        raw = self.reader.get(KEY_AUDITORS)
        return self.genesis.auditors if raw is None else tuple(unpack_stored(raw, "auditors"))


# --- writes ------------------------------------------------------------------


def put_zone(batch: WriteBatch, zone: ZoneRecord) -> None:
    batch.put(key_zone(zone.zone_id), zone.state_value())


def put_zone_key(batch: WriteBatch, public: bytes, zone_id: str, role: str) -> None:
    batch.put(key_zone_key(public), cb({"zone_id": zone_id, "role": role}))


def put_officer(batch: WriteBatch, officer: OfficerRecord) -> None:
    batch.put(key_officer_record(officer.officer_key), officer.state_value())


def put_proposal(batch: WriteBatch, proposal: ProposalRecord) -> None:
    batch.put(key_proposal(proposal.proposal_id), cb(proposal.to_store()))


def put_members(batch: WriteBatch, zone_ids: list[str]) -> None:
    batch.put(KEY_MEMBERS, cb(zone_ids))


def put_validators(batch: WriteBatch, change: SetChange) -> None:
    batch.put(key_validators(change.from_height), cb(list(change.validators)))


def put_consensus_settings(batch: WriteBatch, params: ConsensusParams) -> None:
    batch.put(KEY_CONSENSUS, cb({name: getattr(params, name) for name in params.__dataclass_fields__}))


def put_auditors(batch: WriteBatch, auditors: tuple[bytes, ...]) -> None:
    batch.put(KEY_AUDITORS, cb(list(auditors)))


def compute_genesis_records(genesis: Genesis) -> tuple[list[ZoneRecord], list[OfficerRecord]]:
    """The records the state tree holds from height 0: every genesis zone, active since
    0, and every genesis officer, registered at 0."""
    zones = [
        ZoneRecord(z.zone_id, z.name, z.country, z.admin_key, z.validator_key, ZONE_ACTIVE, 0) for z in genesis.zones
    ]
    officers = [OfficerRecord(key, z.zone_id, 0, None) for z in genesis.zones for key in z.officers]
    return zones, officers


def write_genesis_membership(batch: WriteBatch, genesis: Genesis) -> dict[bytes, bytes]:
    """Write the genesis membership into ``batch``; returns the state-tree entries."""
    zones, officers = compute_genesis_records(genesis)
    entries: dict[bytes, bytes] = {}
    for zone in zones:
        put_zone(batch, zone)
        put_zone_key(batch, zone.admin_key, zone.zone_id, ROLE_ADMIN)
        put_zone_key(batch, zone.validator_key, zone.zone_id, ROLE_VALIDATOR)
        entries[zone.state_key] = zone.state_value()
    for officer in officers:
        put_officer(batch, officer)
        entries[officer.state_key] = officer.state_value()
    put_members(batch, [zone.zone_id for zone in zones])
    put_validators(batch, SetChange(1, genesis.validators))
    return entries


def compute_validators_at(history: list[SetChange], height: int) -> tuple[bytes, ...]:
    """The set governing ``height``: the newest change that took effect at or before it."""
    chosen = history[0]
    for change in history:
        if change.from_height > height:
            break
        chosen = change
    return chosen.validators
