"""zoneledger officer / gov / zone rotate-keys against a node double that runs the real
rules: the governance routes over a devkit chain, and a ``POST /v1/transactions`` that
commits each transaction in a block of its own (a refusal is the rule's problem+json).

Served by uvicorn on 127.0.0.1 in a background thread, as the officer's commands are
tested (tests/unit/scripts/test_client_cmd.py), so the commands run exactly as typed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from serving import serve_app

from api.errors import install_error_handlers
from api.routes_governance import make_governance_router
from ledger.chain import Chain
from ledger.errors import GovProposalExpiredError
from ledger.keys import SigningKey
from ledger.transactions import Envelope
from node.finality import STATUS_REJECTED, TxResult
from scripts.cli import main
from scripts.devkit import Alliance, make_alliance
from scripts.gov_cmd import DEFAULT_PROPOSAL_LIFETIME

TEDA, STONE, DJIBOUTI, LANKA = "EG-TEDA", "BY-GREATSTONE", "DJ-DIFTZ", "LK-HAMBANTOTA"
UNREACHABLE = "http://127.0.0.1:9"


class GovNode:
    """A chain of four zones; each transaction posted is committed in the next block."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.alliance: Alliance = make_alliance(4)
        self.chain: Chain = self.alliance.chain()
        self.stay_pending = False
        self.reject_after_admission = False

    def status(self) -> dict[str, Any]:
        return {
            "chain_id": self.alliance.genesis.chain_id, "height": self.chain.height, "round": 0,
            "node": {"validator_index": 0, "zone_id": TEDA},
        }


def make_app(node: GovNode) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(make_governance_router(node))

    @app.get("/v1/status")
    def status() -> dict[str, Any]:
        return node.status()

    @app.post("/v1/transactions")
    async def post_transaction(request: Request, wait: int = 0) -> JSONResponse:
        envelope = Envelope.decode(bytes.fromhex(json.loads(await request.body())["envelope"]))
        if node.reject_after_admission:
            error = GovProposalExpiredError("proposal ab… expired after height 3")
            result = TxResult(envelope.tx_hash, STATUS_REJECTED, error_code=error.code, error=str(error))
            return JSONResponse(result.to_json(), status_code=422)
        if node.stay_pending:
            return JSONResponse({"tx_hash": envelope.tx_hash.hex(), "status": "pending"}, status_code=202)
        block = node.alliance.commit_next(node.chain, [(envelope, None)])
        if not wait:
            return JSONResponse({"tx_hash": envelope.tx_hash.hex(), "status": "pending"}, status_code=202)
        return JSONResponse({
            "tx_hash": envelope.tx_hash.hex(), "status": "committed", "height": block.height, "log_index": 0,
            "block_hash": block.block_hash.hex(),
        })

    return app


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, GovNode]]:
    node = GovNode()
    with serve_app(make_app(node)) as (host, port):
        yield f"http://{host}:{port}", node


@pytest.fixture
def node(served: tuple[str, GovNode]) -> GovNode:
    served[1].reset()
    return served[1]


@pytest.fixture
def url(served: tuple[str, GovNode], node: GovNode) -> str:
    return served[0]


@pytest.fixture
def admin(tmp_path: Path, node: GovNode) -> dict[str, str]:
    """Each zone's admin key file."""
    paths = {}
    for zone_id, key in node.alliance.admin_keys.items():
        path = tmp_path / f"admin-{zone_id}.pem"
        key.save(path)
        paths[zone_id] = str(path)
    return paths


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def ok(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code, out, err = run(argv, capsys)
    assert code == 0, err
    return out


def refused(argv: list[str], capsys: pytest.CaptureFixture[str], code: int, start: str) -> str:
    """The command fails with ``code`` and one line on stderr starting with ``start``
    (beside the progress line ``--wait`` shows)."""
    got, out, err = run(argv, capsys)
    assert got == code, (out, err)
    lines = [line for line in err.splitlines() if not line.startswith("waiting for finality")]
    assert len(lines) == 1 and lines[0].startswith(start), err
    return lines[0]


def proposal_id_of(out: str) -> str:
    found = re.search(r"^proposal_id\s+([0-9a-f]{64})$", out, re.MULTILINE)
    assert found is not None, out
    return found.group(1)


def propose_and_approve(
    url: str, admin: dict[str, str], capsys: pytest.CaptureFixture[str], change: list[str],
    approvers: tuple[str, ...] = (STONE, DJIBOUTI),
) -> str:
    out = ok(["gov", "propose", *change, "--key", admin[TEDA], "--node", url, "--wait"], capsys)
    proposal_id = proposal_id_of(out)
    for zone_id in approvers:
        out = ok(["gov", "approve", proposal_id, "--key", admin[zone_id], "--node", url, "--wait"], capsys)
    assert "proposal     executed at height" in out
    return proposal_id


# --- officers --------------------------------------------------------------------------


def test_officer_add_list_and_revoke(
    url: str, node: GovNode, admin: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    officer = SigningKey.generate().public.hex()
    out = ok(["officer", "add", officer, "--key", admin[TEDA], "--node", url, "--wait"], capsys)
    assert f"officer      {officer}" in out and f"zone         {TEDA}" in out  # the admin's own zone
    assert "status       committed at height 1" in out
    listing = ok(["officer", "list", "--node", url], capsys)
    row = next(line for line in listing.splitlines() if line.startswith(officer))
    assert TEDA in row and row.endswith("active")
    ok(["officer", "revoke", officer, "--zone", TEDA, "--key", admin[TEDA], "--node", url, "--wait"], capsys)
    officers = json.loads(ok(["officer", "list", "--zone", TEDA, "--json", "--node", url], capsys))
    assert {o["zone_id"] for o in officers} == {TEDA} and len(officers) == 2
    mine = next(o for o in officers if o["key"] == officer)
    assert (mine["active"], mine["registered_height"], mine["revoked_height"]) == (False, 1, 2)
    refused(["officer", "add", officer, "--key", admin[TEDA], "--node", url], capsys, 1, "zoneledger: tx.officer_revoked: ")


def test_officer_key_from_a_key_file(
    tmp_path: Path, url: str, node: GovNode, admin: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    officer = SigningKey.generate()
    officer.save(tmp_path / "officer.pem")
    ok(["officer", "add", str(tmp_path / "officer.pem"), "--key", admin[STONE], "--node", url, "--wait"], capsys)
    record = node.chain.get_officer(officer.public)
    assert record is not None and record.zone_id == STONE and record.is_active


def test_officer_failures_are_one_line(
    tmp_path: Path, url: str, node: GovNode, admin: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    officer = SigningKey.generate().public.hex()
    base = ["--key", admin[TEDA], "--node", url]
    refused(["officer", "add", officer, "--zone", STONE, *base], capsys, 1, "zoneledger: tx.not_zone_admin: ")
    refused(["officer", "add", officer, "--zone", "XX-NOWHERE", *base], capsys, 2, "zoneledger: --zone: expected a zone")
    teda_admin = node.alliance.admin_keys[TEDA].public.hex()
    refused(["officer", "add", teda_admin, *base], capsys, 2, "zoneledger: KEY: expected the officer's own key")
    refused(["officer", "add", str(tmp_path / "nothing.pem"), *base], capsys, 1, "zoneledger: key.file_invalid: ")
    refused(["officer", "add", officer, "--key", admin[TEDA], "--node", UNREACHABLE], capsys, 1,
            "zoneledger: node.unavailable: ")
    stranger = tmp_path / "stranger.pem"
    SigningKey.generate().save(stranger)
    refused(["officer", "add", officer, "--key", str(stranger), "--node", url], capsys, 2,
            "zoneledger: --key: ")  # the admin of no zone, and no --zone
    assert node.chain.height == 0


# --- proposals ---------------------------------------------------------------------------


def test_an_auditor_joins_by_proposal_and_approvals(
    url: str, node: GovNode, admin: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    auditor = SigningKey.generate().public
    out = ok(["gov", "propose", "auditor-add", auditor.hex(), "--key", admin[TEDA], "--node", url, "--wait"], capsys)
    proposal_id = proposal_id_of(out)
    assert "action       auditor.add" in out and f"after height {DEFAULT_PROPOSAL_LIFETIME}" in out
    assert "proposal     open: 1 of 3 approvals" in out
    out = ok(["gov", "approve", proposal_id, "--key", admin[STONE], "--node", url, "--wait"], capsys)
    assert "proposal     open: 2 of 3 approvals" in out
    out = ok(["gov", "approve", proposal_id, "--key", admin[DJIBOUTI], "--node", url, "--wait"], capsys)
    assert "proposal     executed at height 3" in out
    assert auditor in node.chain.get_auditors()

    shown = json.loads(ok(["gov", "show", proposal_id.upper(), "--node", url], capsys))
    assert (shown["status"], shown["approved_by"], shown["closed_height"]) == ("executed", [TEDA, STONE, DJIBOUTI], 3)
    assert shown["action"] == {"type": "auditor.add", "auditor_key": auditor.hex()}
    assert shown["expires_height"] == DEFAULT_PROPOSAL_LIFETIME
    listing = ok(["gov", "list", "--node", url], capsys)
    row = next(line for line in listing.splitlines() if line.startswith(proposal_id))
    assert row.split()[1:4] == ["auditor.add", "executed", "3/3"]
    assert [p["proposal_id"] for p in json.loads(ok(["gov", "list", "--json", "--node", url], capsys))] == [proposal_id]
    refused(["gov", "approve", proposal_id, "--key", admin[LANKA], "--node", url], capsys, 1,
            "zoneledger: gov.proposal_closed: ")
    refused(["gov", "propose", "auditor-remove", "ab" * 32, "--key", admin[TEDA], "--node", url], capsys, 1,
            "zoneledger: gov.auditor_unknown: ")


def test_consensus_settings_and_a_proposal_that_lapses(
    url: str, node: GovNode, admin: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--key", admin[TEDA], "--node", url]
    refused(["gov", "propose", "consensus-set", *base], capsys, 2, "zoneledger: consensus-set: expected at least one")
    refused(["gov", "propose", "consensus-set", "--timeout-propose-ms", "5", *base], capsys, 1,
            "zoneledger: gov.params_invalid: action.timeout_propose_ms: expected 100 to 600000, got 5")
    assert node.chain.height == 0
    with pytest.raises(SystemExit) as exc:
        main(["gov", "propose", "consensus-set", "--timeout-propose-ms", "2500", "--expires-in", "0", *base])
    assert exc.value.code == 2
    capsys.readouterr()

    out = ok(["gov", "propose", "consensus-set", "--timeout-propose-ms", "2500", "--max-block-txs", "4000",
              "--expires-in", "1", "--wait", *base], capsys)
    proposal_id = proposal_id_of(out)
    shown = json.loads(ok(["gov", "show", proposal_id, "--node", url], capsys))
    assert shown["action"] == {"type": "consensus.set", "timeout_propose_ms": 2500, "max_block_txs": 4000}
    assert (shown["expires_height"], shown["status"]) == (1, "expired")  # the next block is past it
    refused(["gov", "approve", proposal_id, "--key", admin[STONE], "--node", url], capsys, 1,
            "zoneledger: gov.proposal_expired: ")

    propose_and_approve(url, admin, capsys, ["consensus-set", "--timeout-delta-ms", "800"])
    assert node.chain.consensus.timeout_delta_ms == 800


def test_a_zone_joins_from_its_join_request(
    tmp_path: Path, url: str, node: GovNode, admin: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    chain_id = node.alliance.genesis.chain_id
    request = tmp_path / "join.json"
    ok(["join-request", "--chain-id", chain_id, "--zone-id", "HU-CSEPEL", "--name", "Csepel Free Port",
        "--country", "HU", "--admin-key", str(tmp_path / "hu-admin.pem"),
        "--validator-key", str(tmp_path / "hu-validator.pem"), "--out", str(request)], capsys)
    propose_and_approve(url, admin, capsys, ["zone-add", "--request", str(request)])
    zone = node.chain.get_zone("HU-CSEPEL")
    assert zone is not None and zone.is_active
    assert zone.admin_key == SigningKey.load(tmp_path / "hu-admin.pem").public
    # the new admin now registers an officer of its own zone, found by its key
    officer = SigningKey.generate().public.hex()
    out = ok(["officer", "add", officer, "--key", str(tmp_path / "hu-admin.pem"), "--node", url, "--wait"], capsys)
    assert "zone         HU-CSEPEL" in out


def test_a_join_request_that_does_not_hold_is_refused_before_sending(
    tmp_path: Path, url: str, node: GovNode, admin: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    request = tmp_path / "join.json"
    ok(["join-request", "--chain-id", "another-chain", "--zone-id", "HU-CSEPEL", "--name", "Csepel",
        "--country", "HU", "--admin-key", str(tmp_path / "a.pem"), "--validator-key", str(tmp_path / "v.pem"),
        "--out", str(request)], capsys)
    base = ["--key", admin[TEDA], "--node", url]
    err = refused(["gov", "propose", "zone-add", "--request", str(request), *base], capsys, 1,
                  "zoneledger: gov.possession_invalid: ")
    assert "another-chain" in err
    value = json.loads(request.read_text())
    value["chain_id"] = node.alliance.genesis.chain_id  # signatures still over the other chain
    request.write_text(json.dumps(value))
    refused(["gov", "propose", "zone-add", "--request", str(request), *base], capsys, 1,
            "zoneledger: gov.possession_invalid: possession.admin_sig")
    refused(["gov", "propose", "zone-add", "--request", str(tmp_path / "none.json"), *base], capsys, 2,
            "zoneledger: --request: cannot read")
    assert node.chain.height == 0


def test_the_alliance_rotates_the_key_a_zone_lost(
    tmp_path: Path, url: str, node: GovNode, admin: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """DJ-DIFTZ lost its validator key: its request names the admin key it keeps by its public key."""
    before = node.chain.get_zone(DJIBOUTI)
    assert before is not None
    request = tmp_path / "rotate.json"
    argv = ["join-request", "--chain-id", node.alliance.genesis.chain_id, "--zone-id", DJIBOUTI, "--name", "Djibouti",
            "--country", "DJ", "--admin-key", before.admin_key.hex(), "--validator-key", str(tmp_path / "dj-v2.pem"),
            "--out", str(request)]
    ok(argv, capsys)
    propose_and_approve(url, admin, capsys, ["zone-rotate", "--request", str(request)], approvers=(STONE, LANKA))
    after = node.chain.get_zone(DJIBOUTI)
    assert after is not None and after.admin_key == before.admin_key
    assert after.validator_key == SigningKey.load(tmp_path / "dj-v2.pem").public
    assert len(node.chain.get_members()) == 4
    # a request naming the zone's keys as they are now changes nothing
    argv[argv.index("--validator-key") + 1] = after.validator_key.hex()
    ok([*argv, "--force"], capsys)
    line = refused(["gov", "propose", "zone-rotate", "--request", str(request), "--key", admin[TEDA], "--node", url],
                   capsys, 2, f"zoneledger: {request}: ")
    assert "expected a new admin or validator key for DJ-DIFTZ, got its current keys" in line


def test_a_zone_rotates_its_own_admin_key(
    tmp_path: Path, url: str, node: GovNode, admin: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    new_admin = tmp_path / "lk-admin-2.pem"
    base = ["--key", admin[LANKA], "--node", url]
    refused(["zone", "rotate-keys", *base], capsys, 2, "zoneledger: zone rotate-keys: expected --new-admin-key")
    refused(["zone", "rotate-keys", "--new-validator-key", "ab" * 32, *base], capsys, 2,
            "zoneledger: --new-validator-key: expected a private key file")
    out = ok(["zone", "rotate-keys", "--new-admin-key", str(new_admin), "--wait", *base], capsys)
    assert f"generated {new_admin}" in out and "zone         LK-HAMBANTOTA" in out
    zone = node.chain.get_zone(LANKA)
    assert zone is not None and zone.admin_key == SigningKey.load(new_admin).public
    officer = SigningKey.generate().public.hex()
    refused(["officer", "add", officer, *base], capsys, 2, "zoneledger: --key: ")  # the old key governs nothing now
    ok(["officer", "add", officer, "--key", str(new_admin), "--node", url, "--wait"], capsys)
    # the new validator key takes over two heights after the block that commits it
    new_validator = tmp_path / "lk-validator-2.pem"
    out = ok(["zone", "rotate-keys", "--new-validator-key", str(new_validator), "--zone", LANKA,
              "--key", str(new_admin), "--node", url, "--wait"], capsys)
    height = node.chain.height
    assert f"signs with {new_validator} from height {height + 2}" in out
    assert node.chain.validators_for(height + 2)[3] == SigningKey.load(new_validator).public


def test_node_refusals_and_unfinished_waits(
    url: str, node: GovNode, admin: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    unknown = "ab" * 32
    refused(["gov", "show", unknown, "--node", url], capsys, 1, "zoneledger: gov.proposal_unknown: ")
    refused(["gov", "show", "not-an-id", "--node", url], capsys, 2, "zoneledger: ID: expected a proposal id")
    refused(["gov", "approve", unknown, "--key", admin[TEDA], "--node", url], capsys, 1,
            "zoneledger: gov.proposal_unknown: ")
    assert ok(["gov", "list", "--node", url], capsys) == "no proposals\n"

    node.reject_after_admission = True  # a transaction refused in the block, reported with ?wait
    refused(["gov", "approve", unknown, "--key", admin[TEDA], "--node", url, "--wait"], capsys, 1,
            "zoneledger: gov.proposal_expired: proposal ab… expired after height 3")
    node.reject_after_admission = False
    node.stay_pending = True
    code, out, err = run(["gov", "propose", "zone-remove", "--zone-id", LANKA, "--key", admin[TEDA], "--node", url,
                          "--wait", "--wait-seconds", "1"], capsys)
    assert code == 3 and "status       pending" in out and "not final after 1 s" in err
    node.stay_pending = False
    refused(["gov", "propose", "zone-remove", "--zone-id", "lk", "--key", admin[TEDA], "--node", url], capsys, 1,
            "zoneledger: tx.malformed: action.zone_id: ")
