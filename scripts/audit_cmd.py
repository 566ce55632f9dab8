"""``zoneledger audit``: replay a chain from genesis and check every rule (DESIGN §10).

Two sources: a running node through signed member requests (``--node URL --key
AUDITOR_KEY``, blocks fetched from ``GET /v1/blocks/{h}/raw``), or a stopped node's data
directory read directly (``--data-dir DIR``, which also yields its equivocation
evidence). Progress goes to stderr, a summary to stdout, the JSON report to
``--report``. Exit 0 when the chain passes, 1 on the first discrepancy (printed as one
block naming height, transaction, rule and the differing bytes).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from ledger.audit import AuditProgress, AuditReport, BlockSource, SourceBlock, StoreSource, audit_chain
from ledger.encoding import decode_cb, expect_map
from ledger.errors import EncodingError, LedgerError, NodeUnavailableError, NotFoundError, RequestError
from ledger.genesis import Genesis
from ledger.keys import SigningKey
from ledger.requests import sign_request


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("audit", help="replay the chain from genesis and check every rule")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--node", help="URL of a running node (needs --key, an auditor's or officer's key)")
    where.add_argument("--data-dir", type=Path, help="a stopped node's home, data directory or ledger store")
    parser.add_argument("--key", type=Path, help="PEM private key of a member (auditor) for --node")
    parser.add_argument("--genesis", type=Path, required=True, help="the genesis file the chain must start from")
    parser.add_argument("--report", type=Path, help="write the JSON report here")
    parser.add_argument("--workers", type=int, default=None, help="signature-checking processes (default: every core)")
    parser.set_defaults(func=run_audit)


class NodeSource:
    """A running node, read through signed member requests (``GET /v1/blocks/{h}/raw``).

    The head is the node's height when the audit starts; a live chain keeps growing, so
    blocks after it are not looked for.
    """

    def __init__(self, url: str, key: SigningKey, *, timeout: float = 30.0, transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = url.rstrip("/")
        self.base_path = urlsplit(self.base_url).path.rstrip("/")
        self.description = self.base_url
        self.key = key
        self.http = httpx.Client(timeout=timeout, transport=transport)
        self._status: dict[str, Any] | None = None

    def _get(self, path: str, *, signed: bool) -> httpx.Response:
        headers = {}
        if signed:
            headers = sign_request(
                self.key, "GET", self.base_path + path, "", b"", int(time.time() * 1000), node=self.node_id()
            )
        try:
            return self.http.get(self.base_url + path, headers=headers)
        except httpx.HTTPError as exc:
            raise NodeUnavailableError(f"cannot reach {self.base_url}: {exc or type(exc).__name__}") from exc

    def status(self) -> dict[str, Any]:
        if self._status is None:
            response = self._get("/v1/status", signed=False)
            if response.status_code != 200:
                raise NodeUnavailableError(f"GET /v1/status: expected 200, got {response.status_code}")
            self._status = response.json()
        return self._status

    def node_id(self) -> str:
        """The zone id the node answers for: its member requests are signed for it alone."""
        node = self.status().get("node")
        zone_id = node.get("zone_id") if isinstance(node, dict) else None
        if not isinstance(zone_id, str):
            raise NodeUnavailableError(f"GET /v1/status: expected node.zone_id from {self.base_url}, got none")
        return zone_id

    def claimed_head(self) -> tuple[int, bytes | None]:
        status = self.status()
        return int(status["height"]), bytes.fromhex(status["block_hash"])

    def genesis_hash(self) -> bytes | None:
        value = self.status().get("genesis_hash")
        return bytes.fromhex(value) if isinstance(value, str) else None

    def fetch(self, height: int) -> tuple[bytes, bytes | None] | None:
        """One block's stored bytes and certificate, or ``None`` when the node has no such block."""
        response = self._get(f"/v1/blocks/{height}/raw", signed=True)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            detail = _problem(response)
            raise RequestError(f"GET /v1/blocks/{height}/raw: expected 200, got {response.status_code} {detail}")
        try:
            m = expect_map(decode_cb(response.content), "raw block", frozenset({"block", "commit"}))
        except EncodingError as exc:
            raise RequestError(f"GET /v1/blocks/{height}/raw: expected cb({{block, commit}}), got {exc}") from exc
        block, commit = m["block"], m["commit"]
        if not isinstance(block, bytes) or not (commit is None or isinstance(commit, bytes)):
            raise RequestError(f"GET /v1/blocks/{height}/raw: expected bytes for block and commit")
        return block, commit

    def blocks(self) -> Iterator[tuple[int, SourceBlock, bytes | None]]:
        head, _ = self.claimed_head()
        for height in range(1, head + 1):
            found = self.fetch(height)
            if found is None:
                # A gap: the auditor reports the missing height when the next one arrives.
                continue
            yield height, found[0], found[1]

    def stored_header(self, height: int) -> bytes | None:
        return None

    def evidence(self) -> list[dict[str, Any]]:
        return []

    def close(self) -> None:
        self.http.close()


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return f"{body.get('type')}: {body.get('detail')}" if isinstance(body, dict) else ""


def open_source(args: argparse.Namespace) -> BlockSource:
    if args.node:
        if args.key is None:
            from scripts.usage import CliError

            raise CliError("--node needs --key (a member's private key, e.g. auditor.pem)")
        return NodeSource(args.node, SigningKey.load(args.key))
    if not args.data_dir.exists():
        raise NotFoundError(f"--data-dir: expected a node data directory, got missing {args.data_dir}")
    return StoreSource(args.data_dir)


def run_audit(args: argparse.Namespace) -> int:
    genesis = Genesis.load(args.genesis)
    source = open_source(args)

    def show(p: AuditProgress) -> None:
        eta = "?" if p.eta_s is None else f"{p.eta_s:,.0f} s"
        with contextlib.suppress(BrokenPipeError):
            print(
                f"\raudit: block {p.blocks_done:,}/{p.head:,}  {p.docs_per_s:,.0f} docs/s  ETA {eta}   ",
                end="", file=sys.stderr, flush=True,
            )

    try:
        report = audit_chain(source, genesis, workers=args.workers, progress=show)
    finally:
        source.close()
    print("", file=sys.stderr)
    write_report(report, args.report)
    for line in report.summary_lines():
        print(line)
    return 0 if report.passed else 1


def write_report(report: AuditReport, path: Path | None) -> None:
    if path is None:
        return
    try:
        path.write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise LedgerError(f"--report: cannot write {path}: {exc.strerror}") from exc
