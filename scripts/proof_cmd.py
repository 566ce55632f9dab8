"""The trader's and monitor's command line: ``zoneledger proof | verify | watch``.

``verify`` never trusts a node's verdict: it hashes the copy locally, fetches (or reads)
a proof bundle and checks that bundle itself against the genesis file with
:func:`ledger.proofs.verify_bundle`. ``watch`` is a log monitor: it checks each
checkpoint's commit against genesis and that the log only ever grows (RFC 9162
consistency), and raises a loud alert on a rollback, a split view or a bad proof.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from ledger.encoding import H, compute_doc_hash, parse_json
from ledger.errors import (
    CheckpointRollbackError,
    LedgerError,
    NodeUnavailableError,
    ProofError,
    SplitViewError,
)
from ledger.genesis import Genesis
from ledger.limits import MAX_VERIFY_UPLOAD_BYTES
from ledger.merkle import verify_consistency
from ledger.proofs import Verification, verify_bundle, verify_checkpoint
from scripts.client_cmd import (
    DEFAULT_TIMEOUT_SECONDS,
    NODE_ENV,
    NodeClient,
    RemoteProblemError,
    load_key,
    reports_problems,
)

EXIT_CODES = {"valid": 0, "amended": 10, "revoked": 11, "tampered": 12, "unknown": 13, "unsound": 14}
EXIT_ALERT = 3
VERIFY_EPILOG = """exit codes: 0 valid, 10 amended (an older version), 11 revoked, 12 tampered
(a registered document with this number differs), 13 unknown (nothing registered matches),
14 unsound (the proof does not verify against genesis); 1 or 2 for any other failure."""


def _cli_error(message: str) -> Exception:
    from scripts.usage import CliError  # late import: scripts.cli imports this module

    return CliError(message)


# --- the copy ------------------------------------------------------------------------


def read_copy(path: str) -> tuple[bytes, Any | None]:
    """The file's bytes and, when they are a JSON object under the document rules, the document."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise _cli_error(f"cannot read {path}: {exc.strerror}") from exc
    try:
        parsed = parse_json(data)
    except LedgerError:
        return data, None  # not a JSON document: a file such as a PDF, hashed as bytes
    return data, parsed if isinstance(parsed, dict) else None


def compute_copy_hashes(data: bytes, document: Any | None) -> list[bytes]:
    """Hashes the copy may be registered under, best first: its JCS hash, then its file hash."""
    hashes = [compute_doc_hash(document)] if document is not None else []
    if H(data) not in hashes:
        hashes.append(H(data))
    return hashes


def verify_copy(bundle: Any, genesis: Genesis, hashes: list[bytes]) -> Verification:
    """Verify under each candidate hash; the first that matches a registered version wins."""
    results = [verify_bundle(bundle, genesis, copy_hash=h) for h in hashes]
    return next((r for r in results if r.matched is not None), results[0])


def load_genesis(path: str | None) -> Genesis:
    if not path:
        raise _cli_error("--genesis: required; a proof is checked against the genesis file you trust, never the node")
    return Genesis.load(path)


def read_bundle_file(path: str) -> Any:
    try:
        value = parse_json(Path(path).read_bytes())
    except OSError as exc:
        raise _cli_error(f"cannot read bundle {path}: {exc.strerror}") from exc
    # Accept a saved /v1/verify answer as well as a bare bundle.
    if isinstance(value, dict) and "format" not in value and isinstance(value.get("bundle"), dict):
        return value["bundle"]
    return value


def post_verify(client: NodeClient, data: bytes, name: str) -> dict[str, Any]:
    """``POST /v1/verify`` with the file as multipart (the node tries it as a document too);
    a file bigger than the node takes as an upload can only be an attachment, so it is
    looked up by its hash instead."""
    try:
        if len(data) > MAX_VERIFY_UPLOAD_BYTES:
            response = client._http.post(
                client.base_url + "/v1/verify", json={"hash": H(data).hex()}, headers={"Accept": "application/json"},
            )
        else:
            response = client._http.post(
                client.base_url + "/v1/verify", files={"file": (os.path.basename(name), data)},
                headers={"Accept": "application/json"},
            )
    except httpx.HTTPError as exc:
        raise NodeUnavailableError(f"cannot reach {client.base_url}: {str(exc) or type(exc).__name__}") from exc
    value = client._read(response)
    if not isinstance(value, dict) or "verdict" not in value:
        raise NodeUnavailableError(f"expected a verification answer from {client.base_url}, got {value!r:.80}")
    return value


# --- printing --------------------------------------------------------------------------


def format_time(time_ms: int | None) -> str:
    if time_ms is None:
        return "unknown"
    return datetime.fromtimestamp(time_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def print_verification(result: Verification, out: Any) -> None:
    for check in result.checks:
        mark = "✓" if check.ok else "✗"
        print(f"{mark} {check.code:<10} {check.detail}", file=out)
    if result.doc_id:
        print(f"document   {result.doc_id} ({result.doc_type or 'unknown type'}), current version {result.version}",
              file=out)
    if result.zone_id:
        print(f"zone       {result.zone_id} ({result.zone_name or 'not in genesis'})", file=out)
    if result.signer:
        listed = "an officer listed in genesis" if result.signer_in_genesis else "registered after genesis"
        print(f"officer    {result.signer} ({listed})", file=out)
    if result.height is not None:
        print(f"committed  block {result.height} at {format_time(result.commit_time_ms)}", file=out)
    if result.signing_validators:
        names = ", ".join(f"{v.zone_id} (#{v.index})" for v in result.signing_validators)
        print(f"signed by  {names}", file=out)
    for entry in result.timeline:
        reason = f": {entry.reason}" if entry.reason else ""
        print(f"timeline   {entry.kind} v{entry.version} {entry.doc_hash[:16]}… (log entry {entry.log_index}){reason}",
              file=out)
    if result.revocation_reason:
        print(f"revoked    {result.revocation_reason}", file=out)
    print(f"verdict: {result.verdict}", file=out)


# --- commands ----------------------------------------------------------------------------


def _client(args: argparse.Namespace) -> NodeClient:
    if not args.node:
        raise _cli_error(f"--node: expected the node's URL (or ${NODE_ENV}), got nothing")
    return NodeClient(args.node, timeout=args.timeout)


def _parse_hash_arg(value: str) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise _cli_error(f"--hash: expected 64 hex characters, got {value!r:.80}")
    return raw


@reports_problems
def run_proof(args: argparse.Namespace) -> int:
    with _client(args) as client:
        if args.hash:
            _, bundle = client.request("GET", f"/v1/proofs/{_parse_hash_arg(args.hash).hex()}")
        elif args.target and Path(args.target).is_file():
            data, _ = read_copy(args.target)
            answer = post_verify(client, data, args.target)
            bundle = answer.get("bundle")
            if bundle is None:
                raise RemoteProblemError("request.not_found", f"no registered document matches {args.target}", 404)
        elif args.target and "/" in args.target:
            if not args.key:
                raise _cli_error("DOC_ID: reading a document's current version is a member request; pass --key")
            record = client.get_document(args.target, load_key(args))
            _, bundle = client.request("GET", f"/v1/proofs/{record.get('doc_hash')}")
        else:
            raise _cli_error(f"expected a FILE, a DOC_ID or --hash, got {args.target!r}")
    text = json.dumps(bundle, indent=2, ensure_ascii=False) + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"bundle written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


@reports_problems
def run_verify(args: argparse.Namespace) -> int:
    genesis = load_genesis(args.genesis)
    data, document = read_copy(args.file)
    hashes = compute_copy_hashes(data, document)
    if args.offline:
        bundle = read_bundle_file(args.offline)
    else:
        with _client(args) as client:
            answer = post_verify(client, data, args.file)
        bundle = answer.get("bundle")
        if bundle is None:
            # Nothing registered matches: there is no proof to check, only the node's word.
            if args.json:
                print(json.dumps({"verdict": "unknown", "document_hash": hashes[0].hex(), "checks": []}, indent=2))
            else:
                print(f"no registered document matches {args.file} (hash {hashes[0].hex()})")
                print("verdict: unknown")
            return EXIT_CODES["unknown"]
    result = verify_copy(bundle, genesis, hashes)
    if args.json:
        print(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    else:
        print_verification(result, sys.stdout)
    return EXIT_CODES[result.verdict]


# --- watch ------------------------------------------------------------------------------


def load_state(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _cli_error(f"cannot read state {path}: {exc}") from exc
    if not isinstance(value, dict) or not {"height", "block_hash", "log_size", "log_root"} <= value.keys():
        raise _cli_error(f"state {path}: expected a saved checkpoint")
    return value


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write-then-rename, so a crash never leaves a half-written checkpoint to compare against."""
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def check_once(client: NodeClient, genesis: Genesis, previous: dict[str, Any] | None) -> dict[str, Any]:
    """Fetch and check one checkpoint against genesis and the remembered one; the new state."""
    _, checkpoint = client.request("GET", "/v1/checkpoint")
    header = verify_checkpoint(checkpoint, genesis)
    state = {
        "height": header.height, "block_hash": header.block_hash.hex(), "log_size": header.log_size,
        "log_root": header.log_root.hex(), "time_ms": header.time_ms,
    }
    if previous is None:
        return state
    old_height, old_size = int(previous["height"]), int(previous["log_size"])
    old_root = bytes.fromhex(previous["log_root"])
    if header.height < old_height or header.log_size < old_size:
        raise CheckpointRollbackError(
            f"expected height >= {old_height} and log size >= {old_size}, got height {header.height} "
            f"and log size {header.log_size}"
        )
    if header.height == old_height and header.block_hash.hex() != previous["block_hash"]:
        raise SplitViewError(
            f"expected block {previous['block_hash']} at height {old_height}, got {header.block_hash.hex()}"
        )
    if old_size > 0:
        proof: list[bytes] = []
        if old_size < header.log_size:
            _, answer = client.request("GET", "/v1/consistency", query=f"from={old_size}&to={header.log_size}")
            if not isinstance(answer, dict) or not isinstance(answer.get("proof"), list):
                raise NodeUnavailableError(f"expected a consistency proof from {client.base_url}, got {answer!r:.80}")
            try:
                proof = [bytes.fromhex(p) for p in answer["proof"]]
            except (TypeError, ValueError) as exc:
                raise NodeUnavailableError(f"expected hex hashes in the consistency proof, got {exc}") from exc
        verify_consistency(old_size, header.log_size, proof, old_root, header.log_root)
    return state


def run_watch(args: argparse.Namespace) -> int:
    genesis = load_genesis(args.genesis)
    state_path = Path(args.state)
    with _client(args) as client:
        while True:
            previous = load_state(state_path)
            try:
                state = check_once(client, genesis, previous)
            except (ProofError, LedgerError) as exc:
                if isinstance(exc, NodeUnavailableError):
                    print(f"zoneledger: watch: {exc.one_line()}", file=sys.stderr)
                    if args.once:
                        return 1
                    time.sleep(args.interval)
                    continue
                print(f"ALERT: node {args.node} cannot be trusted: {exc.one_line()}", file=sys.stderr)
                return EXIT_ALERT
            except RemoteProblemError as exc:
                print(f"zoneledger: watch: {exc.type}: {exc.detail}", file=sys.stderr)
                if args.once:
                    return 1
                time.sleep(args.interval)
                continue
            save_state(state_path, state)
            print(f"ok: height {state['height']}, log size {state['log_size']}, block {state['block_hash'][:16]}…")
            if args.once:
                return 0
            time.sleep(args.interval)


def _add_node_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--node", default=os.environ.get(NODE_ENV), metavar="URL",
                        help=f"the node's base URL (default: ${NODE_ENV})")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS, metavar="S",
                        help="HTTP timeout in seconds")


def register(subparsers: Any) -> None:
    proof = subparsers.add_parser(
        "proof", help="fetch a document's proof bundle and save it for offline verification",
        description="Fetch the proof bundle of a FILE you hold (a JSON document or any registered file), "
                    "of a DOC_ID (member request: --key), or of --hash HEX.",
    )
    proof.add_argument("target", nargs="?", metavar="DOC_ID|FILE")
    proof.add_argument("--hash", metavar="HEX", help="a document hash of any version or an attachment's sha256")
    proof.add_argument("--out", metavar="FILE", help="write the bundle here (default: stdout)")
    proof.add_argument("--key", metavar="PEM", help="member key, to look up a DOC_ID's current version")
    proof.add_argument("--passphrase-env", metavar="VAR", help="environment variable holding the key's passphrase")
    _add_node_arguments(proof)
    proof.set_defaults(func=run_proof)

    verify = subparsers.add_parser(
        "verify", help="verify a copy you hold against the ledger, trusting only the genesis file",
        description="Hash FILE locally (JCS for a JSON document, SHA-256 for any other file), get its proof "
                    "bundle from --node or from --offline BUNDLE, and verify the bundle against --genesis.",
        epilog=VERIFY_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verify.add_argument("file", metavar="FILE", help="the copy you hold: a JSON document or a file such as a PDF")
    verify.add_argument("--genesis", metavar="G", help="the genesis file you trust (required)")
    verify.add_argument("--offline", metavar="BUNDLE", help="verify this saved bundle; no network")
    verify.add_argument("--json", action="store_true", help="print the verification as JSON")
    _add_node_arguments(verify)
    verify.set_defaults(func=run_verify)

    watch = subparsers.add_parser(
        "watch", help="monitor a node: commits against genesis, and a log that only grows",
        description="Fetch /v1/checkpoint, verify its commit against genesis and, against the checkpoint in "
                    "--state, that the log grew consistently (RFC 9162). A rollback, a split view or a bad "
                    "proof prints an ALERT line on stderr and exits 3.",
    )
    watch.add_argument("--genesis", metavar="G", help="the genesis file you trust (required)")
    watch.add_argument("--state", required=True, metavar="FILE", help="where the last good checkpoint is kept")
    watch.add_argument("--interval", type=float, default=10.0, metavar="S", help="seconds between polls")
    watch.add_argument("--once", action="store_true", help="check once and exit (0 ok, 3 alert)")
    _add_node_arguments(watch)
    watch.set_defaults(func=run_watch)
