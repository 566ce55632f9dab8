"""api/routes_governance.py in process: zones, proposals and officers over a devkit chain
that has seen every kind of change, and the routes in the validator's and the
observer's apps."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from one_node import make_one_node

from api.errors import install_error_handlers
from api.routes_governance import MAX_PAGE, make_governance_router
from ledger.chain import Chain
from ledger.governance import AuditorAdd, ConsensusSet, ZoneRemove
from ledger.keys import SigningKey
from scripts.devkit import Alliance, make_alliance

TEDA, STONE, DJIBOUTI, LANKA = "EG-TEDA", "BY-GREATSTONE", "DJ-DIFTZ", "LK-HAMBANTOTA"
NEW_ZONE = "HU-CSEPEL"


@dataclass
class FakeNode:
    """The one attribute the governance routes read."""

    chain: Chain


@dataclass
class World:
    alliance: Alliance
    chain: Chain
    app: FastAPI
    executed: bytes
    """auditor.add, approved by three of four."""
    still_open: bytes
    """consensus.set with one approval and a distant expiry."""
    expired: bytes
    """Marked expired in the state tree by a later block."""
    lapsing: bytes
    """Open in the state tree, but the head is at its expires_height: no approval can count."""
    removal: bytes
    """zone.remove of LK-HAMBANTOTA, executed."""
    officers: list[SigningKey]


def get(world: World, url: str) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=world.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(url)

    return asyncio.run(go())


def approve_all(alliance: Alliance, chain: Chain, proposal_id: bytes, zones: list[str]) -> None:
    alliance.commit_next(chain, [(alliance.gov_approve(zone, proposal_id), None) for zone in zones])


@pytest.fixture(scope="module")
def world() -> World:
    alliance = make_alliance(4)
    chain = alliance.chain()
    officers = [alliance.make_key(f"route officer {i}") for i in range(5)]
    alliance.commit_next(chain, [(alliance.register_officer(STONE, key.public), None) for key in officers])
    alliance.commit_next(chain, [(alliance.revoke_officer(STONE, officers[0].public), None)])

    auditor = alliance.make_key("route auditor")
    executed = alliance.gov_propose(TEDA, AuditorAdd(auditor.public))
    alliance.commit_next(chain, [(executed, None)])
    approve_all(alliance, chain, executed.tx_hash, [STONE, DJIBOUTI])

    still_open = alliance.gov_propose(STONE, ConsensusSet((("max_block_txs", 4000),)), expires_height=10_000)
    expired = alliance.gov_propose(DJIBOUTI, ConsensusSet((("timeout_delta_ms", 700),)), expires_height=chain.height + 1)
    alliance.commit_next(chain, [(still_open, None), (expired, None)])

    # a zone joins (five members), then one leaves (four again)
    join = alliance.zone_add(NEW_ZONE, "Csepel Free Port", "HU")
    propose = alliance.gov_propose(TEDA, join)
    alliance.commit_next(chain, [(propose, None)])
    approve_all(alliance, chain, propose.tx_hash, [STONE, DJIBOUTI])
    removal = alliance.gov_propose(TEDA, ZoneRemove(LANKA))
    alliance.commit_next(chain, [(removal, None)])
    approve_all(alliance, chain, removal.tx_hash, [STONE, DJIBOUTI, NEW_ZONE])
    alliance.commit_next(chain, [])
    alliance.commit_next(chain, [])  # the removal governs from here on

    lapsing = alliance.gov_propose(TEDA, ConsensusSet((("timeout_propose_ms", 1500),)), expires_height=chain.height + 1)
    alliance.commit_next(chain, [(lapsing, None)])

    app = FastAPI()
    install_error_handlers(app)
    app.include_router(make_governance_router(FakeNode(chain)))
    return World(alliance, chain, app, executed.tx_hash, still_open.tx_hash, expired.tx_hash, lapsing.tx_hash,
                 removal.tx_hash, officers)


# --- zones ---------------------------------------------------------------------------


def test_zones_in_admission_order_with_their_place_in_the_set(world: World) -> None:
    response = get(world, "/v1/zones")
    assert response.status_code == 200 and "link" not in response.headers
    zones = response.json()
    assert [z["zone_id"] for z in zones] == [TEDA, STONE, DJIBOUTI, LANKA, NEW_ZONE]
    by_id = {z["zone_id"]: z for z in zones}
    assert set(by_id[TEDA]) == {
        "zone_id", "name", "country", "admin_key", "validator_key", "status", "since_height", "validator_index",
    }
    genesis_zone = world.alliance.genesis.zones[0]
    assert by_id[TEDA]["admin_key"] == genesis_zone.admin_key.hex()
    assert by_id[TEDA]["validator_key"] == genesis_zone.validator_key.hex()
    assert (by_id[TEDA]["status"], by_id[TEDA]["since_height"], by_id[TEDA]["validator_index"]) == ("active", 0, 0)
    assert (by_id[LANKA]["status"], by_id[LANKA]["validator_index"]) == ("removed", None)
    assert by_id[LANKA]["since_height"] > 0
    # the removal closed the gap: the new zone is fourth of four
    assert (by_id[NEW_ZONE]["status"], by_id[NEW_ZONE]["validator_index"]) == ("active", 3)
    assert [by_id[z]["validator_key"] for z in (TEDA, STONE, DJIBOUTI, NEW_ZONE)] == [
        key.hex() for key in world.chain.validators
    ]


def test_zones_page_by_admission_position(world: World) -> None:
    first = get(world, "/v1/zones?limit=2")
    assert [z["zone_id"] for z in first.json()] == [TEDA, STONE]
    assert 'rel="next"' in first.headers["link"] and "since=2" in first.headers["link"]
    rest = get(world, "/v1/zones?since=2&limit=2").json() + get(world, "/v1/zones?since=4&limit=2").json()
    assert [z["zone_id"] for z in rest] == [DJIBOUTI, LANKA, NEW_ZONE]
    assert get(world, "/v1/zones?since=99").json() == []


# --- proposals -----------------------------------------------------------------------


def test_an_executed_proposal_in_full(world: World) -> None:
    response = get(world, f"/v1/governance/proposals/{world.executed.hex()}")
    assert response.status_code == 200
    proposal = response.json()
    admins = world.alliance.admin_keys
    auditor = world.alliance.make_key("route auditor")
    assert proposal == {
        "proposal_id": world.executed.hex(),
        "action": {"type": "auditor.add", "auditor_key": auditor.public.hex()},
        "approvals": [admins[z].public.hex() for z in (TEDA, STONE, DJIBOUTI)],
        "approved_by": [TEDA, STONE, DJIBOUTI],
        "approvals_needed": 3,
        "members": 4,
        "status": "executed",
        "proposed_height": proposal["proposed_height"],
        "expires_height": 1000,
        "closed_height": proposal["proposed_height"] + 1,
    }


def test_a_zone_add_shows_its_keys_and_possession_in_hex(world: World) -> None:
    proposals = get(world, "/v1/governance/proposals").json()
    join = next(p for p in proposals if p["action"]["type"] == "zone.add")
    action = join["action"]
    assert action["zone_id"] == NEW_ZONE and len(action["admin_key"]) == 64
    assert set(action["possession"]) == {"admin_sig", "validator_sig"}
    assert all(len(sig) == 128 for sig in action["possession"].values())
    assert join["status"] == "executed"


def test_proposal_status_open_expired_and_lapsed(world: World) -> None:
    def status(proposal_id: bytes) -> dict[str, Any]:
        answer: dict[str, Any] = get(world, f"/v1/governance/proposals/{proposal_id.hex()}").json()
        return answer

    still_open = status(world.still_open)
    assert (still_open["status"], still_open["closed_height"], len(still_open["approvals"])) == ("open", None, 1)
    expired = status(world.expired)
    assert expired["status"] == "expired" and expired["closed_height"] == expired["expires_height"] + 1
    # the state tree still says open, but the next block (head + 1) is past expires_height
    lapsing_record = world.chain.get_proposal(world.lapsing)
    assert lapsing_record is not None and lapsing_record.status == "open"
    assert world.chain.height == lapsing_record.expires_height
    lapsing = status(world.lapsing)
    assert (lapsing["status"], lapsing["closed_height"]) == ("expired", None)
    # a proposal made when five zones were active needs four approvals
    removal = status(world.removal)
    assert (removal["members"], removal["approvals_needed"], removal["status"]) == (5, 4, "executed")


def test_proposals_list_every_proposal_in_id_order_and_pages(world: World) -> None:
    everything = get(world, "/v1/governance/proposals").json()
    ids = [p["proposal_id"] for p in everything]
    assert len(ids) == 6 and ids == sorted(ids)
    first = get(world, "/v1/governance/proposals?limit=4")
    assert [p["proposal_id"] for p in first.json()] == ids[:4]
    assert f"after={ids[3]}" in first.headers["link"]
    rest = get(world, f"/v1/governance/proposals?after={ids[3]}&limit=4")
    assert [p["proposal_id"] for p in rest.json()] == ids[4:] and "link" not in rest.headers


def test_unknown_and_malformed_proposal_ids(world: World) -> None:
    unknown = get(world, f"/v1/governance/proposals/{'ab' * 32}")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")
    assert unknown.json()["type"] == "gov.proposal_unknown"
    for bad in ("nothex", "ab" * 31, "zz" * 32, "ab" * 33):
        response = get(world, f"/v1/governance/proposals/{bad}")
        assert (response.status_code, response.json()["type"]) == (400, "request.malformed"), bad
    cursor = get(world, "/v1/governance/proposals?after=xyz")
    assert (cursor.status_code, cursor.json()["type"]) == (400, "request.malformed")


# --- officers ------------------------------------------------------------------------


def test_officers_active_and_revoked(world: World) -> None:
    officers = get(world, "/v1/officers").json()
    keys = [o["key"] for o in officers]
    assert keys == sorted(keys)
    genesis_officers = {key.hex() for zone in world.alliance.genesis.zones for key in zone.officers}
    registered = {key.public.hex() for key in world.officers}
    assert set(keys) == genesis_officers | registered
    by_key = {o["key"]: o for o in officers}
    revoked = by_key[world.officers[0].public.hex()]
    assert revoked["zone_id"] == STONE and revoked["active"] is False
    assert revoked["revoked_height"] == revoked["registered_height"] + 1
    active = by_key[world.officers[1].public.hex()]
    assert set(active) == {"key", "zone_id", "registered_height", "revoked_height", "active"}
    assert (active["active"], active["revoked_height"]) == (True, None)
    genesis_one = by_key[world.alliance.officer_keys[TEDA].public.hex()]
    assert (genesis_one["zone_id"], genesis_one["registered_height"]) == (TEDA, 0)


def test_officers_of_one_zone_page_by_key(world: World) -> None:
    stone = get(world, f"/v1/officers?zone={STONE}").json()
    assert {o["zone_id"] for o in stone} == {STONE} and len(stone) == 6  # genesis officer + five
    pages: list[dict[str, Any]] = []
    url = f"/v1/officers?zone={STONE}&limit=4"
    while True:
        response = get(world, url)
        pages.extend(response.json())
        if "link" not in response.headers:
            break
        assert f"zone={STONE}" in response.headers["link"]
        url = f"/v1/officers?zone={STONE}&limit=4&after={response.json()[-1]['key']}"
    assert pages == stone
    assert get(world, "/v1/officers?zone=XX-NOWHERE").json() == []


def test_page_limits_are_bounded(world: World) -> None:
    for path in ("/v1/zones", "/v1/governance/proposals", "/v1/officers"):
        for limit in (0, MAX_PAGE + 1):
            response = get(world, f"{path}?limit={limit}")
            assert (response.status_code, response.json()["type"]) == (400, "request.malformed"), (path, limit)
    assert get(world, f"/v1/officers?limit={MAX_PAGE}").status_code == 200


# --- in the node's apps -------------------------------------------------------------


def test_validator_app_serves_and_documents_the_routes(tmp_path: Path) -> None:
    one = make_one_node(tmp_path)
    zones = one.call("GET", "/v1/zones").json()
    assert [(z["zone_id"], z["validator_index"]) for z in zones] == [(one.zone_id, 0)]
    assert one.call("GET", "/v1/governance/proposals").json() == []
    assert len(one.call("GET", "/v1/officers").json()) == 1
    paths = one.app.openapi()["paths"]
    for path in ("/v1/zones", "/v1/governance/proposals", "/v1/governance/proposals/{proposal_id}", "/v1/officers"):
        operation = paths[path]["get"]
        assert "governance" in operation["tags"] and len(operation["description"]) > 100, path
