"""``zoneledger officer add|revoke|list``: a zone admin authorises and withdraws the
officer keys that may write its zone's documents (DESIGN §3, §14).

``add`` and ``revoke`` sign ``officer.register`` / ``officer.revoke`` with the admin's
key; the zone defaults to the one whose admin key that is (from ``GET /v1/zones``). The
officer's key is named by its public key only (64 hex characters, a public key PEM, or
the officer's private key PEM, from which only the public key is read): the officer's
private key never needs to reach the admin. ``list`` reads ``GET /v1/officers``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ledger.transactions import OfficerRegister, OfficerRevoke
from scripts.client_cmd import EXIT_OK, reports_problems
from scripts.gov_client import (
    GovernanceClient,
    add_admin_arguments,
    add_node_arguments,
    connect,
    find_admin_zone,
    find_zone,
    load_admin_key,
    print_sent,
    send_signed,
)
from scripts.keys_cmd import load_public_key
from scripts.usage import CliError


def choose_zone(client: GovernanceClient, zone_arg: str | None, admin_key: bytes) -> str:
    """``--zone`` if given (it must be a zone of the chain), else the zone ``admin_key`` administers."""
    zones = client.get_zones()
    zone = find_zone(zones, zone_arg) if zone_arg else find_admin_zone(zones, admin_key)
    return str(zone["zone_id"])


def send_officer_change(args: argparse.Namespace, body_type: type[OfficerRegister] | type[OfficerRevoke]) -> int:
    officer = load_public_key(args.officer, what="KEY")
    key = load_admin_key(args)
    if officer == key.public:
        raise CliError("KEY: expected the officer's own key, got the admin key (a key serves one role)")
    with connect(args) as client:
        chain_id = client.get_status()["chain_id"]
        zone_id = choose_zone(client, args.zone, key.public)
        sent = send_signed(client, key, chain_id, body_type(zone_id, officer), args)
    print(f"officer      {officer.hex()}")
    print(f"zone         {zone_id}")
    print(f"tx_hash      {sent.tx_hash}")
    print_sent(sent)
    return sent.exit_code


@reports_problems
def run_officer_add(args: argparse.Namespace) -> int:
    return send_officer_change(args, OfficerRegister)


@reports_problems
def run_officer_revoke(args: argparse.Namespace) -> int:
    return send_officer_change(args, OfficerRevoke)


def print_officer_table(officers: list[dict[str, Any]]) -> None:
    if not officers:
        print("no officers")
        return
    print(f"{'KEY':<64}  {'ZONE':<20} {'REGISTERED':>10} {'REVOKED':>9}  STATUS")
    for o in officers:
        revoked = o.get("revoked_height")
        print(f"{o.get('key')!s:<64}  {o.get('zone_id')!s:<20} {o.get('registered_height')!s:>10} "
              f"{'-' if revoked is None else revoked!s:>9}  {'active' if o.get('active') else 'revoked'}")


@reports_problems
def run_officer_list(args: argparse.Namespace) -> int:
    with connect(args) as client:
        officers = client.get_officers(args.zone)
    if args.json:
        print(json.dumps(officers, indent=2, ensure_ascii=False, sort_keys=True))
    else:
        print_officer_table(officers)
    return EXIT_OK


def register(subparsers: Any) -> None:
    officer = subparsers.add_parser("officer", help="register, revoke and list officer keys (zone admins)")
    commands = officer.add_subparsers(dest="officer_command", metavar="ACTION", required=True)
    key_help = "the officer's public key: 64 hex characters, or a public or private key PEM file"
    zone_help = "the zone (default: the zone --key is the admin of)"
    for name, help_, run in (
        ("add", "register an officer key for the zone (officer.register)", run_officer_add),
        ("revoke", "revoke an officer key of the zone, for good (officer.revoke)", run_officer_revoke),
    ):
        parser = commands.add_parser(name, help=help_)
        parser.add_argument("officer", metavar="KEY", help=key_help)
        parser.add_argument("--zone", metavar="Z", help=zone_help)
        add_admin_arguments(parser)
        parser.set_defaults(func=run)

    listing = commands.add_parser("list", help="list every officer key, active or revoked")
    listing.add_argument("--zone", metavar="Z", help="only this zone's officers")
    listing.add_argument("--json", action="store_true", help="print the node's JSON")
    add_node_arguments(listing)
    listing.set_defaults(func=run_officer_list)
