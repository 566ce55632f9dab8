"""What the zone admin's commands share (DESIGN §12, §14): a node client that reads the
governance routes, and sending one admin-signed transaction.

``zoneledger officer``, ``gov`` and ``zone rotate-keys`` each sign one transaction with
an admin key and post it as ``zoneledger submit`` does (:mod:`scripts.client_cmd`:
``--wait`` holds the answer until the transaction is final, exit 3 if it is not). They
read the alliance from ``GET /v1/zones``, ``/v1/governance/proposals`` and
``/v1/officers``, following pages until a page comes back short.

A transaction refused after admission comes back, with ``--wait``, as a 422 whose body
is the transaction's result (``{"status": "rejected", "error": {"type", "detail"}}``),
not a problem document; :class:`GovernanceClient` reads it as the problem it is, so the
admin sees the rule's code (``gov.proposal_expired``, ...) and not a bare status.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from ledger.errors import NodeUnavailableError
from ledger.keys import SigningKey
from ledger.transactions import Body, Transaction
from scripts.client_cmd import (
    DEFAULT_TIMEOUT_SECONDS,
    DEFAULT_WAIT_SECONDS,
    EXIT_NOT_FINAL,
    EXIT_OK,
    NODE_ENV,
    NodeClient,
    RemoteProblemError,
    progress,
)
from scripts.keys_cmd import read_passphrase
from scripts.usage import CliError

PAGE_LIMIT = 1000
"""Items asked for per page (the most ``api.routes_governance`` serves)."""
MAX_PAGES = 1000
"""Pages followed before giving up: a million items is no alliance's list."""

_HEX_ID = re.compile(r"^[0-9a-fA-F]{64}$")


class GovernanceClient(NodeClient):
    """A node's API as a zone admin uses it: governance reads and admin transactions."""

    def __enter__(self) -> GovernanceClient:
        return self

    def _read(self, response: httpx.Response) -> Any:
        if response.status_code == 422:
            rejection = read_rejection(response)
            if rejection is not None:
                raise RemoteProblemError(*rejection, response.status_code)
        return super()._read(response)

    def _get_page(self, path: str, query: str) -> list[dict[str, Any]]:
        _, page = self.request("GET", path, query=query)
        if not isinstance(page, list) or not all(isinstance(item, dict) for item in page):
            raise NodeUnavailableError(f"{path}: expected a list of objects from {self.base_url}, got {page!r:.80}")
        return page

    def get_keyed_list(self, path: str, item_key: str, query: str = "") -> list[dict[str, Any]]:
        """Every item of a list paged by ``?after=`` the last item's ``item_key``."""
        items: list[dict[str, Any]] = []
        cursor = ""
        for _ in range(MAX_PAGES):
            page = self._get_page(path, "&".join(p for p in (query, f"limit={PAGE_LIMIT}", cursor) if p))
            items.extend(page)
            if len(page) < PAGE_LIMIT:
                return items
            cursor = urlencode({"after": str(page[-1].get(item_key))})
        raise NodeUnavailableError(f"{path}: expected at most {MAX_PAGES} pages from {self.base_url}, got more")

    def get_zones(self) -> list[dict[str, Any]]:
        """Every zone ever admitted, in order of admission (paged by position)."""
        items: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            page = self._get_page("/v1/zones", f"since={len(items)}&limit={PAGE_LIMIT}")
            items.extend(page)
            if len(page) < PAGE_LIMIT:
                return items
        raise NodeUnavailableError(f"/v1/zones: expected at most {MAX_PAGES} pages from {self.base_url}, got more")

    def get_proposals(self) -> list[dict[str, Any]]:
        return self.get_keyed_list("/v1/governance/proposals", "proposal_id")

    def get_proposal(self, proposal_id: str) -> dict[str, Any]:
        _, value = self.request("GET", f"/v1/governance/proposals/{proposal_id}")
        if not isinstance(value, dict):
            raise NodeUnavailableError(f"expected a proposal from {self.base_url}, got {type(value).__name__}")
        return value

    def get_officers(self, zone_id: str | None = None) -> list[dict[str, Any]]:
        return self.get_keyed_list("/v1/officers", "key", urlencode({"zone": zone_id}) if zone_id else "")


def read_rejection(response: httpx.Response) -> tuple[str, str] | None:
    """``(type, detail)`` of a transaction result that says it was rejected, if it is one."""
    try:
        value = response.json()
    except ValueError:
        return None
    error = value.get("error") if isinstance(value, dict) and value.get("status") == "rejected" else None
    if isinstance(error, dict) and isinstance(error.get("type"), str):
        return error["type"], str(error.get("detail", ""))
    return None


# --- zones -------------------------------------------------------------------------


def find_zone(zones: list[dict[str, Any]], zone_id: str, what: str = "--zone") -> dict[str, Any]:
    """The zone record ``zone_id`` from ``GET /v1/zones``; ``what`` names where the id came from."""
    for zone in zones:
        if zone.get("zone_id") == zone_id:
            return zone
    raise CliError(f"{what}: expected a zone of this chain, got {zone_id!r:.80} (known: {zone_names(zones)})")


def find_admin_zone(zones: list[dict[str, Any]], admin_key: bytes) -> dict[str, Any]:
    """The active zone whose admin key is ``admin_key`` (the default ``--zone``)."""
    for zone in zones:
        if zone.get("admin_key") == admin_key.hex() and zone.get("status") == "active":
            return zone
    raise CliError(f"--key: {admin_key.hex()[:16]}… is the admin key of no active zone on this node; pass --zone")


def zone_names(zones: list[dict[str, Any]]) -> str:
    return ", ".join(str(zone.get("zone_id")) for zone in zones)


def parse_key_hex(value: Any, what: str) -> bytes:
    """A 32-byte key the node sent as hex."""
    if isinstance(value, str) and _HEX_ID.match(value):
        return bytes.fromhex(value)
    raise NodeUnavailableError(f"{what}: expected 64 hex characters from the node, got {value!r:.80}")


def parse_proposal_id(text: str) -> str:
    """A proposal id as typed (64 hex characters), in lowercase."""
    if not _HEX_ID.match(text):
        raise CliError(f"ID: expected a proposal id of 64 hex characters (the propose transaction's tx_hash), got {text!r:.80}")
    return text.lower()


# --- sending -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sent:
    """What the node answered about one transaction."""

    tx_hash: str
    status: str
    """``pending`` or ``committed`` (a rejection is raised, not returned)."""
    height: int | None
    """The block that committed it."""
    waited_s: int | None
    """How long the node was asked to hold its answer (``--wait``), else None."""

    @property
    def exit_code(self) -> int:
        """0, or ``EXIT_NOT_FINAL`` when ``--wait`` ended before the transaction was final."""
        return EXIT_NOT_FINAL if self.waited_s and self.status != "committed" else EXIT_OK


def connect(args: argparse.Namespace) -> GovernanceClient:
    if not args.node:
        raise CliError(f"--node: expected the node's URL (or ${NODE_ENV}), got nothing")
    return GovernanceClient(args.node, timeout=args.timeout)


def load_admin_key(args: argparse.Namespace) -> SigningKey:
    return SigningKey.load(args.key, read_passphrase(args.passphrase_env))


def send_signed(client: GovernanceClient, key: SigningKey, chain_id: str, body: Body, args: argparse.Namespace) -> Sent:
    """Sign ``body`` with ``key`` and post it (holding the answer with ``--wait``)."""
    # The nonce only has to make this transaction distinct; time in ms does.
    envelope = Transaction(chain_id, key.public, int(time.time() * 1000), body).sign(key)
    wait_seconds = args.wait_seconds if args.wait else None
    if wait_seconds:
        with progress("waiting for finality"):
            status, answer = client.post_transaction(envelope.encode(), None, wait_seconds)
    else:
        status, answer = client.post_transaction(envelope.encode(), None, None)
    state = str(answer.get("status", "pending" if status == 202 else "unknown"))
    height = answer.get("height")
    return Sent(answer["tx_hash"], state, height if isinstance(height, int) else None, wait_seconds)


def print_sent(sent: Sent) -> None:
    """``status`` on stdout; on stderr, that ``--wait`` ended before the transaction was final."""
    if sent.status == "committed":
        print(f"status       committed at height {sent.height}")
        return
    print(f"status       {sent.status}")
    if sent.exit_code == EXIT_NOT_FINAL:
        print(f"zoneledger: not final after {sent.waited_s} s; the transaction is {sent.status}", file=sys.stderr)


# --- arguments -----------------------------------------------------------------------


def add_node_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--node", default=os.environ.get(NODE_ENV), metavar="URL",
                        help=f"the node's base URL (default: ${NODE_ENV})")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS, metavar="S",
                        help="HTTP timeout in seconds")


def add_admin_arguments(parser: argparse.ArgumentParser, *, wait: bool = True) -> None:
    """``--key`` (a zone admin's private key), its passphrase, the node and ``--wait``."""
    parser.add_argument("--key", required=True, metavar="ADMIN.pem", help="the zone admin's private key file")
    parser.add_argument("--passphrase-env", metavar="VAR", help="environment variable holding the key's passphrase")
    add_node_arguments(parser)
    if wait:
        parser.add_argument("--wait", action="store_true", help="wait until the transaction is final")
        parser.add_argument("--wait-seconds", type=int, default=DEFAULT_WAIT_SECONDS, metavar="S",
                            help=f"how long the node holds the answer with --wait (default {DEFAULT_WAIT_SECONDS})")
