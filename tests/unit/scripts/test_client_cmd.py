"""zoneledger submit / amend / revoke / doc get / status.

The local checks run without a node. The HTTP part runs against a small test double
of a node: a FastAPI app served by uvicorn on 127.0.0.1 in a background thread, with
the real error handlers and member authentication, implementing just enough of
/v1/status, /v1/transactions and /v1/documents to exercise the client.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from serving import serve_app

from api.auth import MemberAuth
from api.errors import install_error_handlers
from ledger.encoding import H, compute_doc_hash
from ledger.errors import (
    DocumentExistsError,
    DocumentHashMismatchError,
    DocumentNotFoundError,
    MempoolFullError,
    StaleSupersedesError,
)
from ledger.keys import SigningKey
from ledger.transactions import DocAmend, DocIssue, DocRevoke, Envelope, validate_signature
from scripts.cli import main
from scripts.devkit import Alliance, load_example, make_alliance, with_number

ALLIANCE = make_alliance(2)
ZONE = "EG-TEDA"
OFFICER = ALLIANCE.officer_keys[ZONE]
COO = "certificate_of_origin"


# --- the test double ----------------------------------------------------------------


class FakeNode:
    """Documents by id, committed at once; a transaction with ?wait reports its height."""

    def __init__(self, alliance: Alliance) -> None:
        self.alliance = alliance
        self.reset()

    def reset(self) -> None:
        self.documents: dict[str, dict[str, Any]] = {}
        self.received: list[tuple[Envelope, Any]] = []
        self.height = 0
        self.mempool_full = False
        self.stay_pending = False

    def is_member(self, key: bytes) -> bool:
        genesis = self.alliance.genesis
        return key in genesis.auditors or any(key in zone.officers for zone in genesis.zones)

    def status(self) -> dict[str, Any]:
        genesis = self.alliance.genesis
        return {
            "chain_id": genesis.chain_id, "height": self.height, "round": 0, "block_hash": "ab" * 32,
            "time_ms": 0, "validators": [v.hex() for v in genesis.validators], "mempool_size": 0,
            "node": {"validator_index": 0, "zone_id": ZONE},
            "zones": [{"zone_id": z.zone_id, "officers": [o.hex() for o in z.officers]} for z in genesis.zones],
        }

    def apply(self, envelope: Envelope, document: Any) -> None:
        validate_signature(envelope)
        body = envelope.tx.body
        if isinstance(body, DocIssue | DocAmend) and compute_doc_hash(document) != body.doc_hash:
            raise DocumentHashMismatchError("expected the content of doc_hash, got other content")
        if isinstance(body, DocIssue):
            if body.doc_id in self.documents:
                raise DocumentExistsError(f"expected a new doc_id, got {body.doc_id}")
            self.documents[body.doc_id] = {
                "doc_id": body.doc_id, "doc_type": body.doc_type, "doc_hash": body.doc_hash.hex(),
                "status": "active", "version": 1, "document": document,
                "attachments": [{**a.to_wire(), "sha256": a.sha256.hex()} for a in body.attachments],
            }
            return
        assert isinstance(body, DocAmend | DocRevoke)
        record = self.documents.get(body.doc_id)
        if record is None:
            raise DocumentNotFoundError(f"expected a registered document, got {body.doc_id}")
        if isinstance(body, DocAmend):
            if body.supersedes.hex() != record["doc_hash"]:
                raise StaleSupersedesError("expected the current version, got another")
            record.update(doc_hash=body.doc_hash.hex(), version=record["version"] + 1, document=document,
                          reason=body.reason)
        else:
            record.update(status="revoked", reason=body.reason)


def make_app(node: FakeNode) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    member = MemberAuth(node.is_member, node_id=ZONE)

    @app.get("/v1/status")
    def status() -> dict[str, Any]:
        return node.status()

    @app.post("/v1/transactions")
    async def post_transaction(request: Request, wait: int = 0) -> JSONResponse:
        if node.mempool_full:
            raise MempoolFullError("expected room in the mempool, got 5000 pending")
        submitted = json.loads(await request.body())
        envelope = Envelope.decode(bytes.fromhex(submitted["envelope"]))
        node.apply(envelope, submitted["document"])
        node.received.append((envelope, submitted["document"]))
        if not wait or node.stay_pending:
            return JSONResponse({"tx_hash": envelope.tx_hash.hex(), "status": "pending"}, status_code=202)
        node.height += 1
        return JSONResponse({
            "tx_hash": envelope.tx_hash.hex(), "status": "committed", "height": node.height,
            "log_index": len(node.received) - 1, "block_hash": "cd" * 32,
        })

    @app.get("/v1/documents/{doc_id:path}")
    def get_document(doc_id: str, reader: bytes = Depends(member)) -> dict[str, Any]:
        record = node.documents.get(doc_id)
        if record is None:
            raise DocumentNotFoundError(f"expected a registered document, got {doc_id}")
        return record

    return app


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, FakeNode]]:
    node = FakeNode(ALLIANCE)
    with serve_app(make_app(node)) as (host, port):
        yield f"http://{host}:{port}", node


@pytest.fixture
def node(served: tuple[str, FakeNode]) -> FakeNode:
    served[1].reset()
    return served[1]


@pytest.fixture
def url(served: tuple[str, FakeNode], node: FakeNode) -> str:
    return served[0]


@pytest.fixture
def officer_pem(tmp_path: Path) -> Path:
    path = tmp_path / "officer.pem"
    OFFICER.save(path)
    return path


def write_json(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value, indent=2), encoding="utf-8")
    return path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# --- local checks (no node) -------------------------------------------------------------

UNREACHABLE = "http://127.0.0.1:9"


def test_submit_needs_its_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["submit", "doc.json"])
    assert exc.value.code == 2


def test_local_validation_fails_with_the_field_path(
    tmp_path: Path, officer_pem: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = load_example("coo_preferential.json")
    items = document["supplyChainConsignment"]["includedConsignmentItems"]
    items[0]["tradeLineItems"][0]["tradeProduct"]["harmonisedTariffCode"]["classCode"] = "22"
    path = write_json(tmp_path / "bad.json", document)
    code, out, err = run(["submit", str(path), "--type", COO, "--key", str(officer_pem), "--node", UNREACHABLE],
                         capsys)
    assert code == 1 and out == ""
    assert err.startswith(
        "zoneledger: doc.hs_code: supplyChainConsignment.includedConsignmentItems[0].tradeLineItems[0]"
        ".tradeProduct.harmonisedTariffCode.classCode: "
    )
    assert err.count("\n") == 1


def test_unknown_doc_type_is_one_line(tmp_path: Path, officer_pem: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_json(tmp_path / "d.json", load_example("coo_preferential.json"))
    code, _, err = run(["submit", str(path), "--type", "passport", "--key", str(officer_pem), "--node", UNREACHABLE],
                       capsys)
    assert code == 1 and err.startswith("zoneledger: doc.type_unknown:")


def test_document_with_a_float_is_refused_locally(
    tmp_path: Path, officer_pem: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "float.json"
    path.write_text('{"iD": "CO-1", "amount": 1.5}')
    code, _, err = run(["submit", str(path), "--type", COO, "--key", str(officer_pem), "--node", UNREACHABLE], capsys)
    assert code == 1 and err.startswith("zoneledger: doc.json:") and err.count("\n") == 1


def test_missing_key_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_json(tmp_path / "d.json", load_example("coo_preferential.json"))
    missing = tmp_path / "nope.pem"
    code, _, err = run(["submit", str(path), "--type", COO, "--key", str(missing), "--node", UNREACHABLE], capsys)
    assert code == 1
    assert err.startswith("zoneledger: key.file_invalid: cannot read key file") and err.count("\n") == 1


def test_missing_document_file_is_one_line(officer_pem: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["submit", "/no/such/doc.json", "--type", COO, "--key", str(officer_pem),
                        "--node", UNREACHABLE], capsys)
    assert code != 0 and "cannot read document" in err and err.count("\n") == 1


def test_bad_doc_id_is_refused_before_any_request(officer_pem: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["revoke", "no-zone-here", "--reason", "x", "--key", str(officer_pem), "--node", UNREACHABLE],
                       capsys)
    assert code == 1 and err.startswith("zoneledger: tx.malformed: doc_id:")


def test_node_url_must_be_http(officer_pem: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["status", "--node", "ftp://example"], capsys)
    assert code == 2 and "--node" in err


def test_unreachable_node_is_node_unavailable(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:  # a port nobody listens on: bound, then closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, _, err = run(["status", "--node", f"http://127.0.0.1:{port}"], capsys)
    assert code == 1
    assert err.startswith(f"zoneledger: node.unavailable: cannot reach http://127.0.0.1:{port}")
    assert err.count("\n") == 1


# --- against the test double ---------------------------------------------------------------


def submit(url: str, pem: Path, document: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str],
           *extra: str) -> tuple[int, str, str]:
    path = write_json(tmp_path / f"doc-{time.monotonic_ns()}.json", document)
    return run(["submit", str(path), "--type", COO, "--key", str(pem), "--node", url, *extra], capsys)


def test_status_summary_and_json(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["status", "--node", url], capsys)
    assert code == 0
    assert ALLIANCE.genesis.chain_id in out and "EG-TEDA" in out and "validators 2" in out
    code, out, _ = run(["status", "--node", url, "--json"], capsys)
    assert code == 0 and json.loads(out)["chain_id"] == ALLIANCE.genesis.chain_id


def test_submit_and_wait_for_finality(
    url: str, node: FakeNode, officer_pem: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = load_example("coo_preferential.json")
    code, out, err = submit(url, officer_pem, document, tmp_path, capsys, "--wait")
    assert code == 0, err
    assert "waiting for finality" in err
    envelope, sent = node.received[0]
    assert sent == document
    body = envelope.tx.body
    assert isinstance(body, DocIssue)
    assert body.doc_id == f"{ZONE}/{document['iD']}"
    assert body.doc_hash == compute_doc_hash(document)
    assert envelope.tx.signer == OFFICER.public and envelope.tx.chain_id == ALLIANCE.genesis.chain_id
    assert f"{ZONE}/{document['iD']}" in out
    assert envelope.tx_hash.hex() in out
    assert "committed at height 1" in out


def test_submit_without_wait_is_pending(
    url: str, node: FakeNode, officer_pem: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = submit(url, officer_pem, load_example("coo_preferential.json"), tmp_path, capsys)
    assert code == 0 and "pending" in out


def test_wait_that_ends_pending_exits_3(
    url: str, node: FakeNode, officer_pem: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    node.stay_pending = True
    code, out, err = submit(url, officer_pem, load_example("coo_preferential.json"), tmp_path, capsys, "--wait")
    assert code == 3 and "pending" in out and "not final" in err


def test_node_refusal_is_printed_as_type_and_detail(
    url: str, node: FakeNode, officer_pem: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = load_example("coo_preferential.json")
    assert submit(url, officer_pem, document, tmp_path, capsys)[0] == 0
    code, out, err = submit(url, officer_pem, document, tmp_path, capsys)
    assert code == 1 and out == ""
    assert err == f"zoneledger: doc.exists: expected a new doc_id, got {ZONE}/{document['iD']}\n"


def test_full_mempool_is_reported(
    url: str, node: FakeNode, officer_pem: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    node.mempool_full = True
    code, _, err = submit(url, officer_pem, load_example("coo_preferential.json"), tmp_path, capsys)
    assert code == 1 and err.startswith("zoneledger: mempool.full:")


def test_attachments_are_hashed_and_typed(
    url: str, node: FakeNode, officer_pem: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pdf = tmp_path / "certificate.pdf"
    pdf.write_bytes(b"%PDF-1.7 test certificate")
    code, _, err = submit(url, officer_pem, load_example("coo_preferential.json"), tmp_path, capsys,
                          "--attach", str(pdf))
    assert code == 0, err
    body = node.received[0][0].tx.body
    assert isinstance(body, DocIssue)
    [attachment] = body.attachments
    assert (attachment.name, attachment.media_type) == ("certificate.pdf", "application/pdf")
    assert attachment.sha256 == H(pdf.read_bytes()) and attachment.size == pdf.stat().st_size


def test_explicit_zone_and_key_of_no_zone(
    url: str, node: FakeNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stranger = tmp_path / "stranger.pem"
    SigningKey.from_label("client test stranger").save(stranger)
    document = load_example("coo_preferential.json")
    code, _, err = submit(url, stranger, document, tmp_path, capsys)
    assert code == 2 and "not an officer of any zone" in err and "--zone" in err
    code, out, _ = submit(url, stranger, document, tmp_path, capsys, "--zone", "DJ-DIFTZ")
    assert code == 0 and f"DJ-DIFTZ/{document['iD']}" in out


def test_amend_revoke_and_doc_get(
    url: str, node: FakeNode, officer_pem: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A number with '#', '?' and '/' travels percent-encoded and is signed decoded.
    document = with_number(load_example("coo_preferential.json"), COO, "CO-2026/7#A?")
    doc_id = f"{ZONE}/CO-2026/7#A?"
    assert submit(url, officer_pem, document, tmp_path, capsys, "--wait")[0] == 0
    first_hash = compute_doc_hash(document)

    amended = dict(document, name="Certificate of Origin Form A (corrected)")
    path = write_json(tmp_path / "amended.json", amended)
    code, out, err = run(["amend", doc_id, str(path), "--reason", "typo in name", "--key", str(officer_pem),
                          "--node", url, "--wait"], capsys)
    assert code == 0, err
    body = node.received[-1][0].tx.body
    assert isinstance(body, DocAmend)
    assert body.supersedes == first_hash and body.doc_hash == compute_doc_hash(amended)
    assert node.documents[doc_id]["version"] == 2

    code, out, err = run(["revoke", doc_id, "--reason", "goods not shipped", "--key", str(officer_pem),
                          "--node", url], capsys)
    assert code == 0, err
    revoke = node.received[-1]
    assert isinstance(revoke[0].tx.body, DocRevoke) and revoke[1] is None
    assert revoke[0].tx.body.doc_hash == compute_doc_hash(amended)

    code, out, err = run(["doc", "get", doc_id, "--key", str(officer_pem), "--node", url], capsys)
    assert code == 0, err
    record = json.loads(out)
    assert record["status"] == "revoked" and record["version"] == 2 and record["doc_id"] == doc_id

    code, _, err = run(["revoke", doc_id, "--reason", "again", "--key", str(officer_pem), "--node", url], capsys)
    assert code == 1 and err.startswith("zoneledger: doc.revoked:")


def test_amend_with_another_number_is_refused_locally(
    url: str, node: FakeNode, officer_pem: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = load_example("coo_preferential.json")
    assert submit(url, officer_pem, document, tmp_path, capsys)[0] == 0
    other = write_json(tmp_path / "other.json", with_number(document, COO, "CO-OTHER"))
    code, _, err = run(["amend", f"{ZONE}/{document['iD']}", str(other), "--reason", "r", "--key", str(officer_pem),
                        "--node", url], capsys)
    assert code == 1 and err.startswith("zoneledger: doc.id_mismatch:")
    assert len(node.received) == 1


def test_doc_get_unknown_document_is_404_problem(
    url: str, officer_pem: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["doc", "get", f"{ZONE}/CO-404", "--key", str(officer_pem), "--node", url], capsys)
    assert code == 1 and out == ""
    assert err.startswith("zoneledger: doc.not_found:")


def test_doc_get_by_a_non_member_is_refused(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stranger = tmp_path / "stranger.pem"
    SigningKey.from_label("client test stranger").save(stranger)
    code, _, err = run(["doc", "get", f"{ZONE}/CO-1", "--key", str(stranger), "--node", url], capsys)
    assert code == 1 and err.startswith("zoneledger: auth.not_member:")


def test_auditor_reads_with_an_encrypted_key(
    url: str, node: FakeNode, officer_pem: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    document = load_example("coo_preferential.json")
    assert submit(url, officer_pem, document, tmp_path, capsys)[0] == 0
    auditor = tmp_path / "auditor.pem"
    ALLIANCE.auditor_keys[0].save(auditor, b"s3cret")
    monkeypatch.setenv("ZL_AUDITOR_PASS", "s3cret")
    code, out, err = run(["doc", "get", f"{ZONE}/{document['iD']}", "--key", str(auditor),
                          "--passphrase-env", "ZL_AUDITOR_PASS", "--node", url], capsys)
    assert code == 0, err
    assert json.loads(out)["doc_hash"] == compute_doc_hash(document).hex()
