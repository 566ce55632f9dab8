"""Genesis: the alliance's founding file, the one thing every verifier trusts (DESIGN §3).

``genesis_hash = H(JCS(genesis))`` over the JSON exactly as loaded, so unknown fields
are kept and hashed. The validator set is the zones' validator keys in genesis order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ledger.encoding import H, cb, jcs, parse_json
from ledger.errors import GenesisError, LedgerError
from ledger.keys import is_valid_public_key
from ledger.limits import DEFAULT_MAX_BLOCK_BYTES, MAX_GENESIS_BYTES
from ledger.transactions import is_valid_zone_id

_RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
_CHAIN_ID = re.compile(r"^[a-z0-9][a-z0-9.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class ConsensusParams:
    """Chain-wide consensus constants, fixed in genesis."""

    timeout_propose_ms: int = 1000
    """Base wait for a proposal in round 0."""
    timeout_delta_ms: int = 500
    """Added per round to every timeout, so rounds grow linearly."""
    max_block_txs: int = 5000
    """Largest number of transactions in one block."""
    max_block_bytes: int = DEFAULT_MAX_BLOCK_BYTES
    """Largest encoded block body."""
    max_clock_skew_ms: int = 5000
    """How far ahead of a validator's clock a block time may be."""

    @classmethod
    def from_json(cls, value: Any) -> ConsensusParams:
        if not isinstance(value, dict):
            raise GenesisError("consensus: expected an object")
        known = {f.name: f.default for f in fields(cls)}
        out: dict[str, int] = {}
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise GenesisError(f"consensus: unknown settings {unknown}")
        for name, default in known.items():
            item = value.get(name, default)
            if type(item) is not int or item <= 0:
                raise GenesisError(f"consensus.{name}: expected a positive integer, got {item!r}")
            out[name] = item
        return cls(**out)


@dataclass(frozen=True, slots=True)
class Zone:
    """One member zone: its admin, its validator and its initial officers."""

    zone_id: str
    """e.g. ``EG-TEDA``; prefixes every ``doc_id`` the zone issues."""
    name: str
    """Display name."""
    country: str
    """ISO 3166-1 alpha-2 of the host country."""
    admin_key: bytes
    """Registers and revokes the zone's officers."""
    validator_key: bytes
    """Signs the zone's votes and proposals."""
    officers: tuple[bytes, ...]
    """Officer keys active from genesis."""


@dataclass(frozen=True, slots=True)
class Genesis:
    """The parsed genesis file and its hash."""

    chain_id: str
    """Names the chain in every transaction, vote and header."""
    genesis_time: str
    """RFC 3339 UTC; block 1's time must be after it."""
    genesis_time_ms: int
    """``genesis_time`` in Unix milliseconds."""
    zones: tuple[Zone, ...]
    """Member zones in genesis order (that order is the validator order)."""
    auditors: tuple[bytes, ...]
    """Keys that may read member data."""
    consensus: ConsensusParams
    """Chain-wide consensus constants."""
    genesis_hash: bytes
    """``H(JCS(genesis JSON))``."""
    raw: dict[str, Any]
    """The JSON exactly as loaded."""

    @property
    def validators(self) -> tuple[bytes, ...]:
        return tuple(zone.validator_key for zone in self.zones)

    @property
    def validators_hash(self) -> bytes:
        return compute_validators_hash(self.validators)

    def zone(self, zone_id: str) -> Zone | None:
        for zone in self.zones:
            if zone.zone_id == zone_id:
                return zone
        return None

    @classmethod
    def from_json(cls, value: Any) -> Genesis:
        try:
            return _parse_genesis(value)
        except GenesisError:
            raise
        except LedgerError as exc:
            raise GenesisError(str(exc)) from exc

    @classmethod
    def load(cls, path: str | Path) -> Genesis:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise GenesisError(f"cannot read genesis {path}: {exc.strerror}") from exc
        if len(data) > MAX_GENESIS_BYTES:
            raise GenesisError(f"expected a genesis under {MAX_GENESIS_BYTES} bytes, got {len(data)}")
        try:
            value = parse_json(data)
        except LedgerError as exc:
            raise GenesisError(f"{path}: {exc}") from exc
        return cls.from_json(value)


def compute_validators_hash(validators: tuple[bytes, ...] | list[bytes]) -> bytes:
    """``H(cb([validator keys in order]))`` (DESIGN §7)."""
    return H(cb(list(validators)))


def compute_genesis_hash(value: Any) -> bytes:
    return H(jcs(value))


def _hex_key(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or len(value) != 64:
        raise GenesisError(f"{what}: expected 64 hex characters, got {value!r}")
    try:
        key = bytes.fromhex(value)
    except ValueError as exc:
        raise GenesisError(f"{what}: expected hex, got {value!r}") from exc
    if value != key.hex():
        raise GenesisError(f"{what}: expected lowercase hex, got {value!r}")
    if not is_valid_public_key(key):
        raise GenesisError(f"{what}: expected an Ed25519 public key, got {value}")
    return key


def _parse_time_ms(text: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def _parse_genesis(value: Any) -> Genesis:
    from ledger.codes import is_country_code

    if not isinstance(value, dict):
        raise GenesisError("expected a JSON object")
    for name in ("chain_id", "genesis_time", "zones"):
        if name not in value:
            raise GenesisError(f"{name}: required")
    chain_id = value["chain_id"]
    if not isinstance(chain_id, str) or not _CHAIN_ID.match(chain_id):
        raise GenesisError(f"chain_id: expected lowercase letters, digits, '.', '-', got {chain_id!r}")
    genesis_time = value["genesis_time"]
    if not isinstance(genesis_time, str) or not _RFC3339_UTC.match(genesis_time):
        raise GenesisError(f"genesis_time: expected an RFC 3339 UTC time, got {genesis_time!r}")
    zones_raw = value["zones"]
    if not isinstance(zones_raw, list) or not zones_raw:
        raise GenesisError("zones: expected a non-empty list")
    zones: list[Zone] = []
    seen_keys: set[bytes] = set()
    for i, z in enumerate(zones_raw):
        where = f"zones[{i}]"
        if not isinstance(z, dict):
            raise GenesisError(f"{where}: expected an object")
        zone_id = z.get("zone_id")
        if not isinstance(zone_id, str) or not is_valid_zone_id(zone_id):
            raise GenesisError(f"{where}.zone_id: expected e.g. \"EG-TEDA\", got {zone_id!r}")
        if any(zone.zone_id == zone_id for zone in zones):
            raise GenesisError(f"{where}.zone_id: {zone_id} appears twice")
        country = z.get("country")
        if not isinstance(country, str) or not is_country_code(country):
            raise GenesisError(f"{where}.country: expected an ISO 3166-1 alpha-2 code, got {country!r}")
        name = z.get("name", zone_id)
        if not isinstance(name, str):
            raise GenesisError(f"{where}.name: expected a string")
        admin = _hex_key(z.get("admin_key"), f"{where}.admin_key")
        validator = _hex_key(z.get("validator_key"), f"{where}.validator_key")
        if validator in seen_keys:
            raise GenesisError(f"{where}.validator_key: the same key serves twice")
        seen_keys.add(validator)
        officers_raw = z.get("officers", [])
        if not isinstance(officers_raw, list):
            raise GenesisError(f"{where}.officers: expected a list")
        officers = tuple(_hex_key(o, f"{where}.officers[{j}]") for j, o in enumerate(officers_raw))
        if len(set(officers)) != len(officers):
            raise GenesisError(f"{where}.officers: a key appears twice")
        zones.append(Zone(zone_id, name, country, admin, validator, officers))
    auditors_raw = value.get("auditors", [])
    if not isinstance(auditors_raw, list):
        raise GenesisError("auditors: expected a list")
    auditors = tuple(_hex_key(a, f"auditors[{i}]") for i, a in enumerate(auditors_raw))
    validate_distinct_keys(zones, auditors)
    consensus = ConsensusParams.from_json(value.get("consensus", {}))
    return Genesis(
        chain_id=chain_id,
        genesis_time=genesis_time,
        genesis_time_ms=_parse_time_ms(genesis_time),
        zones=tuple(zones),
        auditors=auditors,
        consensus=consensus,
        genesis_hash=compute_genesis_hash(value),
        raw=value,
    )


def validate_distinct_keys(zones: list[Zone], auditors: tuple[bytes, ...]) -> None:
    """Every key serves one role of one zone (or one auditor): a signature then names
    one party, and an officer's record (keyed by its key alone, DESIGN §12) one zone."""
    seen: dict[bytes, str] = {}
    roles = [
        (key, f"{zone.zone_id} {role}")
        for zone in zones
        for key, role in ((zone.admin_key, "admin"), (zone.validator_key, "validator"),
                          *((officer, "officer") for officer in zone.officers))
    ]
    roles += [(key, "auditor") for key in auditors]
    for key, role in roles:
        if key in seen:
            raise GenesisError(f"key {key.hex()} serves twice: as {seen[key]} and as {role}")
        seen[key] = role
