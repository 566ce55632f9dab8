"""``zoneledger verify`` of a file bigger than a node takes as an upload asks by its hash."""

from __future__ import annotations

import json

import httpx

from ledger.encoding import H
from ledger.limits import MAX_VERIFY_UPLOAD_BYTES
from scripts.client_cmd import NodeClient
from scripts.proof_cmd import post_verify

UNKNOWN = {"verdict": "unknown", "document_hash": None, "doc_id": None, "matched": None, "bundle": None, "checks": []}


def sent_for(data: bytes) -> httpx.Request:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return httpx.Response(200, json=UNKNOWN)

    with NodeClient("http://node.test", transport=httpx.MockTransport(handler)) as client:
        assert post_verify(client, data, "scan.pdf")["verdict"] == "unknown"
    return seen[0]


def test_a_file_over_the_upload_limit_is_looked_up_by_its_hash() -> None:
    data = b"%PDF" + b"x" * MAX_VERIFY_UPLOAD_BYTES
    request = sent_for(data)
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {"hash": H(data).hex()}


def test_a_file_within_the_upload_limit_is_uploaded() -> None:
    request = sent_for(b"%PDF small")
    assert request.headers["content-type"].startswith("multipart/form-data")
    assert b"%PDF small" in request.content
