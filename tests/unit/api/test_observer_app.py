"""An observer in process: it follows a real validator's app over signed member requests
(``GET /v1/blocks``), serves the read API from the same routes, and refuses writes."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from one_node import OneNode, make_one_node

from api.app import create_observer_app
from ledger.encoding import decode_cb, expect_list
from ledger.keys import SigningKey
from ledger.limits import SYNC_BATCH
from ledger.requests import sign_request
from node.config import ObserverConfig
from node.observer import ObserverNode
from scripts.devkit import load_example, with_number

VALIDATOR = "http://validator"
DOCS = 3


@pytest.fixture
def validator(tmp_path: Path) -> tuple[OneNode, list[dict[str, Any]]]:
    one = make_one_node(tmp_path)
    template = load_example("coo_preferential.json")
    documents = []
    for i in range(DOCS):
        document = with_number(template, "certificate_of_origin", f"OBS-{i}")
        envelope, content = one.alliance.issue(one.zone_id, "certificate_of_origin", document, f"OBS-{i}")
        one.alliance.commit_next(one.node.chain, [(envelope, content)])
        documents.append(document)
    return one, documents


def observer_config(tmp_path: Path, key: Path | None = None) -> ObserverConfig:
    devnet = tmp_path / "devnet"
    return ObserverConfig(
        data_dir=tmp_path / "observer", genesis=devnet / "genesis.json", member_key=key or devnet / "auditor.pem",
        follow=(VALIDATOR,), node_id="observer-1",
    )


def signed_get(one: OneNode, key: SigningKey, path: str, query: str) -> httpx.Response:
    headers = sign_request(key, "GET", path, query, b"", int(time.time() * 1000), node=one.zone_id)
    return one.call("GET", f"{path}?{query}", headers=headers)


def follow_until(observer: ObserverNode, app: Any, height: int, timeout_s: float = 20.0) -> None:
    async def go() -> None:
        await observer.start(transport=httpx.ASGITransport(app=app))
        try:
            deadline = time.monotonic() + timeout_s
            while observer.chain.height < height and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            await observer.stop()

    asyncio.run(go())


def test_blocks_batch_is_members_only_and_bounded(tmp_path: Path, validator: tuple[OneNode, Any]) -> None:
    one, _ = validator
    auditor = one.alliance.auditor_keys[0]
    unsigned = one.call("GET", "/v1/blocks?from=1&count=2")
    assert (unsigned.status_code, unsigned.json()["type"]) == (401, "auth.missing")
    stranger = signed_get(one, SigningKey.generate(), "/v1/blocks", "from=1&count=2")
    assert (stranger.status_code, stranger.json()["type"]) == (403, "auth.not_member")
    answer = signed_get(one, auditor, "/v1/blocks", "from=2&count=50")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/msgpack"
    items = expect_list(decode_cb(answer.content), "blocks")
    assert len(items) == DOCS - 1
    past_head = signed_get(one, auditor, "/v1/blocks", f"from={DOCS + 1}&count=1")
    assert expect_list(decode_cb(past_head.content), "blocks") == []
    too_many = signed_get(one, auditor, "/v1/blocks", f"from=1&count={SYNC_BATCH + 1}")
    assert (too_many.status_code, too_many.json()["type"]) == (400, "request.malformed")


def test_observer_follows_serves_reads_and_refuses_writes(tmp_path: Path, validator: tuple[OneNode, Any]) -> None:
    one, documents = validator
    observer = ObserverNode(observer_config(tmp_path))
    follow_until(observer, one.app, DOCS)

    # Reopened from its LevelDB, as after a restart: the validator's blocks, served by the observer's app.
    observer = ObserverNode(observer_config(tmp_path))
    try:
        assert observer.chain.height == DOCS
        for h in range(1, DOCS + 1):
            ours, theirs = observer.chain.get_header(h), one.node.chain.get_header(h)
            assert ours is not None and theirs is not None and ours.block_hash == theirs.block_hash
        app = create_observer_app(observer)

        async def calls(client: httpx.AsyncClient) -> dict[str, httpx.Response]:
            return {
                "status": await client.get("/v1/status"),
                "verify": await client.post("/v1/verify", json={"document": documents[1]}),
                "submit": await client.post("/v1/transactions", json={"envelope": "00", "document": None}),
                "metrics": await client.get("/metrics"),
                "peer": await client.post("/peer/v1/message", content=b"x"),
                "healthz": await client.get("/healthz"),
            }

        async def run() -> dict[str, httpx.Response]:
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://observer") as client:
                return await calls(client)

        got = asyncio.run(run())
        validator_verdict = one.call("POST", "/v1/verify", json={"document": documents[1]}).json()
    finally:
        asyncio.run(observer.stop())
    status = got["status"].json()
    assert status["node"]["role"] == "observer" and status["height"] == DOCS
    assert got["verify"].json()["verdict"] == validator_verdict["verdict"] == "valid"
    assert got["verify"].json()["bundle"]["commit"] == validator_verdict["bundle"]["commit"]
    submit = got["submit"]
    assert submit.status_code == 503 and submit.headers["content-type"] == "application/problem+json"
    assert submit.json()["type"] == "node.read_only" and VALIDATOR in submit.json()["detail"]
    assert got["metrics"].status_code == 200 and f"zoneledger_height {DOCS}" in got["metrics"].text
    assert got["peer"].status_code == 404, "an observer has no peer endpoints"
    assert got["healthz"].json()["height"] == DOCS


def test_observer_with_a_key_the_validators_refuse_commits_nothing(tmp_path: Path, validator: tuple[OneNode, Any]) -> None:
    one, _ = validator
    stranger = tmp_path / "stranger.pem"
    SigningKey.generate().save(stranger)
    observer = ObserverNode(observer_config(tmp_path, stranger))
    follow_until(observer, one.app, DOCS, timeout_s=1.0)
    assert observer.chain.height == 0
    source = observer.sources[0]
    assert source.failures >= 1 and not source.up and source.head == DOCS
