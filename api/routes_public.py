"""Public and officer endpoints: status, headers, validators, health, metrics, submission.

Submission needs no request signature: each transaction is signed by its officer or
admin, and the ledger's rules decide whether that key may do what it asks.
"""

from __future__ import annotations

import asyncio
import resource
import time
from dataclasses import dataclass
from typing import Annotated, Any

import msgpack
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from api.offload import render_json, run_off_loop
from ledger.encoding import H, bounded_repr, expect_bytes, expect_list, expect_map, jcs, parse_json
from ledger.errors import (
    EncodingError,
    JsonError,
    LedgerError,
    MempoolFullError,
    NotFoundError,
    RequestMalformedError,
    RequestTooLargeError,
    SignatureInvalidError,
    WrongChainError,
)
from ledger.limits import MAX_SUBMISSION_BATCH
from ledger.transition import compute_verified_envelope
from node.finality import STATUS_PENDING, TxResult
from node.offload import ADMISSION_CHUNK
from node.runtime import Node

MAX_WAIT_S = 60.0
MAX_HEIGHT = 2**64 - 1
Height = Annotated[int, Path(ge=0, le=MAX_HEIGHT, description="A block height (a uint64).")]
"""A height in a path: heights are uint64 on the wire, so anything else is
``request.malformed`` (400), never a key the store cannot even form (500)."""
"""Transactions of a batch admitted per turn of the event loop (about 10 ms of rules)."""
REFUSE_CHUNK = 512
"""Refusals of a batch recorded per turn of the event loop (about 2 ms)."""


def _hex_bytes(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise RequestMalformedError(f"{what}: expected hex text")
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise RequestMalformedError(f"{what}: expected hex, got {value[:24]!r}") from exc


def _parse_item_json(item: Any, where: str) -> tuple[bytes, bytes | None]:
    if not isinstance(item, dict) or set(item) - {"envelope", "document"} or "envelope" not in item:
        raise RequestMalformedError(f"{where}: expected {{\"envelope\": hex, \"document\": object | null}}")
    document = item.get("document")
    if document is not None and not isinstance(document, dict):
        raise RequestMalformedError(f"{where}.document: expected a JSON object or null")
    return _hex_bytes(item["envelope"], f"{where}.envelope"), None if document is None else jcs(document)


def _parse_item_msgpack(item: Any, where: str) -> tuple[bytes, bytes | None]:
    try:
        m = expect_map(item, where)
        if set(m) - {"envelope", "document"} or "envelope" not in m:
            raise RequestMalformedError(f"{where}: expected {{\"envelope\": bin, \"document\": bin | nil}}")
        document = m.get("document")
        return expect_bytes(m["envelope"], f"{where}.envelope"), None if document is None else expect_bytes(
            document, f"{where}.document"
        )
    except EncodingError as exc:
        raise RequestMalformedError(str(exc)) from exc


def parse_submission(body: bytes, content_type: str) -> tuple[list[tuple[bytes, bytes | None]], bool]:
    """``(entries, is_batch)`` from a JSON or MessagePack submission body."""
    if "msgpack" in content_type:
        try:
            value = msgpack.unpackb(body, raw=False, strict_map_key=True)
        except Exception as exc:  # noqa: BLE001 - msgpack raises many types; one answer
            raise RequestMalformedError(f"expected a MessagePack body, got unreadable bytes ({type(exc).__name__})") from exc
        parse_item = _parse_item_msgpack
    else:
        try:
            value = parse_json(body)
        except JsonError as exc:
            raise RequestMalformedError(f"expected a JSON body: {exc}") from exc
        parse_item = _parse_item_json
    if isinstance(value, dict) and "transactions" in value:
        items = value["transactions"]
        if not isinstance(items, list) or not items:
            raise RequestMalformedError("transactions: expected a non-empty list")
        if len(items) > MAX_SUBMISSION_BATCH:
            raise RequestTooLargeError(f"transactions: expected at most {MAX_SUBMISSION_BATCH}, got {len(items)}")
        return [parse_item(item, f"transactions[{i}]") for i, item in enumerate(expect_list(items, "transactions"))], True
    return [parse_item(value, "body")], False


@dataclass(frozen=True, slots=True)
class Check:
    """What the checks of a submitted transaction that read no ledger state found."""

    tx_hash: bytes | None
    """``H(tx_bytes)``, or None when the bytes do not decode."""
    error: LedgerError | None
    """The first check that failed (decoding, chain id, signature), or None."""


def compute_checks(entries: list[tuple[bytes, bytes | None]], chain_id: str) -> list[Check]:
    """Decode, chain id and signature of every entry, as mempool admission would check
    them (``compute_verified_envelope``). Pure: runs off the event loop for a big body;
    what passes is remembered as verified, so admission does not verify it again."""
    out = []
    for tx_bytes, _ in entries:
        try:
            compute_verified_envelope(tx_bytes, chain_id)
        except (WrongChainError, SignatureInvalidError) as exc:
            out.append(Check(H(tx_bytes), exc))  # decoded: its hash names it
        except LedgerError as exc:
            out.append(Check(None, exc))
        else:
            out.append(Check(H(tx_bytes), None))
    return out


async def admit(
    node: Node, entries: list[tuple[bytes, bytes | None]], checks: list[Check]
) -> list[tuple[bytes | None, LedgerError | None]]:
    """Each entry's ``(tx_hash, error)``, as ``node.submit`` answers: refused entries are
    answered (and remembered) here, the rest admitted ``ADMISSION_CHUNK`` at a time, each
    chunk its own task, so that the loop serves votes between chunks of a big batch."""
    results: list[tuple[bytes | None, LedgerError | None]] = [(None, None)] * len(entries)
    passed: list[int] = []
    for i, ((tx_bytes, content), check) in enumerate(zip(entries, checks, strict=True)):
        if check.error is None:
            passed.append(i)
        elif check.tx_hash is None:
            results[i] = (None, check.error)
        else:
            size = len(tx_bytes) + (len(content) if content else 0)
            results[i] = (None, node.mempool.refuse(check.tx_hash, size, check.error))
        if i % REFUSE_CHUNK == REFUSE_CHUNK - 1:
            await asyncio.sleep(0)  # a batch of 5,000 refusals is 20 ms of bookkeeping: let votes in between
    chunks = [passed[k:k + ADMISSION_CHUNK] for k in range(0, len(passed), ADMISSION_CHUNK)]
    answers = await asyncio.gather(*(node.submit([entries[i] for i in chunk]) for chunk in chunks))
    for chunk, answer in zip(chunks, answers, strict=True):
        for i, result in zip(chunk, answer, strict=True):
            results[i] = result
    return results


def make_public_router(node: Node) -> APIRouter:
    router = APIRouter()

    @router.get("/healthz", tags=["public"])
    async def healthz() -> dict[str, Any]:
        """Liveness: the process answers and its store is open."""
        return {"ok": True, "height": node.chain.height}

    @router.get("/v1/status", tags=["public"])
    async def status() -> dict[str, Any]:
        """Chain head, consensus round, mempool size and peer liveness."""
        return node.status()

    @router.get("/v1/validators", tags=["public"])
    async def validators() -> list[dict[str, Any]]:
        """The validator set deciding the next height, with each validator's last height seen signed."""
        zones = {zone.validator_key: zone for zone in node.chain.get_members()}
        return [
            {
                "index": i,
                "zone_id": zones[key].zone_id if key in zones else None,
                "name": zones[key].name if key in zones else None,
                "key": key.hex(),
                "last_signed_height": node.last_signed.get(i, 0),
            }
            for i, key in enumerate(node.chain.validators)
        ]

    @router.get("/v1/headers/{height}", tags=["public"])
    async def header(height: Height) -> dict[str, Any]:
        """A committed header's fields (bytes as hex), its hash and its commit certificate."""
        found = node.chain.get_header(height) if height >= 1 else None
        if found is None:
            raise NotFoundError(f"expected a committed height 1..{node.chain.height}, got {height}")
        commit = node.chain.get_commit(height)
        return {
            "header": found.to_json(),
            "block_hash": found.block_hash.hex(),
            "commit": commit.to_json() if commit else None,
        }

    @router.post("/v1/transactions", tags=["officers"], status_code=202)
    async def submit(request: Request, wait: float = Query(0.0, ge=0.0, le=MAX_WAIT_S)) -> Response:
        """Submit one signed transaction (or a batch) with its document; ``?wait=S`` waits for finality."""
        node.require_ready()
        body = await request.body()
        entries, is_batch = await run_off_loop(len(body), parse_submission, body, request.headers.get("content-type", ""))
        checks = await run_off_loop(len(body), compute_checks, entries, node.genesis.chain_id)
        results = await admit(node, entries, checks)
        if not is_batch:
            tx_hash, error = results[0]
            if error is not None:
                raise error
            assert tx_hash is not None
            final = (await node.wait_final([tx_hash], wait))[0] if wait else node.tx_result(tx_hash)
            result = final or TxResult(tx_hash, STATUS_PENDING)
            if result.error_code is not None:
                return JSONResponse(result.to_json(), status_code=422)
            return JSONResponse(result.to_json(), status_code=202 if result.status == STATUS_PENDING else 200)
        if all(isinstance(e, MempoolFullError) for _, e in results):
            raise MempoolFullError("expected room in the mempool for at least one transaction")
        accepted = [h for h, e in results if h is not None]
        finals = {r.tx_hash: r for r in await node.wait_final(accepted, wait)} if wait else {}
        out = []
        for tx_hash, error in results:
            if error is not None:
                out.append({"status": "rejected", "error": {"type": error.code, "detail": str(error)}})
            else:
                assert tx_hash is not None
                result = finals.get(tx_hash) or node.tx_result(tx_hash) or TxResult(tx_hash, STATUS_PENDING)
                out.append(result.to_json())
        # A batch's answer runs to a megabyte: serialised beside the loop, like its body was parsed.
        content = await run_off_loop(len(body), render_json, {"results": out})
        return Response(content, status_code=202, media_type="application/json")

    @router.get("/v1/transactions/{tx_hash}", tags=["officers"])
    async def transaction(tx_hash: str) -> dict[str, Any]:
        """Where a transaction stands: pending, committed (with height and log index) or rejected."""
        raw = _hex_bytes(tx_hash, "tx_hash")
        result = node.tx_result(raw)
        if result is None:
            raise NotFoundError(f"no transaction {bounded_repr(tx_hash)} is known to this node")
        return result.to_json()

    @router.get("/metrics", tags=["public"], response_class=PlainTextResponse)
    async def metrics() -> Response:
        """Prometheus text exposition."""
        return PlainTextResponse(render_metrics(node), media_type="text/plain; version=0.0.4")

    return router


def render_metrics(node: Node) -> str:
    m = node.metrics
    lines = [
        "# HELP zoneledger_height Committed chain height.",
        "# TYPE zoneledger_height gauge",
        f"zoneledger_height {node.chain.height}",
        "# HELP zoneledger_round Current consensus round.",
        "# TYPE zoneledger_round gauge",
        f"zoneledger_round {node.state.round}",
        "# HELP zoneledger_commits_total Blocks committed by this node.",
        "# TYPE zoneledger_commits_total counter",
        f"zoneledger_commits_total {m.commits}",
        "# HELP zoneledger_transactions_committed_total Transactions committed.",
        "# TYPE zoneledger_transactions_committed_total counter",
        f"zoneledger_transactions_committed_total {m.txs_committed}",
        "# HELP zoneledger_transactions_rejected_total Pending transactions rejected after admission.",
        "# TYPE zoneledger_transactions_rejected_total counter",
        f"zoneledger_transactions_rejected_total {m.txs_rejected}",
        "# HELP zoneledger_mempool_size Pending transactions.",
        "# TYPE zoneledger_mempool_size gauge",
        f"zoneledger_mempool_size {len(node.mempool)}",
        "# HELP zoneledger_evidence_total Equivocations seen.",
        "# TYPE zoneledger_evidence_total counter",
        f"zoneledger_evidence_total {m.evidence}",
        "# HELP zoneledger_synced_blocks_total Blocks fetched from peers by catch-up.",
        "# TYPE zoneledger_synced_blocks_total counter",
        f"zoneledger_synced_blocks_total {m.synced_blocks}",
        "# HELP zoneledger_seconds_since_commit Seconds since this node last committed a block.",
        "# TYPE zoneledger_seconds_since_commit gauge",
        f"zoneledger_seconds_since_commit {time.monotonic() - m.last_commit_time:.3f}",
        "# HELP zoneledger_peer_up Whether the last message to a peer got through.",
        "# TYPE zoneledger_peer_up gauge",
    ]
    peer_stats = sorted(node.peers.stats().items())
    for index, stats in peer_stats:
        lines.append(f'zoneledger_peer_up{{validator="{index}"}} {1 if stats.up else 0}')
    inbound = getattr(node.peers, "inbound", None)
    if inbound is not None:  # a validator's peer streams (an observer has none)
        sent = (sum(s.frames for _, s in peer_stats), sum(s.sent for _, s in peer_stats), sum(s.bytes for _, s in peer_stats))
        lines += [
            "# HELP zoneledger_peer_frames_total Peer stream frames written (out) and read (in).",
            "# TYPE zoneledger_peer_frames_total counter",
            f'zoneledger_peer_frames_total{{direction="out"}} {sent[0]}',
            f'zoneledger_peer_frames_total{{direction="in"}} {inbound.frames}',
            "# HELP zoneledger_peer_items_total Messages, requests and replies in those frames.",
            "# TYPE zoneledger_peer_items_total counter",
            f'zoneledger_peer_items_total{{direction="out"}} {sent[1]}',
            f'zoneledger_peer_items_total{{direction="in"}} {inbound.items}',
            "# HELP zoneledger_peer_bytes_total Bytes of those frames.",
            "# TYPE zoneledger_peer_bytes_total counter",
            f'zoneledger_peer_bytes_total{{direction="out"}} {sent[2]}',
            f'zoneledger_peer_bytes_total{{direction="in"}} {inbound.bytes}',
            "# HELP zoneledger_peer_received_total Items read from peer streams, by kind.",
            "# TYPE zoneledger_peer_received_total counter",
        ]
        lines += [f'zoneledger_peer_received_total{{kind="{k}"}} {v}' for k, v in sorted(inbound.kinds.items())]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    lines += [
        "# HELP process_cpu_seconds_total User and system CPU time of the node process.",
        "# TYPE process_cpu_seconds_total counter",
        f"process_cpu_seconds_total {usage.ru_utime + usage.ru_stime:.3f}",
        "# HELP process_max_resident_memory_bytes Peak resident memory of the node process.",
        "# TYPE process_max_resident_memory_bytes gauge",
        f"process_max_resident_memory_bytes {usage.ru_maxrss * 1024}",
    ]
    lines += [
        "# HELP zoneledger_request_seconds HTTP request latency.",
        "# TYPE zoneledger_request_seconds summary",
    ]
    for route, samples in sorted(m.request_latency.items()):
        if samples:
            ordered = sorted(samples)
            for q in (0.5, 0.99):
                value = ordered[min(len(ordered) - 1, int(q * len(ordered)))]
                lines.append(f'zoneledger_request_seconds{{route="{route}",quantile="{q}"}} {value:.6f}')
            lines.append(f'zoneledger_request_seconds_count{{route="{route}"}} {len(samples)}')
    return "\n".join(lines) + "\n"

