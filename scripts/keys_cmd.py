"""``zoneledger keygen`` and ``zoneledger genesis init|add-zone|add-auditor|show``.

Owns the command line that makes an alliance's keys and founding file:

* ``keygen --out FILE [--passphrase-env VAR]`` writes a PKCS#8 PEM (mode 0600,
  encrypted when the variable names a passphrase) and prints only the public key.
* ``genesis init`` writes a *draft*: chain id, time, default consensus settings and
  ``"zones": []``. A genesis needs at least one zone to load (``Genesis.from_json``),
  so a draft is checked by parsing it with a throwaway zone in place; once
  ``add-zone`` has added the first real zone every write is checked by the real parser.
* ``genesis add-zone`` / ``add-auditor`` append to the file (a duplicate zone or key
  is refused in one line); ``genesis show`` prints chain id, hash, zones, validators.

A key argument is 64 hex characters, or a file: a private key PEM (its public key is
taken; ``--passphrase-env`` decrypts it) or a public key PEM.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.encoding import parse_json
from ledger.errors import GenesisError, KeyFileError, LedgerError
from ledger.genesis import ConsensusParams, Genesis
from ledger.keys import SigningKey, is_valid_public_key

_HEX_KEY = re.compile(r"^[0-9a-fA-F]{64}$")
# A syntactically valid stand-in zone, so a draft without zones can be checked by the
# one genesis parser instead of a second copy of its rules.
_PLACEHOLDER_ZONE_LABEL = "zoneledger genesis draft placeholder"


def _cli_error(message: str) -> Exception:
    from scripts.usage import CliError  # late import: scripts.cli imports this module

    return CliError(message)


def read_passphrase(env_var: str | None) -> bytes | None:
    """The passphrase held in environment variable ``env_var`` (never on the command line)."""
    if env_var is None:
        return None
    value = os.environ.get(env_var)
    if not value:
        raise _cli_error(f"--passphrase-env: expected a passphrase in ${env_var}, got nothing")
    return value.encode("utf-8")


def load_public_key(spec: str, passphrase: bytes | None = None, *, what: str = "key") -> bytes:
    """A public key from 64 hex characters, a private key PEM file or a public key PEM file."""
    if _HEX_KEY.match(spec):
        key = bytes.fromhex(spec)
        if not is_valid_public_key(key):
            raise KeyFileError(f"{what}: expected an Ed25519 public key, got {spec}")
        return key
    path = Path(spec)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{what}: expected 64 hex characters or a key file, got {spec} ({exc.strerror})") from exc
    if b"PUBLIC KEY" in data:
        try:
            public = serialization.load_pem_public_key(data)
        except ValueError as exc:
            raise KeyFileError(f"{what}: {spec}: expected a PEM public key, got unreadable data") from exc
        if not isinstance(public, Ed25519PublicKey):
            raise KeyFileError(f"{what}: {spec}: expected an Ed25519 key, got {type(public).__name__}")
        return public.public_bytes_raw()
    return SigningKey.from_pem(data, passphrase, source=spec).public


# --- the draft file -------------------------------------------------------------


def read_draft(path: str | Path) -> dict[str, Any]:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise GenesisError(f"cannot read genesis {path}: {exc.strerror}") from exc
    try:
        value = parse_json(data)
    except LedgerError as exc:
        raise GenesisError(f"{path}: {exc}") from exc
    if not isinstance(value, dict):
        raise GenesisError(f"{path}: expected a JSON object")
    value.setdefault("zones", [])
    value.setdefault("auditors", [])
    return value


def validate_draft(value: dict[str, Any]) -> None:
    """Check a genesis that may not have zones yet; raise ``GenesisError``."""
    if value.get("zones"):
        Genesis.from_json(value)
        return
    # Two keys: genesis refuses one key in two roles (decision 0018).
    admin = SigningKey.from_label(f"{_PLACEHOLDER_ZONE_LABEL} admin").public.hex()
    validator = SigningKey.from_label(f"{_PLACEHOLDER_ZONE_LABEL} validator").public.hex()
    trial = dict(value)
    trial["zones"] = [{
        "zone_id": "XX-DRAFT", "name": "draft", "country": "SG",
        "admin_key": admin, "validator_key": validator, "officers": [],
    }]
    Genesis.from_json(trial)


def write_draft(path: str | Path, value: dict[str, Any]) -> None:
    """Check, then replace the file atomically (a crash never leaves half a genesis)."""
    validate_draft(value)
    target = Path(path)
    temporary = target.with_name(target.name + ".tmp")
    try:
        temporary.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(temporary, target)
    except OSError as exc:
        raise GenesisError(f"cannot write genesis {path}: {exc.strerror}") from exc


# --- commands ---------------------------------------------------------------------


def run_keygen(args: argparse.Namespace) -> int:
    passphrase = read_passphrase(args.passphrase_env)
    key = SigningKey.generate()
    key.save(args.out, passphrase)
    print(key.public.hex())
    return 0


def run_genesis_init(args: argparse.Namespace) -> int:
    target = Path(args.out)
    if target.exists() and not args.force:
        raise GenesisError(f"expected a new genesis file, got an existing {target} (use --force to replace it)")
    genesis_time = args.time or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    value: dict[str, Any] = {
        "chain_id": args.chain_id,
        "genesis_time": genesis_time,
        "zones": [],
        "auditors": [],
        "consensus": asdict(ConsensusParams()),
    }
    write_draft(target, value)
    print(f"wrote {target}: chain {args.chain_id}, no zones yet (add them with 'zoneledger genesis add-zone')")
    return 0


def _all_keys(value: dict[str, Any]) -> dict[str, str]:
    """Every key already in the draft (lowercase hex) and where it serves."""
    found: dict[str, str] = {}
    for zone in value.get("zones", []):
        if not isinstance(zone, dict):
            continue
        zone_id = zone.get("zone_id")
        for role in ("admin_key", "validator_key"):
            if isinstance(zone.get(role), str):
                found.setdefault(zone[role].lower(), f"{zone_id} {role}")
        for officer in zone.get("officers", []) or []:
            if isinstance(officer, str):
                found.setdefault(officer.lower(), f"{zone_id} officer")
    for auditor in value.get("auditors", []):
        if isinstance(auditor, str):
            found.setdefault(auditor.lower(), "auditor")
    return found


def run_genesis_add_zone(args: argparse.Namespace) -> int:
    value = read_draft(args.genesis)
    passphrase = read_passphrase(args.passphrase_env)
    zones = value["zones"]
    if not isinstance(zones, list):
        raise GenesisError("zones: expected a list")
    if any(isinstance(z, dict) and z.get("zone_id") == args.zone_id for z in zones):
        raise GenesisError(f"zone {args.zone_id} is already in {args.genesis}")
    admin = load_public_key(args.admin_key, passphrase, what="--admin-key").hex()
    validator = load_public_key(args.validator_key, passphrase, what="--validator-key").hex()
    officers = [load_public_key(o, passphrase, what="--officer").hex() for o in args.officer]
    existing = _all_keys(value)
    if validator in existing and existing[validator].endswith("validator_key"):
        raise GenesisError(f"--validator-key: {validator} already serves as {existing[validator]}")
    zones.append({
        "zone_id": args.zone_id,
        "name": args.name,
        "country": args.country,
        "admin_key": admin,
        "validator_key": validator,
        "officers": officers,
    })
    write_draft(args.genesis, value)
    print(f"added zone {args.zone_id} (validator {len(zones) - 1}) to {args.genesis}")
    return 0


def run_genesis_add_auditor(args: argparse.Namespace) -> int:
    value = read_draft(args.genesis)
    key = load_public_key(args.key, read_passphrase(args.passphrase_env), what="--key").hex()
    auditors = value["auditors"]
    if not isinstance(auditors, list):
        raise GenesisError("auditors: expected a list")
    if key in auditors:
        raise GenesisError(f"auditor {key} is already in {args.genesis}")
    auditors.append(key)
    write_draft(args.genesis, value)
    print(f"added auditor {key} to {args.genesis}")
    return 0


def run_genesis_show(args: argparse.Namespace) -> int:
    value = read_draft(args.genesis)
    if not value.get("zones"):
        validate_draft(value)
        print(f"chain id      {value.get('chain_id')}")
        print(f"genesis time  {value.get('genesis_time')}")
        print("draft: no zones yet, so no genesis hash (add one with 'zoneledger genesis add-zone')")
        return 0
    genesis = Genesis.from_json(value)
    print(f"chain id      {genesis.chain_id}")
    print(f"genesis time  {genesis.genesis_time}")
    print(f"genesis hash  {genesis.genesis_hash.hex()}")
    print(f"validators    {len(genesis.validators)} (hash {genesis.validators_hash.hex()})")
    for index, zone in enumerate(genesis.zones):
        print(f"  [{index}] {zone.zone_id} ({zone.country}) {zone.name}")
        print(f"      validator {zone.validator_key.hex()}")
        print(f"      admin     {zone.admin_key.hex()}")
        for officer in zone.officers:
            print(f"      officer   {officer.hex()}")
    print(f"auditors      {len(genesis.auditors)}")
    for auditor in genesis.auditors:
        print(f"  {auditor.hex()}")
    return 0


def register(subparsers: Any) -> None:
    keygen = subparsers.add_parser("keygen", help="generate an Ed25519 key file; prints the public key")
    keygen.add_argument("--out", required=True, metavar="FILE", help="new PKCS#8 PEM file (mode 0600)")
    keygen.add_argument("--passphrase-env", metavar="VAR", help="encrypt with the passphrase in this variable")
    keygen.set_defaults(func=run_keygen)

    genesis = subparsers.add_parser("genesis", help="create and inspect a genesis file")
    actions = genesis.add_subparsers(dest="genesis_command", metavar="ACTION", required=True)

    init = actions.add_parser("init", help="write a genesis draft with no zones yet")
    init.add_argument("--chain-id", required=True, metavar="ID")
    init.add_argument("--out", required=True, metavar="FILE")
    init.add_argument("--time", metavar="RFC3339", help="genesis time, UTC (default: now)")
    init.add_argument("--force", action="store_true", help="replace an existing file")
    init.set_defaults(func=run_genesis_init)

    key_help = "64 hex characters, or a private/public key PEM file"
    add_zone = actions.add_parser("add-zone", help="append a zone and its validator")
    add_zone.add_argument("genesis", metavar="GENESIS")
    add_zone.add_argument("--zone-id", required=True, metavar="ZONE")
    add_zone.add_argument("--name", required=True)
    add_zone.add_argument("--country", required=True, metavar="CC")
    add_zone.add_argument("--admin-key", required=True, metavar="KEY", help=key_help)
    add_zone.add_argument("--validator-key", required=True, metavar="KEY", help=key_help)
    add_zone.add_argument("--officer", action="append", default=[], metavar="KEY", help=key_help)
    add_zone.add_argument("--passphrase-env", metavar="VAR", help="passphrase of encrypted PEM key files")
    add_zone.set_defaults(func=run_genesis_add_zone)

    add_auditor = actions.add_parser("add-auditor", help="append an auditor key")
    add_auditor.add_argument("genesis", metavar="GENESIS")
    add_auditor.add_argument("--key", required=True, metavar="KEY", help=key_help)
    add_auditor.add_argument("--passphrase-env", metavar="VAR", help="passphrase of an encrypted PEM key file")
    add_auditor.set_defaults(func=run_genesis_add_auditor)

    show = actions.add_parser("show", help="print chain id, genesis hash, zones and validators")
    show.add_argument("genesis", metavar="GENESIS")
    show.set_defaults(func=run_genesis_show)
