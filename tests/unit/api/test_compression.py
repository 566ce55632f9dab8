"""Client responses are gzip-compressed when asked for; peer traffic never is."""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import Any

import httpx
from fastapi import FastAPI

from api.app import GZIP_MINIMUM_BYTES, ClientGZipMiddleware
from api.routes_proofs import make_proof_router
from ledger.encoding import compute_doc_hash
from ledger.proofs import verify_bundle
from node.peers import PEER_PREFIX
from scripts.devkit import load_example, make_alliance, with_number


class _Node:
    def __init__(self) -> None:
        self.alliance = make_alliance(4)
        self.chain = self.alliance.chain()
        self.genesis = self.alliance.genesis


def _get(app: FastAPI, url: str, encoding: str) -> tuple[httpx.Response, bytes]:
    """The response (decoded by httpx) and the bytes that crossed the wire."""

    async def go() -> tuple[httpx.Response, bytes]:
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://test") as client,
            client.stream("GET", url, headers={"accept-encoding": encoding}) as response,
        ):
            raw = b"".join([chunk async for chunk in response.aiter_raw()])
            return response, raw

    return asyncio.run(go())


def test_proof_bundle_is_gzipped_for_clients_and_still_verifies() -> None:
    node = _Node()
    document = with_number(load_example("coo_preferential.json"), "certificate_of_origin", "GZ-1")
    node.alliance.commit_next(node.chain, [node.alliance.issue("EG-TEDA", "certificate_of_origin", document, "GZ-1")])
    app = FastAPI()
    app.include_router(make_proof_router(node))  # type: ignore[arg-type]
    app.add_middleware(ClientGZipMiddleware)
    url = f"/v1/proofs/{compute_doc_hash(document).hex()}"

    plain, plain_raw = _get(app, url, "identity")
    assert plain.status_code == 200 and "content-encoding" not in plain.headers
    zipped, zipped_raw = _get(app, url, "gzip")
    assert zipped.headers["content-encoding"] == "gzip"
    bundle: dict[str, Any] = json.loads(gzip.decompress(zipped_raw))
    assert bundle == json.loads(plain_raw)
    assert len(zipped_raw) < 0.6 * len(plain_raw)
    verdict = verify_bundle(bundle, node.genesis, copy_hash=compute_doc_hash(document))
    assert verdict.verdict == "valid"


def test_peer_routes_are_never_compressed() -> None:
    app = FastAPI()
    payload = {"filler": "a" * (4 * GZIP_MINIMUM_BYTES)}

    @app.get(f"{PEER_PREFIX}/probe")
    def peer_probe() -> dict[str, str]:
        return payload

    @app.get("/v1/probe")
    def client_probe() -> dict[str, str]:
        return payload

    app.add_middleware(ClientGZipMiddleware)
    peer, peer_raw = _get(app, f"{PEER_PREFIX}/probe", "gzip")
    client, client_raw = _get(app, "/v1/probe", "gzip")
    assert "content-encoding" not in peer.headers and json.loads(peer_raw) == payload
    assert client.headers["content-encoding"] == "gzip" and json.loads(gzip.decompress(client_raw)) == payload
