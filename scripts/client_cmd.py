"""The officer's command line against a node's HTTP API (DESIGN §10, §11).

Owns ``zoneledger submit | amend | revoke | doc get | status``: reading and checking a
document locally, building and signing its transaction, signing member requests
(:mod:`ledger.requests`) and talking HTTP to one node through :class:`NodeClient`.

Failures are one line and a non-zero exit, in three kinds:

* a local rule (document schema, key file, ...) is a ``LedgerError``, printed by
  ``scripts.cli`` as ``zoneledger: <code>: <message>``, exit 1;
* the node's refusal (problem+json) is printed as ``zoneledger: <type>: <detail>``,
  exit 1;
* a node that cannot be reached is ``node.unavailable`` (httpx errors are translated
  once, in :meth:`NodeClient.request`), exit 1.

``submit --wait`` asks the node to hold the answer until the transaction is final
(``?wait=N``); if it is still pending when the node answers, the command says so and
exits 3, so scripts can tell "sent" from "final".
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from ledger.documents import document_number, validate_document
from ledger.encoding import H, compute_doc_hash, parse_json
from ledger.errors import (
    DocIdMismatchError,
    DocumentJsonError,
    DocumentRevokedError,
    LedgerError,
    NodeUnavailableError,
)
from ledger.keys import SigningKey
from ledger.requests import sign_request
from ledger.transactions import Attachment, DocAmend, DocIssue, DocRevoke, Transaction, split_doc_id
from scripts.keys_cmd import read_passphrase

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_NOT_FINAL = 3
DEFAULT_WAIT_SECONDS = 30
DEFAULT_TIMEOUT_SECONDS = 10.0
NODE_ENV = "ZONELEDGER_NODE"
# Characters of a document number that may stay literal in a URL path; anything else
# (?, #, %, spaces, ...) is percent-encoded. The signature covers the decoded path.
_PATH_SAFE = "/-._~!$&'()*+,;=:@"


class RemoteProblemError(Exception):
    """The node refused a request with an RFC 9457 problem; printed as ``type: detail``."""

    def __init__(self, type_: str, detail: str, status: int) -> None:
        super().__init__(f"{type_}: {detail}")
        self.type = type_
        self.detail = detail
        self.status = status


def _cli_error(message: str) -> Exception:
    from scripts.usage import CliError  # late import: scripts.cli imports this module

    return CliError(message)


# --- the node ------------------------------------------------------------------


class NodeClient:
    """One node's HTTP API: JSON in and out, member requests signed, errors translated."""

    def __init__(self, base_url: str, *, timeout: float = DEFAULT_TIMEOUT_SECONDS,
                 transport: httpx.BaseTransport | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise _cli_error(f"--node: expected an http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        # A node behind a path prefix sees that prefix in its request path, and signs over it.
        self.base_path = parts.path.rstrip("/")
        self.timeout = timeout
        self._http = httpx.Client(timeout=timeout, transport=transport)
        self._node_id: str | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> NodeClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def request(
        self, method: str, path: str, *, query: str = "", body: Any = None, key: SigningKey | None = None,
        timeout: float | None = None,
    ) -> tuple[int, Any]:
        """Send one request; return (status, JSON) for 2xx, raise for anything else."""
        content = b"" if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        full_path = self.base_path + path
        if key is not None:
            headers.update(
                sign_request(key, method, full_path, query, content, int(time.time() * 1000), node=self.node_id())
            )
        url = self.base_url + quote(path, safe=_PATH_SAFE) + (f"?{query}" if query else "")
        try:
            response = self._http.request(
                method, url, content=content or None, headers=headers,
                timeout=self.timeout if timeout is None else timeout,
            )
        except httpx.TimeoutException as exc:
            raise NodeUnavailableError(f"expected an answer from {self.base_url}, got none in time") from exc
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            raise NodeUnavailableError(f"cannot reach {self.base_url}: {reason}") from exc
        return response.status_code, self._read(response)

    def _read(self, response: httpx.Response) -> Any:
        try:
            value = response.json()
        except ValueError:
            value = None
        if response.is_success:
            if value is None and response.content:
                raise NodeUnavailableError(f"expected JSON from {self.base_url}, got {response.headers.get('content-type')}")
            return value
        if isinstance(value, dict) and isinstance(value.get("type"), str):
            detail = value.get("detail")
            raise RemoteProblemError(value["type"], str(detail if detail is not None else value.get("title", "")),
                                response.status_code)
        # Not a problem document (a proxy's error page, say): name the status only.
        type_ = "node.unavailable" if response.status_code >= 500 else "request.invalid"
        raise RemoteProblemError(type_, f"HTTP {response.status_code} from {self.base_url}", response.status_code)

    # --- endpoints ---

    def get_status(self) -> dict[str, Any]:
        _, value = self.request("GET", "/v1/status")
        if not isinstance(value, dict) or not isinstance(value.get("chain_id"), str):
            raise NodeUnavailableError(f"expected a status with a chain_id from {self.base_url}, got {type(value).__name__}")
        return value

    def node_id(self) -> str:
        """The zone id this node answers for (``node.zone_id`` in its status): member
        requests are signed for it, so they are good at this node only. Asked once."""
        if self._node_id is None:
            node = self.get_status().get("node")
            zone_id = node.get("zone_id") if isinstance(node, dict) else None
            if not isinstance(zone_id, str):
                raise NodeUnavailableError(f"expected node.zone_id in the status of {self.base_url}, got none")
            self._node_id = zone_id
        return self._node_id

    def get_document(self, doc_id: str, key: SigningKey) -> dict[str, Any]:
        _, value = self.request("GET", f"/v1/documents/{doc_id}", key=key)
        if not isinstance(value, dict):
            raise NodeUnavailableError(f"expected a document record from {self.base_url}, got {type(value).__name__}")
        return value

    def post_transaction(self, envelope: bytes, document: Any, wait_seconds: int | None) -> tuple[int, dict[str, Any]]:
        query = f"wait={wait_seconds}" if wait_seconds else ""
        # The HTTP timeout must outlast the node's own wait.
        timeout = self.timeout + (wait_seconds or 0)
        status, value = self.request(
            "POST", "/v1/transactions", query=query, body={"envelope": envelope.hex(), "document": document},
            timeout=timeout,
        )
        if not isinstance(value, dict) or not isinstance(value.get("tx_hash"), str):
            raise NodeUnavailableError(f"expected a tx_hash from {self.base_url}, got {value!r:.80}")
        return status, value


# --- local steps ------------------------------------------------------------------


def load_key(args: argparse.Namespace) -> SigningKey:
    return SigningKey.load(args.key, read_passphrase(args.passphrase_env))


def read_document(path: str) -> Any:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise _cli_error(f"cannot read document {path}: {exc.strerror}") from exc
    try:
        return parse_json(data)
    except LedgerError as exc:
        raise DocumentJsonError(f"{path}: {exc}") from exc


def read_attachments(paths: list[str]) -> tuple[Attachment, ...]:
    attachments = []
    for name in paths:
        try:
            data = Path(name).read_bytes()
        except OSError as exc:
            raise _cli_error(f"cannot read attachment {name}: {exc.strerror}") from exc
        media_type, _ = mimetypes.guess_type(name, strict=False)
        attachments.append(Attachment(os.path.basename(name), media_type or "application/octet-stream", H(data), len(data)))
    return tuple(attachments)


def find_zone(status: dict[str, Any], public: bytes) -> str:
    """The zone whose officers include ``public``, from the node's status."""
    zones = status.get("zones")
    if not isinstance(zones, list):
        raise _cli_error("the node's status lists no zones; pass --zone")
    hex_key = public.hex()
    for zone in zones:
        if isinstance(zone, dict) and hex_key in (zone.get("officers") or []):
            zone_id = zone.get("zone_id")
            if isinstance(zone_id, str):
                return zone_id
    raise _cli_error(f"key {hex_key[:16]}… is not an officer of any zone on this node; pass --zone")


def parse_hash(value: Any, what: str) -> bytes:
    if isinstance(value, str) and len(value) == 64:
        try:
            return bytes.fromhex(value)
        except ValueError:
            pass
    raise NodeUnavailableError(f"{what}: expected 64 hex characters from the node, got {value!r:.80}")


def current_version(client: NodeClient, doc_id: str, key: SigningKey) -> tuple[bytes, str]:
    """The document's current ``doc_hash`` and ``doc_type``; refuses a revoked one."""
    record = client.get_document(doc_id, key)
    if record.get("status") == "revoked":
        raise DocumentRevokedError(f"expected an active document, got {doc_id} revoked")
    doc_type = record.get("doc_type")
    if not isinstance(doc_type, str):
        raise NodeUnavailableError(f"doc_type: expected text from the node, got {doc_type!r:.80}")
    return parse_hash(record.get("doc_hash"), "doc_hash"), doc_type


@contextmanager
def progress(label: str, stream: Any = None) -> Iterator[None]:
    """Show ``label… N s`` on stderr while the block runs (one line when not a terminal)."""
    out = stream if stream is not None else sys.stderr
    if not getattr(out, "isatty", lambda: False)():
        print(f"{label}…", file=out, flush=True)
        yield
        return
    done = threading.Event()
    started = time.monotonic()

    def tick() -> None:
        while not done.wait(1.0):
            print(f"\r{label}… {int(time.monotonic() - started)} s", end="", file=out, flush=True)

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        print(file=out, flush=True)


def send(client: NodeClient, key: SigningKey, chain_id: str, body: DocIssue | DocAmend | DocRevoke,
         document: Any, args: argparse.Namespace) -> int:
    """Sign ``body``, post it with its document, and report the outcome."""
    # The nonce only has to make this transaction distinct; time in ms does.
    envelope = Transaction(chain_id, key.public, int(time.time() * 1000), body).sign(key)
    wait_seconds = args.wait_seconds if args.wait else None
    if wait_seconds:
        with progress("waiting for finality"):
            status, answer = client.post_transaction(envelope.encode(), document, wait_seconds)
    else:
        status, answer = client.post_transaction(envelope.encode(), document, None)
    print(f"doc_id   {body.doc_id}")
    print(f"tx_hash  {answer['tx_hash']}")
    state = answer.get("status", "pending" if status == 202 else "unknown")
    if state == "committed":
        print(f"status   committed at height {answer.get('height')} (log index {answer.get('log_index')})")
        return EXIT_OK
    print(f"status   {state}")
    if args.wait:
        print(f"zoneledger: not final after {wait_seconds} s; the transaction is {state}", file=sys.stderr)
        return EXIT_NOT_FINAL
    return EXIT_OK


# --- commands -----------------------------------------------------------------------


def reports_problems(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Print a node's problem+json as ``zoneledger: type: detail`` and exit 1."""

    def wrapper(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except RemoteProblemError as exc:
            print(f"zoneledger: {exc.type}: {exc.detail}".replace("\n", " "), file=sys.stderr)
            return EXIT_FAILED

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


def _client(args: argparse.Namespace) -> NodeClient:
    if not args.node:
        raise _cli_error(f"--node: expected the node's URL (or ${NODE_ENV}), got nothing")
    return NodeClient(args.node, timeout=args.timeout)


@reports_problems
def run_submit(args: argparse.Namespace) -> int:
    document = read_document(args.file)
    validate_document(args.type, document)
    number = document_number(args.type, document)
    attachments = read_attachments(args.attach)
    key = load_key(args)
    with _client(args) as client:
        status = client.get_status()
        zone_id = args.zone or find_zone(status, key.public)
        doc_id = f"{zone_id}/{number}"
        split_doc_id(doc_id)
        body = DocIssue(args.type, doc_id, compute_doc_hash(document), attachments)
        return send(client, key, status["chain_id"], body, document, args)


@reports_problems
def run_amend(args: argparse.Namespace) -> int:
    _, number = split_doc_id(args.doc_id)
    document = read_document(args.file)
    attachments = read_attachments(args.attach)
    key = load_key(args)
    with _client(args) as client:
        status = client.get_status()
        supersedes, doc_type = current_version(client, args.doc_id, key)
        validate_document(doc_type, document)
        own_number = document_number(doc_type, document)
        if own_number != number:
            raise DocIdMismatchError(f"expected the document's number to be {number!r}, got {own_number!r}")
        body = DocAmend(args.doc_id, compute_doc_hash(document), supersedes, args.reason, attachments)
        return send(client, key, status["chain_id"], body, document, args)


@reports_problems
def run_revoke(args: argparse.Namespace) -> int:
    split_doc_id(args.doc_id)
    key = load_key(args)
    with _client(args) as client:
        status = client.get_status()
        current, _ = current_version(client, args.doc_id, key)
        body = DocRevoke(args.doc_id, current, args.reason)
        return send(client, key, status["chain_id"], body, None, args)


@reports_problems
def run_doc_get(args: argparse.Namespace) -> int:
    split_doc_id(args.doc_id)
    key = load_key(args)
    with _client(args) as client:
        record = client.get_document(args.doc_id, key)
    print(json.dumps(record, indent=2, ensure_ascii=False, sort_keys=True))
    return EXIT_OK


@reports_problems
def run_status(args: argparse.Namespace) -> int:
    with _client(args) as client:
        status = client.get_status()
    if args.json:
        print(json.dumps(status, indent=2, ensure_ascii=False, sort_keys=True))
        return EXIT_OK
    print(f"chain     {status['chain_id']}")
    print(f"height    {status.get('height')}  round {status.get('round')}")
    if status.get("block_hash"):
        print(f"block     {status['block_hash']}")
    validators = status.get("validators")
    if isinstance(validators, list):
        print(f"validators {len(validators)}")
    if "mempool_size" in status:
        print(f"mempool   {status['mempool_size']}")
    zones = status.get("zones")
    if isinstance(zones, list):
        names = [str(z.get("zone_id")) for z in zones if isinstance(z, dict)]
        print(f"zones     {', '.join(names)}")
    return EXIT_OK


def _add_node_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--node", default=os.environ.get(NODE_ENV), metavar="URL",
                        help=f"the node's base URL (default: ${NODE_ENV})")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS, metavar="S",
                        help="HTTP timeout in seconds")


def _add_key_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key", required=True, metavar="PEM", help="the officer's private key file")
    parser.add_argument("--passphrase-env", metavar="VAR", help="environment variable holding the key's passphrase")


def _add_wait_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait", action="store_true", help="wait until the transaction is final")
    parser.add_argument("--wait-seconds", type=int, default=DEFAULT_WAIT_SECONDS, metavar="S",
                        help=f"how long the node holds the answer with --wait (default {DEFAULT_WAIT_SECONDS})")


def register(subparsers: Any) -> None:
    submit = subparsers.add_parser("submit", help="sign and send a new document")
    submit.add_argument("file", metavar="FILE", help="the document, JSON")
    submit.add_argument("--type", required=True, metavar="T", help="document type, e.g. certificate_of_origin")
    submit.add_argument("--zone", metavar="ZONE", help="issuing zone (default: the zone the key is an officer of)")
    submit.add_argument("--attach", action="append", default=[], metavar="FILE", help="a file to register with it")
    _add_key_arguments(submit)
    _add_node_arguments(submit)
    _add_wait_arguments(submit)
    submit.set_defaults(func=run_submit)

    amend = subparsers.add_parser("amend", help="replace a document with a new version")
    amend.add_argument("doc_id", metavar="DOC_ID")
    amend.add_argument("file", metavar="FILE", help="the new version, JSON")
    amend.add_argument("--reason", required=True)
    amend.add_argument("--attach", action="append", default=[], metavar="FILE")
    _add_key_arguments(amend)
    _add_node_arguments(amend)
    _add_wait_arguments(amend)
    amend.set_defaults(func=run_amend)

    revoke = subparsers.add_parser("revoke", help="revoke a document")
    revoke.add_argument("doc_id", metavar="DOC_ID")
    revoke.add_argument("--reason", required=True)
    _add_key_arguments(revoke)
    _add_node_arguments(revoke)
    _add_wait_arguments(revoke)
    revoke.set_defaults(func=run_revoke)

    doc = subparsers.add_parser("doc", help="read documents (member request)")
    doc_actions = doc.add_subparsers(dest="doc_command", metavar="ACTION", required=True)
    get = doc_actions.add_parser("get", help="print a document's current record")
    get.add_argument("doc_id", metavar="DOC_ID")
    _add_key_arguments(get)
    _add_node_arguments(get)
    get.set_defaults(func=run_doc_get)

    status = subparsers.add_parser("status", help="print a node's status")
    status.add_argument("--json", action="store_true", help="print the raw JSON")
    _add_node_arguments(status)
    status.set_defaults(func=run_status)
