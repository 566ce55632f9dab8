"""Bad input over HTTP and the CLI against a running 4-zone network.

Each bad request gets its own problem type, the nodes keep running, and nothing is
committed (the document log does not grow).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from netutil import make_layout, wait_until

from ledger.encoding import cb, compute_doc_hash, decode_cb
from ledger.keys import SigningKey
from ledger.requests import sign_request
from ledger.transactions import Envelope, Transaction
from scripts.cli import main
from scripts.devkit import Alliance, load_example, with_number
from scripts.devnet import Devnet, DevnetLayout

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevnetLayout, Alliance, str]]:
    layout = make_layout(tmp_path_factory.mktemp("bad-input"), heartbeat_ms=60_000)
    devnet = Devnet(layout)
    devnet.start()
    devnet.wait_healthy()
    alliance = layout.alliance()
    url = layout.zones[0].url
    # A second TEDA officer, registered and then revoked, for the revoked-officer case.
    revoked = SigningKey.generate()
    with httpx.Client(timeout=30) as client:
        for envelope in (
            alliance.register_officer("EG-TEDA", revoked.public),
            alliance.revoke_officer("EG-TEDA", revoked.public),
        ):
            r = client.post(f"{url}/v1/transactions", params={"wait": 20},
                            json={"envelope": envelope.encode().hex(), "document": None})
            assert r.json()["status"] == "committed", r.text
    alliance.officer_keys["REVOKED"] = revoked
    try:
        yield layout, alliance, url
    finally:
        devnet.stop()


def log_size(url: str) -> int:
    with httpx.Client(timeout=5) as client:
        value: int = client.get(f"{url}/v1/status").json()["log_size"]
        return value


def post(url: str, **kwargs: Any) -> httpx.Response:
    with httpx.Client(timeout=30) as client:
        return client.post(f"{url}/v1/transactions", **kwargs)


def coo(number: str) -> dict[str, Any]:
    return with_number(load_example("coo_preferential.json"), "certificate_of_origin", number)


def signed_issue(alliance: Alliance, number: str, **kwargs: Any) -> dict[str, Any]:
    document = kwargs.pop("document", None) or coo(number)
    envelope, _ = alliance.issue(kwargs.pop("zone", "EG-TEDA"), "certificate_of_origin", document, number, **kwargs)
    return {"envelope": envelope.encode().hex(), "document": document}


def bad_cases(alliance: Alliance) -> dict[str, tuple[dict[str, Any], int, str]]:
    """name -> (request kwargs, expected status, expected problem type)."""
    body = signed_issue(alliance, "BAD-SIG")
    raw = decode_cb(bytes.fromhex(body["envelope"]))
    raw["sig"] = bytes(64)
    forged = {"envelope": cb(raw).hex(), "document": body["document"]}
    other_chain = signed_issue(alliance, "BAD-CHAIN")
    env = Envelope.decode(bytes.fromhex(other_chain["envelope"]))
    wrong = Transaction("another-chain", env.tx.signer, env.tx.nonce, env.tx.body).sign(alliance.officer_keys["EG-TEDA"])
    unknown_officer = SigningKey.generate()
    schema_doc = coo("BAD-SCHEMA")
    del schema_doc["issuer"]
    return {
        "malformed json": ({"content": b'{"envelope": ', "headers": {"content-type": "application/json"}}, 400, "request.malformed"),
        "malformed msgpack": ({"content": b"\xc1\xff", "headers": {"content-type": "application/msgpack"}}, 400, "request.malformed"),
        "float in document": ({"content": json.dumps(body).replace('"isPreferential": true', '"isPreferential": true, "x": 1.5').encode(),
                               "headers": {"content-type": "application/json"}}, 400, "request.malformed"),
        "wrong chain id": ({"json": {"envelope": wrong.encode().hex(), "document": other_chain["document"]}}, 422, "tx.wrong_chain"),
        "bad signature": ({"json": forged}, 422, "tx.signature_invalid"),
        "unknown officer": ({"json": signed_issue(alliance, "BAD-UNKNOWN", key=unknown_officer)}, 422, "doc.not_officer_of_zone"),
        "revoked officer": ({"json": signed_issue(alliance, "BAD-REVOKED", key=alliance.officer_keys["REVOKED"])}, 422, "tx.officer_revoked"),
        "another zone's document": ({"json": signed_issue(alliance, "BAD-ZONE", zone="DJ-DIFTZ", key=alliance.officer_keys["EG-TEDA"])},
                                    422, "doc.not_officer_of_zone"),
        "document failing its schema": ({"json": signed_issue(alliance, "BAD-SCHEMA", document=schema_doc)}, 422, "doc.schema"),
        "content not matching doc_hash": ({"json": {"envelope": body["envelope"], "document": coo("SOMETHING-ELSE")}}, 422, "doc.hash_mismatch"),
        "body over the limit": ({"content": b"{" + b" " * (33 * 1024 * 1024) + b"}", "headers": {"content-type": "application/json"}},
                                413, "request.too_large"),
        "unknown kind of body": ({"json": {"envelope": "zz", "document": None}}, 400, "request.malformed"),
    }


CASES = [
    "malformed json", "malformed msgpack", "float in document", "wrong chain id", "bad signature", "unknown officer",
    "revoked officer", "another zone's document", "document failing its schema", "content not matching doc_hash",
    "body over the limit", "unknown kind of body",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_submission_is_refused_with_its_problem_type(net: tuple[DevnetLayout, Alliance, str], case: str) -> None:
    layout, alliance, url = net
    kwargs, status, problem = bad_cases(alliance)[case]
    before = log_size(url)
    response = post(url, **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == problem, body
    assert "Traceback" not in response.text
    time.sleep(0.3)
    # Every node settles on the same log: nothing was committed (a node that committed the
    # bad transaction would stay above ``before`` and fail the wait).
    wait_until(lambda: all(log_size(z.url) == before for z in layout.zones), 10, "the log to stay unchanged")
    for zone in layout.zones:
        with httpx.Client(timeout=5) as client:
            assert client.get(f"{zone.url}/healthz").status_code == 200


def test_replayed_transaction_is_refused(net: tuple[DevnetLayout, Alliance, str]) -> None:
    layout, alliance, url = net
    body = signed_issue(alliance, "REPLAY-1")
    first = post(url, params={"wait": 20}, json=body)
    assert first.status_code == 200 and first.json()["status"] == "committed"
    size = log_size(url)
    again = post(layout.zones[1].url, json=body)
    assert again.status_code == 409 and again.json()["type"] == "tx.replayed"
    assert log_size(url) == size


def test_member_requests_must_be_signed_fresh_and_unique(net: tuple[DevnetLayout, Alliance, str]) -> None:
    layout, alliance, url = net
    body = signed_issue(alliance, "MEMBER-1")
    assert post(url, params={"wait": 20}, json=body).json()["status"] == "committed"
    path = "/v1/documents/EG-TEDA/MEMBER-1"
    with httpx.Client(timeout=10) as client:
        unsigned = client.get(url + path)
        assert unsigned.status_code == 401 and unsigned.json()["type"] == "auth.missing"
        officer = alliance.officer_keys["EG-TEDA"]
        node = layout.zones[0].zone_id
        headers = sign_request(officer, "GET", path, "", b"", int(time.time() * 1000), node=node)
        ok = client.get(url + path, headers=headers)
        assert ok.status_code == 200 and ok.json()["doc_hash"] == compute_doc_hash(body["document"]).hex()
        replay = client.get(url + path, headers=headers)
        assert replay.status_code == 401 and replay.json()["type"] == "auth.replayed"
        # The same request at another node: signed for this one, so refused there too.
        elsewhere = client.get(layout.zones[1].url + path, headers=headers)
        assert elsewhere.status_code == 401 and elsewhere.json()["type"] == "auth.wrong_node"
        stale = sign_request(officer, "GET", path, "", b"", int(time.time() * 1000) - 300_000, node=node)
        assert client.get(url + path, headers=stale).json()["type"] == "auth.stale"
        stranger = sign_request(SigningKey.generate(), "GET", path, "", b"", int(time.time() * 1000), node=node)
        refused = client.get(url + path, headers=stranger)
        assert refused.status_code == 403 and refused.json()["type"] == "auth.not_member"


def test_peer_message_from_a_non_validator_is_refused(net: tuple[DevnetLayout, Alliance, str]) -> None:
    layout, alliance, url = net
    from node.handshake import Challenge, PeerHello
    from node.peers import PeerMessage

    chain_id = alliance.genesis.chain_id
    outsider = SigningKey.generate()
    forged = PeerMessage(chain_id, 1, "txs", int(time.time() * 1000), cb([])).sign(outsider)
    size = log_size(url)
    with httpx.Client(timeout=10) as client:
        # Without a session a peer request is refused before its body is read, whatever it holds.
        for body in (forged, b"\x00\x01"):
            r = client.post(f"{url}/peer/v1/message", content=body,
                            headers={"content-type": "application/msgpack", "X-ZL-Peer-Kind": "txs"})
            assert r.status_code == 401 and r.json()["type"] == "peer.session_invalid"
        # And an outsider cannot open one, as itself or as a validator.
        for sender, expected in ((len(alliance.genesis.validators), (403, "peer.unknown_sender")),
                                 (1, (401, "peer.signature_invalid"))):
            challenge = Challenge.decode(client.get(f"{url}/peer/v1/challenge").content).value
            hello = PeerHello(chain_id, sender, 0, challenge).sign(outsider)
            r = client.post(f"{url}/peer/v1/hello", content=hello)
            assert (r.status_code, r.json()["type"]) == expected
    assert log_size(url) == size


def test_cli_failures_are_one_line_and_non_zero(
    net: tuple[DevnetLayout, Alliance, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout, alliance, url = net
    officer_key = str(layout.zones[0].officer_key)
    broken = coo("CLI-BAD")
    broken["supplyChainConsignment"]["includedConsignmentItems"][0]["tradeLineItems"][0]["tradeProduct"][
        "harmonisedTariffCode"]["classCode"] = "22"
    bad_file = tmp_path / "bad.json"
    bad_file.write_text(json.dumps(broken))
    good_file = tmp_path / "good.json"
    good_file.write_text(json.dumps(coo("CLI-OK-1")))
    cases = [
        ["submit", str(bad_file), "--type", "certificate_of_origin", "--key", officer_key, "--node", url],
        ["submit", str(tmp_path / "missing.json"), "--type", "certificate_of_origin", "--key", officer_key, "--node", url],
        ["submit", str(good_file), "--type", "certificate_of_origin", "--key", str(tmp_path / "nokey.pem"), "--node", url],
        ["submit", str(good_file), "--type", "certificate_of_origin", "--key", str(layout.zones[2].officer_key),
         "--zone", "EG-TEDA", "--node", url],
        ["revoke", "EG-TEDA/NEVER-ISSUED", "--reason", "x", "--key", officer_key, "--node", url],
        ["status", "--node", "http://127.0.0.1:1"],
    ]
    before = log_size(url)
    for argv in cases:
        code = main(argv)
        err = capsys.readouterr().err.strip()
        assert code != 0, argv
        assert err.count("\n") == 0 and err.startswith("zoneledger: "), (argv, err)
        assert "Traceback" not in err
    assert log_size(url) == before
    # and the happy path through the same CLI
    assert main(["submit", str(good_file), "--type", "certificate_of_origin", "--key", officer_key, "--node", url, "--wait"]) == 0
    out = capsys.readouterr().out
    assert "EG-TEDA/CLI-OK-1" in out
    wait_until(lambda: log_size(url) == before + 1, 10, "the good submission to commit")
