"""``zoneledger gov propose|approve|list|show`` and ``zoneledger zone rotate-keys``: the
alliance deciding together, and a zone replacing its own keys (DESIGN §12, §14).

``gov propose ACTION`` signs ``gov.propose`` with a zone admin's key and prints the
proposal id, which is the propose transaction's ``tx_hash``. The proposer's approval
counts; other admins run ``gov approve ID``, and the action executes in the block that
holds approval number ``floor(2m/3)+1`` (m: the active zones when it was proposed).
A proposal lives until ``expires_height``: the node's height now plus ``--expires-in``
(``DEFAULT_PROPOSAL_LIFETIME`` heights unless given).

Every action is built through the ledger's own decoder (``decode_action``), so what the
node would refuse as malformed (a bad zone id, a setting out of bounds) is refused here
first, with the same code. A join request's possession signatures are verified here too
(``validate_possession``) before anything is sent.

``zone rotate-keys`` signs ``zone.rotate_keys`` with the zone's current admin key: new
key files are generated when they do not exist, and each new key signs the claim of the
zone's resulting pair.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ledger.errors import GovPossessionError, NodeUnavailableError
from ledger.governance import (
    ACTION_AUDITOR_ADD,
    ACTION_AUDITOR_REMOVE,
    ACTION_CONSENSUS_SET,
    ACTION_ZONE_REMOVE,
    CONSENSUS_SETTING_BOUNDS,
    MAX_PROPOSAL_LIFETIME,
    Action,
    KeyChange,
    Possession,
    ZoneRotate,
    decode_action,
    validate_possession,
)
from ledger.transactions import GovApprove, GovPropose, ZoneRotateKeys
from scripts.client_cmd import EXIT_OK, reports_problems
from scripts.gov_client import (
    GovernanceClient,
    Sent,
    add_admin_arguments,
    add_node_arguments,
    connect,
    find_admin_zone,
    find_zone,
    load_admin_key,
    parse_key_hex,
    parse_proposal_id,
    print_sent,
    send_signed,
)
from scripts.join_cmd import JoinRequest, load_signing_key, read_join_request
from scripts.keys_cmd import load_public_key, read_passphrase
from scripts.usage import CliError

DEFAULT_PROPOSAL_LIFETIME = 10_000
"""Heights a proposal stays open by default: about three hours at a block a second,
time for admins in every time zone of the alliance to read and approve it."""


# --- actions -----------------------------------------------------------------------


def get_node_height(status: dict[str, Any]) -> int:
    height = status.get("height")
    if not isinstance(height, int) or height < 0:
        raise NodeUnavailableError(f"expected the node's height in its status, got {height!r:.40}")
    return height


def validate_request_chain(request: JoinRequest, chain_id: str, path: str) -> None:
    if request.chain_id != chain_id:
        raise GovPossessionError(
            f"{path}: expected a join request for chain {chain_id!r}, got one signed for {request.chain_id!r}"
        )


def build_zone_add(args: argparse.Namespace, client: GovernanceClient, chain_id: str) -> Action:
    """The join request's zone, each of its two new keys proven by its signature."""
    request = read_join_request(args.request)
    validate_request_chain(request, chain_id, args.request)
    zone = request.zone
    validate_possession(
        zone.possession, chain_id, zone.zone_id, zone.admin_key, zone.validator_key, new_admin=True, new_validator=True,
    )
    return zone


def build_zone_rotate(args: argparse.Namespace, client: GovernanceClient, chain_id: str) -> Action:
    """The request's keys that differ from the zone's current ones, with their signatures."""
    request = read_join_request(args.request)
    validate_request_chain(request, chain_id, args.request)
    claim = request.zone
    current = find_zone(client.get_zones(), claim.zone_id, f"{args.request}: zone_id")
    new_admin = claim.admin_key != parse_key_hex(current.get("admin_key"), "admin_key")
    new_validator = claim.validator_key != parse_key_hex(current.get("validator_key"), "validator_key")
    if not (new_admin or new_validator):
        raise CliError(f"{args.request}: expected a new admin or validator key for {claim.zone_id}, got its current keys")
    possession = Possession(
        claim.possession.admin_sig if new_admin else None, claim.possession.validator_sig if new_validator else None
    )
    validate_possession(
        possession, chain_id, claim.zone_id, claim.admin_key, claim.validator_key,
        new_admin=new_admin, new_validator=new_validator,
    )
    return ZoneRotate(KeyChange(
        claim.zone_id, claim.admin_key if new_admin else None, claim.validator_key if new_validator else None, possession,
    ))


def build_zone_remove(args: argparse.Namespace, client: GovernanceClient, chain_id: str) -> Action:
    return decode_action({"type": ACTION_ZONE_REMOVE, "zone_id": args.zone_id})


def build_auditor_add(args: argparse.Namespace, client: GovernanceClient, chain_id: str) -> Action:
    return decode_action({"type": ACTION_AUDITOR_ADD, "auditor_key": load_public_key(args.auditor, what="KEY")})


def build_auditor_remove(args: argparse.Namespace, client: GovernanceClient, chain_id: str) -> Action:
    return decode_action({"type": ACTION_AUDITOR_REMOVE, "auditor_key": load_public_key(args.auditor, what="KEY")})


def build_consensus_set(args: argparse.Namespace, client: GovernanceClient, chain_id: str) -> Action:
    settings = {name: getattr(args, name) for name in CONSENSUS_SETTING_BOUNDS if getattr(args, name) is not None}
    if not settings:
        raise CliError(f"consensus-set: expected at least one of {', '.join(_option(n) for n in CONSENSUS_SETTING_BOUNDS)}")
    return decode_action({"type": ACTION_CONSENSUS_SET, **settings})


def _option(setting: str) -> str:
    return "--" + setting.replace("_", "-")


# --- printing ----------------------------------------------------------------------


def describe_progress(proposal: dict[str, Any]) -> str:
    """``open: 2 of 3 approvals``, ``executed at height 7``, ``expired``."""
    status = proposal.get("status")
    if status == "executed":
        return f"executed at height {proposal.get('closed_height')}"
    approvals = proposal.get("approvals")
    count = len(approvals) if isinstance(approvals, list) else "?"
    return f"{status}: {count} of {proposal.get('approvals_needed')} approvals"


def print_proposal_progress(client: GovernanceClient, proposal_id: str, sent: Sent) -> None:
    """Once the transaction is committed, where its proposal stands."""
    if sent.status == "committed":
        print(f"proposal     {describe_progress(client.get_proposal(proposal_id))}")


def print_proposal_table(proposals: list[dict[str, Any]]) -> None:
    if not proposals:
        print("no proposals")
        return
    print(f"{'PROPOSAL':<64}  {'ACTION':<15} {'STATUS':<9} {'APPROVALS':>9} {'PROPOSED':>9} {'EXPIRES':>9}")
    for p in proposals:
        action = p.get("action")
        kind = action.get("type") if isinstance(action, dict) else "?"
        approvals = p.get("approvals")
        count = f"{len(approvals) if isinstance(approvals, list) else '?'}/{p.get('approvals_needed')}"
        print(f"{p.get('proposal_id')!s:<64}  {kind!s:<15} {p.get('status')!s:<9} {count:>9} "
              f"{p.get('proposed_height')!s:>9} {p.get('expires_height')!s:>9}")


# --- commands ----------------------------------------------------------------------


@reports_problems
def run_propose(args: argparse.Namespace) -> int:
    key = load_admin_key(args)
    with connect(args) as client:
        status = client.get_status()
        chain_id = status["chain_id"]
        action = args.build_action(args, client, chain_id)
        expires_height = get_node_height(status) + args.expires_in
        sent = send_signed(client, key, chain_id, GovPropose(action, expires_height), args)
        print(f"proposal_id  {sent.tx_hash}")
        print(f"action       {action.TYPE}")
        print(f"expires      after height {expires_height}")
        print_sent(sent)
        print_proposal_progress(client, sent.tx_hash, sent)
    return sent.exit_code


@reports_problems
def run_approve(args: argparse.Namespace) -> int:
    proposal_id = parse_proposal_id(args.proposal_id)
    key = load_admin_key(args)
    with connect(args) as client:
        chain_id = client.get_status()["chain_id"]
        sent = send_signed(client, key, chain_id, GovApprove(bytes.fromhex(proposal_id)), args)
        print(f"tx_hash      {sent.tx_hash}")
        print_sent(sent)
        print_proposal_progress(client, proposal_id, sent)
    return sent.exit_code


@reports_problems
def run_list(args: argparse.Namespace) -> int:
    with connect(args) as client:
        proposals = client.get_proposals()
    proposals.sort(key=lambda p: (p.get("proposed_height") or 0, str(p.get("proposal_id"))))
    if args.json:
        print(json.dumps(proposals, indent=2, ensure_ascii=False, sort_keys=True))
    else:
        print_proposal_table(proposals)
    return EXIT_OK


@reports_problems
def run_show(args: argparse.Namespace) -> int:
    proposal_id = parse_proposal_id(args.proposal_id)
    with connect(args) as client:
        proposal = client.get_proposal(proposal_id)
    print(json.dumps(proposal, indent=2, ensure_ascii=False, sort_keys=True))
    return EXIT_OK


@reports_problems
def run_rotate_keys(args: argparse.Namespace) -> int:
    if args.new_admin_key is None and args.new_validator_key is None:
        raise CliError("zone rotate-keys: expected --new-admin-key, --new-validator-key or both")
    key = load_admin_key(args)
    with connect(args) as client:
        chain_id = client.get_status()["chain_id"]
        zones = client.get_zones()
        zone = find_zone(zones, args.zone) if args.zone else find_admin_zone(zones, key.public)
        zone_id = str(zone["zone_id"])
        passphrase = read_passphrase(args.passphrase_env)
        new_admin = None if args.new_admin_key is None else load_signing_key(args.new_admin_key, passphrase, "--new-admin-key")
        new_validator = (None if args.new_validator_key is None
                         else load_signing_key(args.new_validator_key, passphrase, "--new-validator-key"))
        for new, spec, role in ((new_admin, args.new_admin_key, "admin"), (new_validator, args.new_validator_key, "validator")):
            if new is not None and new.generated:
                print(f"generated {spec} (new {role} key, mode 0600)")
        admin_key = new_admin.public if new_admin else parse_key_hex(zone.get("admin_key"), "admin_key")
        validator_key = new_validator.public if new_validator else parse_key_hex(zone.get("validator_key"), "validator_key")
        possession = Possession.sign(
            chain_id, zone_id, admin_key, validator_key,
            new_admin=new_admin.private if new_admin else None,
            new_validator=new_validator.private if new_validator else None,
        )
        change = KeyChange(
            zone_id, new_admin.public if new_admin else None, new_validator.public if new_validator else None, possession,
        )
        sent = send_signed(client, key, chain_id, ZoneRotateKeys(change), args)
    print(f"tx_hash      {sent.tx_hash}")
    print_sent(sent)
    print(f"zone         {zone_id}")
    if new_admin is not None:
        print(f"admin_key    {new_admin.public.hex()}  ({args.new_admin_key}: the zone's admin key once committed)")
    if new_validator is not None:
        print(f"validator    {new_validator.public.hex()}  ({args.new_validator_key})")
        if sent.height is not None:
            print(f"note         the zone's node signs with {args.new_validator_key} from height {sent.height + 2}")
    return sent.exit_code


# --- parsers -----------------------------------------------------------------------


def lifetime(text: str) -> int:
    """``--expires-in``: 1 .. MAX_PROPOSAL_LIFETIME heights."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of heights, got {text!r}") from None
    if not 1 <= value <= MAX_PROPOSAL_LIFETIME:
        raise argparse.ArgumentTypeError(f"expected 1 to {MAX_PROPOSAL_LIFETIME} heights, got {value}")
    return value


def _add_propose_parser(actions: Any, name: str, help_: str, build: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = actions.add_parser(name, help=help_)
    add_admin_arguments(parser)
    parser.add_argument("--expires-in", type=lifetime, default=DEFAULT_PROPOSAL_LIFETIME, metavar="N",
                        help=f"heights the proposal stays open from the node's height now "
                        f"(default {DEFAULT_PROPOSAL_LIFETIME:,}, at most {MAX_PROPOSAL_LIFETIME:,})")
    parser.set_defaults(func=run_propose, build_action=build)
    return parser


def register_gov(subparsers: Any) -> None:
    gov = subparsers.add_parser("gov", help="propose, approve and read alliance changes (zone admins)")
    commands = gov.add_subparsers(dest="gov_command", metavar="ACTION", required=True)

    propose = commands.add_parser("propose", help="propose a change; prints the proposal id")
    actions = propose.add_subparsers(dest="propose_action", metavar="CHANGE", required=True)
    zone_add = _add_propose_parser(actions, "zone-add", "admit a zone from its join request", build_zone_add)
    zone_add.add_argument("--request", required=True, metavar="join.json", help="the zone's join request")
    zone_remove = _add_propose_parser(actions, "zone-remove", "remove a zone from the alliance", build_zone_remove)
    zone_remove.add_argument("--zone-id", required=True, metavar="Z")
    zone_rotate = _add_propose_parser(
        actions, "zone-rotate", "replace the keys of a zone that lost them", build_zone_rotate
    )
    zone_rotate.add_argument("--request", required=True, metavar="rotate.json",
                             help="a join request for the zone's keys; those that differ from its current keys are new")
    key_help = "64 hex characters, or a public or private key PEM file"
    auditor_add = _add_propose_parser(actions, "auditor-add", "add an auditor key", build_auditor_add)
    auditor_add.add_argument("auditor", metavar="KEY", help=key_help)
    auditor_remove = _add_propose_parser(actions, "auditor-remove", "remove an auditor key", build_auditor_remove)
    auditor_remove.add_argument("auditor", metavar="KEY", help=key_help)
    consensus = _add_propose_parser(actions, "consensus-set", "change consensus settings", build_consensus_set)
    for name, (low, high) in CONSENSUS_SETTING_BOUNDS.items():
        consensus.add_argument(_option(name), dest=name, type=int, metavar="N", help=f"{low} to {high:,}")

    approve = commands.add_parser("approve", help="approve an open proposal")
    approve.add_argument("proposal_id", metavar="ID", help="the proposal id (64 hex characters)")
    add_admin_arguments(approve)
    approve.set_defaults(func=run_approve)

    listing = commands.add_parser("list", help="list proposals, oldest first")
    listing.add_argument("--json", action="store_true", help="print the node's JSON")
    add_node_arguments(listing)
    listing.set_defaults(func=run_list)

    show = commands.add_parser("show", help="print one proposal (JSON)")
    show.add_argument("proposal_id", metavar="ID", help="the proposal id (64 hex characters)")
    add_node_arguments(show)
    show.set_defaults(func=run_show)


def register_zone(subparsers: Any) -> None:
    zone = subparsers.add_parser("zone", help="a zone's own keys (zone admins)")
    commands = zone.add_subparsers(dest="zone_command", metavar="ACTION", required=True)
    rotate = commands.add_parser(
        "rotate-keys", help="replace this zone's admin and/or validator key (signed by the current admin)",
    )
    key_help = "private key file; generated (mode 0600) if it does not exist"
    rotate.add_argument("--new-admin-key", metavar="A.pem", help=f"the new admin key: {key_help}")
    rotate.add_argument("--new-validator-key", metavar="V.pem", help=f"the new validator key: {key_help}")
    rotate.add_argument("--zone", metavar="Z", help="the zone (default: the zone --key is the admin of)")
    add_admin_arguments(rotate)
    rotate.set_defaults(func=run_rotate_keys)


def register(subparsers: Any) -> None:
    register_gov(subparsers)
    register_zone(subparsers)
