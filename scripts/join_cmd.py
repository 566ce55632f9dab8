"""``zoneledger join-request``: a zone's keys and their proof of possession, made on the
zone's own machine (DESIGN §12, §14).

A zone that wants to join (or whose keys the alliance must replace) runs this where
its keys live. Each private key signs the join claim
``cb({"chain_id", "zone_id", "admin_key", "validator_key"})`` under the join domain;
the file holds the public keys and those signatures, in hex, and nothing private. An
admin of a member zone then proposes it (``zoneledger gov propose zone-add|zone-rotate
--request FILE``).

The file, ``format`` ``zoneledger-join-request/1``::

    {"format", "chain_id", "zone_id", "name", "country",
     "admin_key": hex32, "validator_key": hex32,
     "possession": {"admin_sig"?: hex64, "validator_sig"?: hex64}}

A key is named by a private key file, which signs (and is generated, mode 0600, when the
file does not exist yet, as ``zoneledger keygen`` would), or by its public key (64 hex
characters or a public key PEM), which signs nothing: that is how a rotation request
names the one key of the zone that does not change.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.codes import is_country_code
from ledger.encoding import bounded_repr, expect_map, expect_str, parse_json
from ledger.errors import GovDuplicateKeyError, JsonError, LedgerError, MalformedTransactionError
from ledger.governance import ACTION_ZONE_ADD, Possession, ZoneAdd, decode_action
from ledger.keys import SigningKey
from ledger.limits import MAX_NAME_CHARS
from ledger.transactions import is_valid_zone_id
from scripts.keys_cmd import load_public_key, read_passphrase
from scripts.usage import CliError

JOIN_REQUEST_FORMAT = "zoneledger-join-request/1"
_FIELDS = frozenset({"format", "chain_id", "zone_id", "name", "country", "admin_key", "validator_key", "possession"})
_HEX_KEY = re.compile(r"^[0-9a-fA-F]{64}$")


# --- keys --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ZoneKey:
    """One key of a zone as the command line named it."""

    public: bytes
    private: SigningKey | None
    """The key that signs the claim; None when it was named by its public key only."""
    generated: bool
    """True when this command made the key and wrote its file."""


def load_or_generate_key(spec: str, passphrase: bytes | None, what: str) -> ZoneKey:
    """The key ``spec`` names: 64 hex characters or a public key PEM (no signature), a
    private key PEM, or a file not there yet (a new key is written to it, mode 0600)."""
    if _HEX_KEY.match(spec):
        return ZoneKey(load_public_key(spec, what=what), None, False)
    path = Path(spec)
    if not path.exists():
        key = SigningKey.generate()
        key.save(path, passphrase)
        return ZoneKey(key.public, key, True)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CliError(f"{what}: cannot read {spec}: {exc.strerror}") from exc
    if b"PUBLIC KEY" in data:
        return ZoneKey(load_public_key(spec, what=what), None, False)
    key = SigningKey.from_pem(data, passphrase, source=spec)
    return ZoneKey(key.public, key, False)


def load_signing_key(spec: str, passphrase: bytes | None, what: str) -> ZoneKey:
    """A private key that must sign (generated when its file does not exist yet)."""
    key = load_or_generate_key(spec, passphrase, what)
    if key.private is None:
        raise CliError(f"{what}: expected a private key file (a new key signs its proof of possession), got {spec}")
    return key


# --- the request -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JoinRequest:
    """A zone's claim to a key pair on one chain, signed by the keys that are new."""

    chain_id: str
    """The chain the claim is for; signatures for another chain verify on none other."""
    zone: ZoneAdd
    """Zone id, name, country, both public keys and the possession signatures."""

    def to_json(self) -> dict[str, Any]:
        possession = {name: sig.hex() for name, sig in self.zone.possession.to_wire().items()}
        return {
            "format": JOIN_REQUEST_FORMAT, "chain_id": self.chain_id, "zone_id": self.zone.zone_id,
            "name": self.zone.name, "country": self.zone.country, "admin_key": self.zone.admin_key.hex(),
            "validator_key": self.zone.validator_key.hex(), "possession": possession,
        }

    @classmethod
    def from_json(cls, value: Any) -> JoinRequest:
        """Parse a request: its fields are read by the same decoder as a ``zone.add`` action."""
        m = expect_map(value, "join request", _FIELDS)
        found = expect_str(m["format"], "format")
        if found != JOIN_REQUEST_FORMAT:
            raise MalformedTransactionError(f"format: expected {JOIN_REQUEST_FORMAT!r}, got {bounded_repr(found)}")
        possession = expect_map(m["possession"], "possession")
        wire = {
            "type": ACTION_ZONE_ADD, "zone_id": m["zone_id"], "name": m["name"], "country": m["country"],
            "admin_key": parse_hex(m["admin_key"], "admin_key"),
            "validator_key": parse_hex(m["validator_key"], "validator_key"),
            "possession": {name: parse_hex(sig, f"possession.{name}") for name, sig in possession.items()},
        }
        zone = decode_action(wire)
        assert isinstance(zone, ZoneAdd)
        return cls(expect_str(m["chain_id"], "chain_id"), zone)


def parse_hex(value: Any, what: str) -> bytes:
    text = expect_str(value, what)
    try:
        return bytes.fromhex(text)
    except ValueError as exc:
        raise MalformedTransactionError(f"{what}: expected hex, got {bounded_repr(text)}") from exc


def build_join_request(
    chain_id: str, zone_id: str, name: str, country: str, admin: ZoneKey, validator: ZoneKey
) -> JoinRequest:
    """The request for this key pair, signed by each key held privately."""
    if admin.public == validator.public:
        raise GovDuplicateKeyError("admin_key and validator_key: expected two different keys")
    possession = Possession.sign(
        chain_id, zone_id, admin.public, validator.public, new_admin=admin.private, new_validator=validator.private
    )
    return JoinRequest(chain_id, ZoneAdd(zone_id, name, country, admin.public, validator.public, possession))


def read_join_request(path: str) -> JoinRequest:
    """The request in file ``path``; every fault is named with the file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CliError(f"--request: cannot read {path}: {exc.strerror}") from exc
    try:
        return JoinRequest.from_json(parse_json(data))
    except JsonError as exc:
        raise JsonError(f"{path}: expected a join request in JSON: {exc}") from exc
    except LedgerError as exc:
        raise type(exc)(f"{path}: {exc}") from exc


def write_join_request(path: str, request: JoinRequest, *, force: bool) -> None:
    """Write the request atomically; an existing file is replaced only with ``force``."""
    target = Path(path)
    if target.exists() and not force:
        raise CliError(f"--out: expected a new file, got an existing {path} (use --force to replace it)")
    temporary = target.with_name(target.name + ".tmp")
    try:
        temporary.write_text(json.dumps(request.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(temporary, target)
    except OSError as exc:
        raise CliError(f"--out: cannot write {path}: {exc.strerror}") from exc


def validate_zone_arguments(zone_id: str, name: str, country: str) -> None:
    """The zone's identity as a ``zone.add`` will be checked, before any key is made."""
    if not is_valid_zone_id(zone_id):
        raise CliError(f"--zone-id: expected a zone id such as \"EG-TEDA\", got {zone_id!r:.80}")
    if not name or len(name) > MAX_NAME_CHARS:
        raise CliError(f"--name: expected 1 to {MAX_NAME_CHARS} characters, got {len(name)}")
    if not is_country_code(country):
        raise CliError(f"--country: expected an ISO 3166-1 alpha-2 code such as \"EG\", got {country!r:.80}")


def describe_key(key: ZoneKey, spec: str) -> str:
    if key.private is None:
        return f"{key.public.hex()}  (public key only: not signed; the zone's current key)"
    return f"{key.public.hex()}  (signed with {spec})"


# --- the command -------------------------------------------------------------------


def run_join_request(args: argparse.Namespace) -> int:
    validate_zone_arguments(args.zone_id, args.name, args.country)
    if os.path.abspath(args.admin_key) == os.path.abspath(args.validator_key):
        raise CliError("--admin-key and --validator-key: expected two different keys, got the same file")
    if Path(args.out).exists() and not args.force:
        raise CliError(f"--out: expected a new file, got an existing {args.out} (use --force to replace it)")
    passphrase = read_passphrase(args.passphrase_env)
    admin = load_or_generate_key(args.admin_key, passphrase, "--admin-key")
    validator = load_or_generate_key(args.validator_key, passphrase, "--validator-key")
    for key, spec, role in ((admin, args.admin_key, "admin"), (validator, args.validator_key, "validator")):
        if key.generated:
            print(f"generated {spec} (new {role} key, mode 0600)")
    request = build_join_request(args.chain_id, args.zone_id, args.name, args.country, admin, validator)
    write_join_request(args.out, request, force=args.force)
    print(f"wrote {args.out}: zone {args.zone_id} ({args.name}, {args.country}) on chain {args.chain_id}")
    print(f"admin_key      {describe_key(admin, args.admin_key)}")
    print(f"validator_key  {describe_key(validator, args.validator_key)}")
    print(f"next: an admin of a member zone runs 'zoneledger gov propose zone-add --request {args.out} "
          "--key ADMIN.pem --node URL' (zone-rotate for new keys of a member zone)")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "join-request", help="write a zone's join request: public keys and their proof of possession",
        description="Sign the join claim with the zone's keys, here, and write the public keys and "
        "signatures to a JSON file. Private keys never leave this machine; missing key files are generated.",
    )
    parser.add_argument("--chain-id", required=True, metavar="C", help="the chain to join (its genesis chain_id)")
    parser.add_argument("--zone-id", required=True, metavar="Z", help="the zone's id, e.g. HU-CSEPEL")
    parser.add_argument("--name", required=True, metavar="N", help="the zone's name")
    parser.add_argument("--country", required=True, metavar="CC", help="ISO 3166-1 alpha-2 country code")
    key_help = "private key file (generated, mode 0600, if it does not exist) or a public key (hex or PEM: not signed)"
    parser.add_argument("--admin-key", required=True, metavar="A.pem", help=f"the zone's admin key: {key_help}")
    parser.add_argument("--validator-key", required=True, metavar="V.pem", help=f"the zone's validator key: {key_help}")
    parser.add_argument("--out", required=True, metavar="FILE", help="where to write the request (JSON)")
    parser.add_argument("--force", action="store_true", help="replace an existing --out file")
    parser.add_argument("--passphrase-env", metavar="VAR",
                        help="environment variable holding the passphrase of the key files (new ones are encrypted with it)")
    parser.set_defaults(func=run_join_request)
