"""GET /v1/evidence in process: entries with hex messages, paging by seq, problem+json on bad params."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.errors import install_error_handlers
from api.routes_evidence import MAX_PAGE, make_evidence_router
from ledger.blocks import PREVOTE, SignedVote, Vote
from ledger.keys import SigningKey
from node.evidence import EvidenceLog, validate_evidence
from node.votes import Evidence

CHAIN = "evidence-api-test"
KEYS = [SigningKey.from_label(f"evidence api {i}") for i in range(4)]


@dataclass
class FakeNode:
    evidence_log: EvidenceLog


def equivocation(height: int) -> Evidence:
    def vote(value: bytes) -> SignedVote:
        return Vote(CHAIN, PREVOTE, height, 0, value, 3).sign(KEYS[3])

    return Evidence(vote(b"\x01" * 32), vote(b"\x02" * 32))


def get(app: FastAPI, path: str) -> httpx.Response:
    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://node") as client:
            return await client.get(path)

    return asyncio.run(call())


@pytest.fixture
def app(tmp_path: Path) -> Any:
    log = EvidenceLog(tmp_path / "evidence", clock=lambda: 99)
    for height in range(1, 6):
        log.append(equivocation(height))
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(make_evidence_router(FakeNode(log)))
    yield app
    log.close()


def test_entries_carry_checkable_hex_messages(app: FastAPI) -> None:
    response = get(app, "/v1/evidence")
    assert response.status_code == 200
    items = response.json()
    assert [i["seq"] for i in items] == [0, 1, 2, 3, 4]
    first = items[0]
    assert {k: first[k] for k in ("validator", "height", "round", "type", "seen_ms")} == {
        "validator": 3, "height": 1, "round": 0, "type": "prevote", "seen_ms": 99,
    }
    evidence = Evidence(SignedVote.decode(bytes.fromhex(first["first"])), SignedVote.decode(bytes.fromhex(first["second"])))
    validate_evidence(evidence, CHAIN, [k.public for k in KEYS])
    assert "link" not in response.headers


def test_pages_follow_the_link(app: FastAPI) -> None:
    seen: list[int] = []
    path = "/v1/evidence?limit=2"
    while True:
        response = get(app, path)
        seen += [i["seq"] for i in response.json()]
        link = response.headers.get("link")
        if link is None:
            break
        assert link.endswith('>; rel="next"')
        path = link[1:link.index(">")].removeprefix("http://node")
    assert seen == [0, 1, 2, 3, 4]
    assert get(app, "/v1/evidence?since=4").json()[0]["seq"] == 4
    assert get(app, "/v1/evidence?since=5").json() == []


@pytest.mark.parametrize("query", ["since=-1", "limit=0", f"limit={MAX_PAGE + 1}", "since=abc", "limit=1.5"])
def test_bad_params_are_problem_json(app: FastAPI, query: str) -> None:
    response = get(app, f"/v1/evidence?{query}")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "request.malformed"
