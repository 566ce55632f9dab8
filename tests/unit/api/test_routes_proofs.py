"""api/routes_proofs.py in process: proofs, verify, checkpoint and consistency over a devkit chain."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.errors import install_error_handlers
from api.routes_proofs import make_proof_router
from ledger.chain import Chain
from ledger.encoding import H, compute_doc_hash
from ledger.genesis import Genesis
from ledger.merkle import verify_consistency
from ledger.proofs import BUNDLE_FIELDS, verify_bundle, verify_checkpoint
from ledger.transactions import Attachment
from scripts.devkit import Alliance, load_example, make_alliance, with_number

COO = "certificate_of_origin"
TEDA = "EG-TEDA"
STONE = "BY-GREATSTONE"
PDF = b"%PDF-1.7 certificate API-1"


def coo(number: str, statement: str | None = None) -> dict[str, Any]:
    document = with_number(load_example("coo_preferential.json"), COO, number)
    if statement is not None:
        document["firstSignatoryAuthentication"]["statement"] = statement
    return document


@dataclass
class FakeNode:
    """The two attributes the proof routes may use."""

    chain: Chain
    genesis: Genesis


@dataclass
class World:
    alliance: Alliance
    node: FakeNode
    client: Client
    v1: dict[str, Any]
    v2: dict[str, Any]
    revoked: dict[str, Any]


class Client:
    """Synchronous calls into the app through httpx's in-process ASGI transport."""

    def __init__(self, app: FastAPI) -> None:
        self.transport = httpx.ASGITransport(app=app)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            async with httpx.AsyncClient(transport=self.transport, base_url="http://test") as client:
                return await client.request(method, url, **kwargs)

        return asyncio.run(go())


@pytest.fixture(scope="module")
def world() -> World:
    alliance = make_alliance(4)
    chain = alliance.chain()
    v1, v2, revoked = coo("API-1"), coo("API-1", "weights corrected"), coo("API-2")
    alliance.commit_next(chain, [
        alliance.issue(TEDA, COO, v1, "API-1", attachments=(Attachment("api-1.pdf", "application/pdf", H(PDF), len(PDF)),)),
        alliance.issue(STONE, COO, revoked, "API-2"),
    ])
    alliance.commit_next(chain, [
        alliance.amend(TEDA, f"{TEDA}/API-1", v2, compute_doc_hash(v1), "weights corrected"),
        (alliance.revoke(STONE, f"{STONE}/API-2", compute_doc_hash(revoked), "cancelled"), None),
    ])
    node = FakeNode(chain, alliance.genesis)
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(make_proof_router(node))
    return World(alliance, node, Client(app), v1, v2, revoked)


def test_proof_by_any_version_or_attachment_is_the_current_bundle(world: World) -> None:
    for wanted in (compute_doc_hash(world.v1), compute_doc_hash(world.v2), H(PDF)):
        response = world.client.request("GET", f"/v1/proofs/{wanted.hex()}")
        assert response.status_code == 200
        bundle = response.json()
        assert bundle.keys() == BUNDLE_FIELDS
        assert bundle["document_hash"] == compute_doc_hash(world.v2).hex()
        result = verify_bundle(bundle, world.alliance.genesis, copy_hash=compute_doc_hash(world.v2))
        assert result.verdict == "valid"


def test_proof_of_an_unknown_hash_is_a_404_problem(world: World) -> None:
    response = world.client.request("GET", f"/v1/proofs/{'ab' * 32}")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "request.not_found"
    bad = world.client.request("GET", "/v1/proofs/nothex")
    assert bad.status_code == 400 and bad.json()["type"] == "request.malformed"


def verify_json(world: World, body: Any) -> dict[str, Any]:
    response = world.client.request("POST", "/v1/verify", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    assert answer.keys() == {"verdict", "document_hash", "doc_id", "matched", "bundle", "checks"}
    return answer


def test_verify_document_for_every_verdict(world: World) -> None:
    valid = verify_json(world, {"document": world.v2})
    assert (valid["verdict"], valid["doc_id"], valid["matched"]) == ("valid", f"{TEDA}/API-1", "document")
    assert valid["document_hash"] == compute_doc_hash(world.v2).hex()
    assert [c["code"] for c in valid["checks"]][:2] == ["genesis", "validators"]
    assert verify_json(world, {"document": world.v1})["verdict"] == "amended"
    assert verify_json(world, {"document": world.revoked})["verdict"] == "revoked"
    changed = dict(world.v2, name="CERTIFICATE OF ORIGIN (forged)")
    tampered = verify_json(world, {"document": changed})
    assert (tampered["verdict"], tampered["matched"], tampered["doc_id"]) == ("tampered", "number", f"{TEDA}/API-1")
    assert tampered["document_hash"] == compute_doc_hash(changed).hex()
    assert verify_bundle(tampered["bundle"], world.alliance.genesis,
                         copy_hash=compute_doc_hash(changed)).verdict == "tampered"
    unknown = verify_json(world, {"document": coo("API-404")})
    assert (unknown["verdict"], unknown["bundle"], unknown["doc_id"], unknown["matched"]) == ("unknown", None, None, None)


def test_verify_by_hash(world: World) -> None:
    assert verify_json(world, {"hash": H(PDF).hex()})["matched"] == "attachment"
    assert verify_json(world, {"hash": compute_doc_hash(world.v1).hex()})["verdict"] == "amended"
    assert verify_json(world, {"hash": "00" * 32})["verdict"] == "unknown"


def test_verify_uploaded_files(world: World) -> None:
    pdf = world.client.request("POST", "/v1/verify", files={"file": ("api-1.pdf", PDF, "application/pdf")})
    assert pdf.status_code == 200
    assert (pdf.json()["verdict"], pdf.json()["matched"]) == ("amended", "attachment")
    # Any formatting of the JSON: the server hashes its JCS form.
    pretty = json.dumps(world.v2, indent=4).encode()
    uploaded = world.client.request("POST", "/v1/verify", files={"file": ("coo.json", pretty, "application/json")})
    assert (uploaded.json()["verdict"], uploaded.json()["document_hash"]) == ("valid", compute_doc_hash(world.v2).hex())
    other = world.client.request("POST", "/v1/verify", files={"file": ("x.bin", b"\x00\x01", "application/octet-stream")})
    assert other.json()["verdict"] == "unknown" and other.json()["document_hash"] == H(b"\x00\x01").hex()


@pytest.mark.parametrize("body", [
    b'{"document": {"a": 1.5}}',  # floats break the document rules
    b'{"document": [1]}',
    b'{"hash": "zz"}',
    b'{"both": 1}',
    b"not json",
])
def test_verify_refuses_malformed_requests(world: World, body: bytes) -> None:
    response = world.client.request("POST", "/v1/verify", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["type"] == "request.malformed"


def test_checkpoint_verifies_against_genesis(world: World) -> None:
    response = world.client.request("GET", "/v1/checkpoint")
    assert response.status_code == 200
    checkpoint = response.json()
    header = verify_checkpoint(checkpoint, world.alliance.genesis)
    assert header == world.node.chain.head_header


def test_consistency_proofs_verify_between_sizes(world: World) -> None:
    log = world.node.chain.log()
    size = log.size
    for old in range(1, size + 1):
        response = world.client.request("GET", "/v1/consistency", params={"from": old, "to": size})
        assert response.status_code == 200
        answer = response.json()
        assert (answer["from"], answer["to"]) == (old, size)
        verify_consistency(old, size, [bytes.fromhex(p) for p in answer["proof"]], log.root(old), log.root(size))


@pytest.mark.parametrize("params", [{"from": 3, "to": 2}, {"from": 1, "to": 99}, {"from": 0, "to": 1}, {"from": "x", "to": 1}])
def test_consistency_refuses_impossible_sizes(world: World, params: dict[str, Any]) -> None:
    response = world.client.request("GET", "/v1/consistency", params=params)
    assert response.status_code == 400
    assert response.json()["type"] == "request.malformed"


def test_empty_chain_has_no_checkpoint() -> None:
    alliance = make_alliance(4)
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(make_proof_router(FakeNode(alliance.chain(), alliance.genesis)))
    response = Client(app).request("GET", "/v1/checkpoint")
    assert response.status_code == 404 and response.json()["type"] == "request.not_found"
