"""Public governance reads (DESIGN §12, §14): the alliance's zones, its proposals and its
officers, as the committed chain holds them.

Public and read-only like headers and validators: membership is what a trader's proof
bundle names (the issuer's zone and officer record), and the admins who govern must be
able to see a proposal before they approve it, without being officers or auditors. Bytes
are lowercase hex.

* ``GET /v1/zones``: every zone ever admitted, in order of admission, with its keys,
  status, and its index in the validator set deciding the next height (null when not in
  it).
* ``GET /v1/governance/proposals`` and ``.../{proposal_id}``: each proposal's action,
  approvals, approvals needed and status. A proposal that no approval can reach any more
  (the next block's height is past ``expires_height``) is reported ``expired`` even
  while the state tree still says ``open``: the block after ``expires_height`` marks it
  so, and an approval sent before then would only be refused.
* ``GET /v1/officers``: every officer key ever registered, active or revoked.

Every list is bounded: at most ``MAX_PAGE`` items per answer, ``?limit=`` fewer. A full
page carries ``Link: <...>; rel="next"``; the next page starts after the last item
(``?since=`` the next admission position for zones, ``?after=`` the last id or key for
proposals and officers, which are listed in id and key order).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Path, Query, Request, Response

from api.routes_proofs import parse_hash_text
from ledger.chain import Chain
from ledger.errors import GovProposalUnknownError, StoreCorruptError
from ledger.governance import PROPOSAL_EXPIRED, PROPOSAL_OPEN, OfficerRecord, ProposalRecord, ZoneRecord
from ledger.membership import OFFICER_PREFIX, PROPOSAL_PREFIX

DEFAULT_PAGE = 1000
"""Items per answer when ``?limit=`` is not given: the whole list of zones and proposals
of any alliance we expect, and officers a thousand at a time."""
MAX_PAGE = 1000
"""Most items one answer carries (an officer is about 170 bytes of JSON; a proposal with
a join claim about 800)."""

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"Most items to return (1..{MAX_PAGE}).")]


class GovernanceSource(Protocol):
    """What the routes need of a node: its committed chain."""

    chain: Chain


# --- views ---------------------------------------------------------------------------


def render_wire(value: Any) -> Any:
    """A wire value (maps, lists, bytes, text, integers) as JSON: bytes become hex."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {name: render_wire(item) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [render_wire(item) for item in value]
    return value


def compute_zone_view(zone: ZoneRecord, validators: tuple[bytes, ...]) -> dict[str, Any]:
    """One zone; ``validators`` is the set deciding the next height."""
    return {
        "zone_id": zone.zone_id,
        "name": zone.name,
        "country": zone.country,
        "admin_key": zone.admin_key.hex(),
        "validator_key": zone.validator_key.hex(),
        "status": zone.status,
        "since_height": zone.since_height,
        "validator_index": validators.index(zone.validator_key) if zone.validator_key in validators else None,
    }


def compute_proposal_status(proposal: ProposalRecord, head_height: int) -> str:
    """The status a client can act on: ``expired`` once the next block could no longer
    count an approval, whatever the state tree says until that block marks it."""
    if proposal.status == PROPOSAL_OPEN and head_height + 1 > proposal.expires_height:
        return PROPOSAL_EXPIRED
    return proposal.status


def compute_proposal_view(chain: Chain, proposal: ProposalRecord) -> dict[str, Any]:
    """One proposal, with the zone of each approving admin key (null for a key that is
    no zone's any more: keys are never reused, so this stays true)."""
    approved_by = []
    for key in proposal.approvals:
        owner = chain.get_zone_key_owner(key)
        approved_by.append(None if owner is None else owner[0])
    return {
        "proposal_id": proposal.proposal_id.hex(),
        "action": render_wire(proposal.action.to_wire()),
        "approvals": [key.hex() for key in proposal.approvals],
        "approved_by": approved_by,
        "approvals_needed": proposal.approvals_needed,
        "members": proposal.members,
        "status": compute_proposal_status(proposal, chain.height),
        "proposed_height": proposal.proposed_height,
        "expires_height": proposal.expires_height,
        "closed_height": proposal.closed_height,
    }


def compute_officer_view(officer: OfficerRecord) -> dict[str, Any]:
    return {
        "key": officer.officer_key.hex(),
        "zone_id": officer.zone_id,
        "registered_height": officer.registered_height,
        "revoked_height": officer.revoked_height,
        "active": officer.is_active,
    }


# --- pages ---------------------------------------------------------------------------


def get_zone_page(chain: Chain, since: int, limit: int) -> list[ZoneRecord]:
    """Zones ``since`` .. ``since + limit - 1`` in order of admission."""
    out = []
    for zone_id in chain.get_member_ids()[since:since + limit]:
        zone = chain.get_zone(zone_id)
        if zone is None:
            raise StoreCorruptError(f"member {zone_id} has no zone record")
        out.append(zone)
    return out


def iterate_ids_after(chain: Chain, prefix: bytes, after: bytes | None) -> Iterator[bytes]:
    """The ids stored under ``prefix``, in order, each greater than ``after``. Ids before
    the cursor are skipped undecoded: a later page costs a key scan, not a decode."""
    for key, _ in chain.store.iterate(prefix):
        item = key[len(prefix):]
        if after is None or item > after:
            yield item


def get_proposal_page(chain: Chain, after: bytes | None, limit: int) -> list[ProposalRecord]:
    out = []
    for proposal_id in islice(iterate_ids_after(chain, PROPOSAL_PREFIX, after), limit):
        proposal = chain.get_proposal(proposal_id)
        if proposal is None:
            raise StoreCorruptError(f"proposal {proposal_id.hex()} vanished while it was listed")
        out.append(proposal)
    return out


def get_officer_page(chain: Chain, after: bytes | None, limit: int, zone_id: str | None) -> list[OfficerRecord]:
    """Up to ``limit`` officers after key ``after``, of ``zone_id`` only when given (one
    pass over the keys: a filtered page reads every record until it is full)."""
    out: list[OfficerRecord] = []
    for key in iterate_ids_after(chain, OFFICER_PREFIX, after):
        officer = chain.get_officer(key)
        if officer is None:
            raise StoreCorruptError(f"officer {key.hex()} vanished while it was listed")
        if zone_id is None or officer.zone_id == zone_id:
            out.append(officer)
            if len(out) == limit:
                break
    return out


def set_next_link(request: Request, response: Response, full: bool, **cursor: Any) -> None:
    """``Link: <...>; rel="next"`` on a full page, naming where the next one starts."""
    if full:
        following = request.url.include_query_params(**cursor)
        response.headers["Link"] = f'<{following}>; rel="next"'


def parse_cursor(value: str | None, what: str) -> bytes | None:
    return None if value is None else parse_hash_text(value, what)


# --- routes --------------------------------------------------------------------------


def make_governance_router(node: GovernanceSource) -> APIRouter:
    router = APIRouter(tags=["governance"])

    @router.get("/v1/zones")
    async def zones(
        request: Request, response: Response,
        since: Annotated[int, Query(ge=0, description="Admission position to start from (0: the first zone).")] = 0,
        limit: Limit = DEFAULT_PAGE,
    ) -> list[dict[str, Any]]:
        """Every zone ever admitted, in order of admission (genesis order, then
        ``zone.add`` order): ``zone_id``, ``name``, ``country``, ``admin_key`` and
        ``validator_key`` (hex), ``status`` (``active`` or ``removed``), ``since_height``
        (the block that gave it that status; 0 for genesis) and ``validator_index``, its
        position in the validator set deciding the next height, or null. At most
        ``limit`` zones from position ``since``; a full page links to the next."""
        chain = node.chain
        page = get_zone_page(chain, since, limit)
        set_next_link(request, response, len(page) == limit, since=since + limit, limit=limit)
        validators = chain.validators
        return [compute_zone_view(zone, validators) for zone in page]

    @router.get("/v1/governance/proposals")
    async def proposals(
        request: Request, response: Response,
        after: Annotated[str | None, Query(description="List proposals whose id (hex) sorts after this one.")] = None,
        limit: Limit = DEFAULT_PAGE,
    ) -> list[dict[str, Any]]:
        """Proposals in id order, each as ``GET /v1/governance/proposals/{proposal_id}``
        answers it. At most ``limit`` after id ``after``; a full page links to the next."""
        chain = node.chain
        page = get_proposal_page(chain, parse_cursor(after, "after"), limit)
        if page:
            set_next_link(request, response, len(page) == limit, after=page[-1].proposal_id.hex(), limit=limit)
        return [compute_proposal_view(chain, proposal) for proposal in page]

    @router.get("/v1/governance/proposals/{proposal_id}")
    async def proposal(
        proposal_id: Annotated[str, Path(description="The propose transaction's tx_hash, 64 hex characters.")],
    ) -> dict[str, Any]:
        """One proposal: ``proposal_id``; ``action`` (its wire fields, bytes as hex);
        ``approvals`` (admin keys, the proposer's first) and ``approved_by`` (their
        zones); ``approvals_needed`` (floor(2m/3)+1 of the ``members`` active when it was
        proposed); ``status`` (``open``, ``executed`` or ``expired``, the last as soon
        as the next block could no longer count an approval); ``proposed_height``,
        ``expires_height`` (the last height an approval counts) and ``closed_height``
        (where it was executed or marked expired, else null). 400 ``request.malformed``
        for an id that is not 64 hex characters, 404 ``gov.proposal_unknown`` for an
        unknown one."""
        chain = node.chain
        found = chain.get_proposal(parse_hash_text(proposal_id, "proposal_id"))
        if found is None:
            raise GovProposalUnknownError(f"proposal_id: no proposal {proposal_id.lower()} on this chain")
        return compute_proposal_view(chain, found)

    @router.get("/v1/officers")
    async def officers(
        request: Request, response: Response,
        after: Annotated[str | None, Query(description="List officer keys (hex) that sort after this one.")] = None,
        zone: Annotated[str | None, Query(description="Only this zone's officers.")] = None,
        limit: Limit = DEFAULT_PAGE,
    ) -> list[dict[str, Any]]:
        """Every officer key ever registered, in key order, active or revoked: ``key``
        (hex), ``zone_id``, ``registered_height`` (0 for genesis officers),
        ``revoked_height`` (null while active) and ``active``. At most ``limit`` after
        key ``after``, of zone ``zone`` only when given; a full page links to the next."""
        page = get_officer_page(node.chain, parse_cursor(after, "after"), limit, zone)
        if page:
            set_next_link(request, response, len(page) == limit, after=page[-1].officer_key.hex(), limit=limit)
        return [compute_officer_view(officer) for officer in page]

    return router
