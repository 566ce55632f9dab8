"""Public proof endpoints: proof bundles, verification of a copy, checkpoints, log consistency.

Everything here is public and read-only, and uses only ``node.chain`` and
``node.genesis``. The node verifies each bundle it hands out with the same
:func:`ledger.proofs.verify_bundle` a client runs, but its verdict is a convenience:
clients verify the bundle themselves against their own genesis file.

* ``GET /v1/proofs/{hash}``: the bundle of the document a hash belongs to (any
  version's document hash, or an attachment's sha256), on the newest block.
* ``POST /v1/verify``: ``{"document": {...}}``, ``{"hash": hex}`` or a multipart
  ``file``; answers ``{"verdict", "document_hash", "doc_id", "matched", "bundle",
  "checks"}``. A JSON document whose hash is unknown is looked up by its own number,
  so an altered copy of a registered document is ``tampered``, not ``unknown``.
* ``GET /v1/checkpoint``: the newest header (bytes and fields), its hash and commit.
* ``GET /v1/consistency?from=&to=``: an RFC 9162 consistency proof between log sizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import APIRouter, Query, Request
from starlette.datastructures import UploadFile

from api.offload import run_off_loop
from ledger.chain import Chain
from ledger.documents import DOC_TYPES, document_number
from ledger.encoding import H, compute_doc_hash, parse_json
from ledger.errors import (
    DocumentError,
    JsonError,
    LedgerError,
    NotFoundError,
    RequestMalformedError,
)
from ledger.genesis import Genesis
from ledger.limits import MAX_VERIFY_DOCUMENT_BYTES
from ledger.proofs import UNKNOWN, build_bundle, bundle_for_hash, verify_bundle
from ledger.proofs.build import build_validator_history

MATCH_NUMBER = "number"


class ProofSource(Protocol):
    """What the routes need from a node: its committed chain and its genesis."""

    chain: Chain
    genesis: Genesis


def parse_hash_text(value: Any, what: str) -> bytes:
    """A 32-byte hash in hex (either case accepted from people; answered in lowercase)."""
    if not isinstance(value, str) or len(value) != 64:
        raise RequestMalformedError(f"{what}: expected 64 hex characters, got {str(value)[:70]!r}")
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise RequestMalformedError(f"{what}: expected 64 hex characters, got {value!r}") from exc


def find_by_number(chain: Chain, document: Any) -> str | None:
    """The registered document carrying this document's own number and type, if any."""
    for doc_type in sorted(DOC_TYPES):
        try:
            number = document_number(doc_type, document)
        except DocumentError:
            continue
        for doc_id in chain.documents_by_number(number):
            record = chain.get_doc(doc_id)
            if record is not None and record.doc_type == doc_type:
                return doc_id
    return None


def compute_answer(
    source: ProofSource, candidates: list[bytes], document: Any | None
) -> dict[str, Any]:
    """The ``/v1/verify`` answer for a copy whose possible hashes are ``candidates`` (best first)."""
    chain = source.chain
    for copy_hash in candidates:
        found = bundle_for_hash(chain, copy_hash)
        if found is not None:
            return _answer(source, found[0], found[1], copy_hash)
    # JCS hash when the copy is a document, so a tampered copy reports the hash it has.
    reported = candidates[-1] if document is not None else candidates[0]
    if document is not None:
        doc_id = find_by_number(chain, document)
        if doc_id is not None:
            return _answer(source, doc_id, MATCH_NUMBER, reported)
    return {"verdict": UNKNOWN, "document_hash": reported.hex(), "doc_id": None, "matched": None,
            "bundle": None, "checks": []}


def _answer(source: ProofSource, doc_id: str, matched: str, copy_hash: bytes) -> dict[str, Any]:
    bundle = build_bundle(source.chain, doc_id)
    result = verify_bundle(bundle, source.genesis, copy_hash=copy_hash)
    return {
        "verdict": result.verdict,
        "document_hash": copy_hash.hex(),
        "doc_id": doc_id,
        "matched": matched,
        "bundle": bundle,
        "checks": [check.to_json() for check in result.checks],
    }


def compute_number_answer(source: ProofSource, number: Any) -> dict[str, Any]:
    """``/v1/verify`` for a typed certificate number (``CO-1`` or ``ZONE/CO-1``): the current status."""
    if not isinstance(number, str) or not number.strip() or len(number) > 256:
        raise RequestMalformedError("number: expected a document number such as \"CO-2026-000123\"")
    chain = source.chain
    text = number.strip()
    candidates = [text] if "/" in text and chain.get_zone(text.partition("/")[0]) else []
    candidates += chain.documents_by_number(text)
    for doc_id in candidates:
        record = chain.get_doc(doc_id)
        if record is not None:
            return _answer(source, doc_id, MATCH_NUMBER, record.doc_hash)
    return {"verdict": UNKNOWN, "document_hash": None, "doc_id": None, "matched": None, "bundle": None, "checks": []}


@dataclass(frozen=True, slots=True)
class VerifyRequest:
    """A ``/v1/verify`` request, parsed: a typed number, or the copy's possible hashes."""

    number: Any | None = None
    """The ``number`` of a ``{"number": ...}`` request (checked by :func:`compute_number_answer`)."""
    candidates: tuple[bytes, ...] = ()
    """The copy's possible hashes, best first."""
    document: Any | None = None
    """The copy as a parsed document, when it is one."""


def parse_verify_json(body: bytes) -> VerifyRequest:
    """Parse a JSON ``/v1/verify`` body: ``{"number"}``, ``{"hash"}`` or ``{"document"}``
    (whose JCS hash it computes). Pure: runs off the event loop for big bodies."""
    try:
        value = parse_json(body)
    except JsonError as exc:
        raise RequestMalformedError(f"expected a JSON body: {exc}") from exc
    if isinstance(value, dict) and set(value) == {"number"} and value["number"] is not None:
        return VerifyRequest(number=value["number"])
    if not isinstance(value, dict) or len(value) != 1 or not ({"document", "hash"} & value.keys()):
        raise RequestMalformedError('expected {"document": {...}}, {"hash": "hex"} or {"number": "..."}')
    if "hash" in value:
        return VerifyRequest(candidates=(parse_hash_text(value["hash"], "hash"),))
    document = value["document"]
    if not isinstance(document, dict):
        raise RequestMalformedError("document: expected a JSON object")
    return VerifyRequest(candidates=(compute_doc_hash(document),), document=document)


def parse_verify_upload(data: bytes) -> VerifyRequest:
    """An uploaded file's hashes: its bytes', and, when it is a JSON document no bigger
    than a registrable one's copy can be, its JCS hash. Pure: runs off the event loop."""
    candidates = [H(data)]
    document: Any | None = None
    parsed = None
    if len(data) <= MAX_VERIFY_DOCUMENT_BYTES:
        try:
            parsed = parse_json(data)
        except LedgerError:
            parsed = None  # not JSON under the document rules: a plain file such as a PDF
    if isinstance(parsed, dict):
        document = parsed
        doc_hash = compute_doc_hash(parsed)
        if doc_hash != candidates[0]:
            candidates.append(doc_hash)
    return VerifyRequest(candidates=tuple(candidates), document=document)


async def _read_upload(request: Request) -> bytes:
    form = await request.form()
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise RequestMalformedError("file: expected a multipart file field named 'file'")
        return await upload.read()
    finally:
        await form.close()


def make_proof_router(node: ProofSource) -> APIRouter:
    router = APIRouter()

    @router.get("/v1/proofs/{hash}", tags=["public"])
    async def proof(hash: str) -> dict[str, Any]:  # noqa: A002 - the path parameter's public name
        """The proof bundle (DESIGN §9) of the document a hash belongs to: any version's hash or an attachment's."""
        wanted = parse_hash_text(hash.lower(), "hash")
        found = bundle_for_hash(node.chain, wanted)
        if found is None:
            raise NotFoundError(f"expected a registered document or attachment hash, got {wanted.hex()}")
        return build_bundle(node.chain, found[0])

    @router.post("/v1/verify", tags=["public"])
    async def verify(request: Request) -> dict[str, Any]:
        """Verify a copy: JSON ``{"document": {...}}`` or ``{"hash": hex}``, or a multipart ``file``."""
        content_type = request.headers.get("content-type", "")
        parsed: VerifyRequest
        if content_type.startswith("multipart/form-data"):
            data = await _read_upload(request)
            parsed = await run_off_loop(len(data), parse_verify_upload, data)
        else:
            body = await request.body()
            parsed = await run_off_loop(len(body), parse_verify_json, body)
            if parsed.number is not None:
                return compute_number_answer(node, parsed.number)
        return compute_answer(node, list(parsed.candidates), parsed.document)

    @router.get("/v1/checkpoint", tags=["public"])
    async def checkpoint() -> dict[str, Any]:
        """The newest committed header, its hash and commit certificate, for log monitors."""
        chain = node.chain
        header = chain.head_header
        commit = chain.get_commit(chain.height) if header is not None else None
        if header is None or commit is None:
            raise NotFoundError("expected a committed block, got an empty chain")
        answer: dict[str, Any] = {
            "header": header.encode().hex(),
            "header_fields": header.to_json(),
            "block_hash": header.block_hash.hex(),
            "commit": commit.to_json(),
            "validators": [v.hex() for v in chain.validators_for(header.height)],
            "chain_id": node.genesis.chain_id,
            "genesis_hash": node.genesis.genesis_hash.hex(),
        }
        history = build_validator_history(chain, header.height)
        if history:
            answer["validator_history"] = history
        return answer

    @router.get("/v1/consistency", tags=["public"])
    async def consistency(
        from_: int = Query(..., alias="from", ge=1), to: int = Query(..., ge=1)
    ) -> dict[str, Any]:
        """RFC 9162 consistency proof from log size ``from`` to ``to`` (both committed, from <= to)."""
        header = node.chain.head_header
        size = header.log_size if header is not None else 0
        if not from_ <= to <= size:
            raise RequestMalformedError(f"expected 1 <= from <= to <= {size} (the log size), got from={from_} to={to}")
        proof = node.chain.log().consistency_proof(from_, to)
        return {"from": from_, "to": to, "proof": [p.hex() for p in proof]}

    return router
