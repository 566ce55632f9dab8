"""The auditor's replay: re-check a whole chain from genesis, rule by rule.

:func:`audit_chain` reads every block and its stored commit certificate from a
:class:`BlockSource` and replays them into a fresh in-memory chain, so every rule the
validators applied is applied again by code the auditor runs:

1. the source: blocks 1..head with no gap and nothing after the claimed head, each
   with a stored certificate (and, from a store, a stored header equal to the block's);
2. the block: canonical bytes; then :func:`~ledger.transition.execute_block` — chain id,
   height, link, proposer ``(h + round) mod n``, validator hashes, time order, the
   ``last_commit`` of the previous block, every transaction (encoding, chain id, replay,
   signature, authorization, document hash, canonical JSON, schema, amendment and
   revocation rules) and the recomputed ``log_size``, ``log_root`` and ``state_root``;
3. the block's own stored certificate (:func:`~ledger.blocks.validate_commit`), and that
   the certificate stored for h is the canonical one, carried by block h+1;
4. the claimed head hash is the replayed head's.

Every Ed25519 signature (transactions and precommits) of a window of upcoming blocks is
verified in a process pool first, with the stateless checks of each issued document
(hash, canonical JSON, schema, number); the main process is told which passed
(``verified``/``verified_precommits``) and checks only those that did not, in order,
so a bad signature or document is still reported exactly where the rules meet it.

The first discrepancy stops the replay; the report then carries an
:class:`AuditFailure` naming the height, the transaction index, the rule (the error
code) and the bytes that differ. I/O here is LevelDB only (:class:`StoreSource`); a
source that reads a node over HTTP lives with the command (``scripts/audit_cmd.py``).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ledger.blocks import Block, CommitCertificate, compute_signature_digest
from ledger.chain import (
    KEY_GENESIS,
    KEY_HEAD,
    Chain,
    StoredBlock,
    key_commit,
    key_header,
    validate_store_format,
)
from ledger.encoding import H
from ledger.errors import (
    AuditCommitMismatchError,
    AuditError,
    AuditExtraBlockError,
    AuditGenesisMismatchError,
    AuditHeaderMismatchError,
    AuditHeadMismatchError,
    AuditMissingBlockError,
    AuditMissingCommitError,
    CommitSignatureError,
    LedgerError,
    SignatureInvalidError,
    StoreCorruptError,
    StoreError,
    StoreFormatError,
)
from ledger.genesis import Genesis
from ledger.keys import verify_bytes
from ledger.store import LevelDBStore, MemoryStore, WriteBatch
from ledger.transactions import (
    DocAmend,
    DocIssue,
    DocRevoke,
    Envelope,
    OfficerRegister,
    OfficerRevoke,
    remember_verified_envelope,
)
from ledger.transition import commit_block, execute_block, validate_content

CHUNK_SIZE = 300
"""Signatures per task sent to a worker: big enough to amortise the hand-off."""
LOOKAHEAD_CHUNKS = 3
"""Chunks per worker kept in flight ahead of execution, so workers never wait on the main process."""
PROGRESS_INTERVAL_S = 0.5


# --- sources ---------------------------------------------------------------


SourceBlock = bytes | Block | LedgerError
"""A block as a source gives it: wire bytes to decode, a block a store put back together,
or the reason the source could not produce it (reported at that height)."""


class BlockSource(Protocol):
    """Where the blocks come from: yields ``(height, block, commit_bytes)`` in order."""

    description: str
    """Shown in the report (a path or a URL)."""

    def claimed_head(self) -> tuple[int, bytes | None]:
        """The head height the source claims, and its block hash when known."""
        ...

    def genesis_hash(self) -> bytes | None:
        """The genesis hash the source records, when it records one."""
        ...

    def blocks(self) -> Iterator[tuple[int, SourceBlock, bytes | None]]:
        """Every stored block in height order (including any after the claimed head)."""
        ...

    def stored_header(self, height: int) -> bytes | None:
        """The separately stored header of ``height``, when the source keeps one."""
        ...

    def evidence(self) -> list[dict[str, Any]]:
        """Equivocation evidence the node recorded (none from the chain itself)."""
        ...

    def close(self) -> None: ...


class StoreSource:
    """A stopped node's LevelDB, read directly: a data dir (``<dir>/ledger``) or the store itself."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        root = Path(path)
        # A node's home (as the devnet lays it out), its data directory, or the store.
        data_dir = next((d for d in (root / "data", root) if (d / "ledger").is_dir()), None)
        if data_dir is not None:
            self.store_path = data_dir / "ledger"
            # The node's evidence log (node/evidence.py), then the file nodes wrote before it.
            self.evidence_paths = [data_dir / "evidence" / "evidence.jsonl", data_dir / "evidence.jsonl"]
        elif (root / "CURRENT").is_file():
            self.store_path = root
            self.evidence_paths = []
        else:
            raise StoreError(
                f"{root}: expected a stopped node's data directory (holding ledger/) or its ledger store, "
                "got neither"
            )
        self.description = str(self.store_path)
        self.store = LevelDBStore(self.store_path, create=False)
        if self.store.get(KEY_GENESIS) is not None:
            try:
                validate_store_format(self.store)
            except StoreFormatError:
                self.store.close()
                raise

    def claimed_head(self) -> tuple[int, bytes | None]:
        raw = self.store.get(KEY_HEAD)
        if raw is None:
            return 0, None
        import msgpack

        try:
            head = msgpack.unpackb(raw, raw=False)
            return int(head["height"]), bytes(head["block_hash"])
        except Exception as exc:  # any undecodable head record is store corruption
            raise StoreCorruptError(f"m/head: expected a head record, got undecodable bytes: {exc}") from exc

    def genesis_hash(self) -> bytes | None:
        return self.store.get(KEY_GENESIS)

    def blocks(self) -> Iterator[tuple[int, SourceBlock, bytes | None]]:
        for key, value in self.store.iterate(b"b/"):
            height = int.from_bytes(key[2:], "big")
            block: SourceBlock
            try:
                block = StoredBlock.decode(value, height).assemble(self.store)
            except LedgerError as exc:
                block = exc
            yield height, block, self.store.get(key_commit(height))

    def stored_header(self, height: int) -> bytes | None:
        return self.store.get(key_header(height))

    def evidence(self) -> list[dict[str, Any]]:
        return [entry for path in self.evidence_paths for entry in read_evidence(path)]

    def close(self) -> None:
        self.store.close()


def read_evidence(path: Path) -> list[dict[str, Any]]:
    """The node's ``evidence.jsonl``: one JSON object per line; unreadable lines kept as text."""
    if not path.exists():
        return []
    out: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            value = {"unparsed": line}
        out.append(value if isinstance(value, dict) else {"value": value})
    return out


class ReplayStore(MemoryStore):
    """The auditor's in-memory store. Block bytes and document contents are not kept: no rule
    reads them back (the source still has them), and a long chain would otherwise sit in RAM."""

    _DROPPED = (b"b/", b"x/")

    def write(self, batch: WriteBatch, *, sync: bool = True) -> None:
        for key, value in batch.ops.items():
            if key[:2] in self._DROPPED:
                continue
            if value is None:
                self.data.pop(key, None)
            else:
                self.data[key] = value


# --- the report ------------------------------------------------------------


@dataclass
class AuditFailure:
    """The first discrepancy: where, which rule, and the bytes that differ."""

    height: int
    """Block height (0 for the source as a whole, e.g. another genesis)."""
    tx_index: int | None
    """Position of the offending transaction in its block, when one is at fault."""
    rule: str
    """The error code of the rule broken, e.g. ``block.state_root``."""
    message: str
    """The rule's own message."""
    expected: str | None = None
    """What the rules expect (hex for bytes), when the difference is a value."""
    found: str | None = None
    """What the source holds (hex for bytes)."""
    cause: str | None = None
    """The inner rule when one rule wraps another (``block.last_commit`` <- ``commit.quorum``)."""

    def describe(self) -> list[str]:
        """Lines for a person: height, transaction, rule, differing bytes."""
        where = f"height {self.height}" + ("" if self.tx_index is None else f", transaction {self.tx_index}")
        lines = [f"AUDIT FAILED at {where}", f"  rule:     {self.rule}" + (f" (from {self.cause})" if self.cause else "")]
        lines.append(f"  detail:   {self.message}")
        if self.expected is not None or self.found is not None:
            lines.append(f"  expected: {self.expected}")
            lines.append(f"  found:    {self.found}")
        return lines


@dataclass
class AuditProgress:
    """Handed to the progress callback about twice a second."""

    blocks_done: int
    """Blocks replayed so far."""
    head: int
    """Claimed head height."""
    docs_done: int
    """Transactions replayed so far."""
    docs_per_s: float
    """Transactions per second since the start."""
    eta_s: float | None
    """Seconds left at the current block rate, when it can be estimated."""


@dataclass
class AuditReport:
    """What the replay found; JSON-able through :meth:`to_json`."""

    source: str
    """Path or URL audited."""
    chain_id: str
    """From genesis."""
    genesis_hash: str
    """Hex."""
    claimed_head: int = 0
    """The head height the source claimed."""
    head_hash: str | None = None
    """Hex hash of the last block verified."""
    first_height: int | None = None
    """First height verified."""
    last_height: int = 0
    """Last height verified (equals ``claimed_head`` when the chain passes)."""
    blocks: int = 0
    """Blocks verified."""
    transactions: int = 0
    """Transactions verified."""
    documents_by_type: dict[str, int] = field(default_factory=dict)
    """Documents issued, per document type."""
    documents_by_zone: dict[str, int] = field(default_factory=dict)
    """Documents issued, per zone."""
    amendments: int = 0
    """Amendments committed."""
    officer_activity: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    """zone -> officer key (hex) -> {"issues", "amends", "revokes"}."""
    revocations: list[dict[str, Any]] = field(default_factory=list)
    """Each document revocation: doc_id, reason, height, tx_index, officer."""
    officer_changes: list[dict[str, Any]] = field(default_factory=list)
    """Each officer registration or revocation: kind, zone_id, officer_key, height."""
    evidence: list[dict[str, Any]] = field(default_factory=list)
    """Equivocation evidence the node recorded (from a data dir; none from the chain itself)."""
    workers: int = 1
    """Processes that verified signatures (1: the main process alone)."""
    elapsed_s: float = 0.0
    """Wall time of the replay."""
    docs_per_s: float = 0.0
    """Transactions replayed per second."""
    failure: AuditFailure | None = None
    """The first discrepancy, or ``None`` when the chain passes."""

    @property
    def passed(self) -> bool:
        return self.failure is None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["passed"] = self.passed
        return out

    def summary_lines(self) -> list[str]:
        verdict = "PASSED" if self.passed else "FAILED"
        lines = [
            f"audit {verdict}: {self.source} (chain {self.chain_id}, genesis {self.genesis_hash[:16]}…)",
            f"  heights {self.first_height or 0}..{self.last_height} of claimed head {self.claimed_head}: "
            f"{self.blocks} blocks, {self.transactions} transactions in {self.elapsed_s:.1f} s "
            f"({self.docs_per_s:,.0f}/s, {self.workers} signature workers)",
        ]
        if self.documents_by_type:
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.documents_by_type.items()))
            zones = ", ".join(f"{k} {v}" for k, v in sorted(self.documents_by_zone.items()))
            lines.append(f"  documents issued: {kinds}")
            lines.append(f"  per zone: {zones}")
        lines.append(
            f"  amendments {self.amendments}, revocations {len(self.revocations)}, "
            f"officer changes {len(self.officer_changes)}, equivocation evidence {len(self.evidence)}"
        )
        if self.failure is not None:
            lines += self.failure.describe()
        return lines


# --- signature checks in worker processes -----------------------------------


@dataclass(frozen=True, slots=True)
class _Checked:
    """A worker's answer for one chunk."""

    tx_passed: list[int]
    """Positions, in the chunk, of the transactions that passed."""
    precommits_passed: list[bytes]
    """Digests of precommit signatures that verified."""


TxCheck = tuple[bytes, bytes, bytes, tuple[str, str, bytes] | None, bytes | None] | None
"""What a worker checks of one transaction, as the main process decoded it: ``(signer,
signed bytes, signature, an issue's (doc_type, doc_id, doc_hash) or None, content)``;
``None`` where a worker can check nothing."""


def decode_or_none(tx_bytes: bytes) -> Envelope | None:
    """The envelope of ``tx_bytes``, or None where they do not decode (execution meets the error in order)."""
    try:
        return Envelope.decode(tx_bytes)
    except LedgerError:
        return None


def compute_tx_check(envelope: Envelope | None, content: bytes | None) -> TxCheck:
    """The worker's part of a transaction: its signature and, for an issue, the content.

    ``None`` for an amendment (its document type is the original's, known only to the
    ledger state) and for bytes that do not decode: the main process checks those in
    full and meets any error in order.
    """
    if envelope is None:
        return None
    body = envelope.tx.body
    if isinstance(body, DocAmend):
        return None
    issued = (body.doc_type, body.doc_id, body.doc_hash) if isinstance(body, DocIssue) else None
    return envelope.tx.signer, envelope.signed, envelope.sig, issued, content


def verify_signature_chunk(txs: list[TxCheck], precommits: list[tuple[bytes, bytes, bytes]]) -> _Checked:
    """Worker side: check transactions (:data:`TxCheck`) and (key, message, sig) precommits.

    A transaction passes when everything ``execute_block`` skips for a ``checked``
    position has been checked here: its signature and, for an issue, its content (hash,
    canonical JSON, schema, number), from the values the main process decoded at that
    position. Anything that fails is left out: the main process meets the error in
    order and reports it with its height and index.
    """
    tx_passed = []
    for position, check in enumerate(txs):
        if check is None:
            continue
        signer, signed, sig, issued, content = check
        try:
            verify_bytes(signer, signed, sig, SignatureInvalidError)
            if issued is not None:
                doc_type, doc_id, doc_hash = issued
                validate_content(doc_type, doc_id, doc_hash, content)
        except LedgerError:
            continue
        tx_passed.append(position)
    pre_passed = []
    for public, message, sig in precommits:
        try:
            verify_bytes(public, message, sig, CommitSignatureError)
        except LedgerError:
            continue
        pre_passed.append(compute_signature_digest(public, message, sig))
    return _Checked(tx_passed, pre_passed)


def _precommit_items(commit: CommitCertificate | None, chain_id: str, validators: tuple[bytes, ...]) -> list[tuple[bytes, bytes, bytes]]:
    if commit is None:
        return []
    return [
        (validators[s.validator], commit.precommit_for(chain_id, s.validator).signing_bytes(), s.sig)
        for s in commit.signatures
        if s.validator < len(validators)
    ]


@dataclass
class _Segment:
    """A run of one block's transactions inside one chunk."""

    future: Future[_Checked] | None
    """The chunk, once sent (None while it is still being filled)."""
    chunk_offset: int
    """Where the run starts in the chunk."""
    block_offset: int
    """Where it starts in the block."""
    count: int


@dataclass
class _Pending:
    """A block read ahead, waiting for its signature chunks."""

    height: int
    block: Block | None
    commit: CommitCertificate | None
    commit_bytes: bytes | None
    error: LedgerError | None
    segments: list[_Segment] = field(default_factory=list)
    """Where its transactions went: a block may span chunks, a chunk hold several blocks."""
    checked: frozenset[int] = frozenset()
    """Positions of this block's transactions that passed in a worker."""
    precommits: list[tuple[bytes, bytes, bytes]] = field(default_factory=list)
    """(key, signed bytes, signature) of its ``last_commit`` and its own certificate, read once."""
    envelopes: list[Envelope | None] = field(default_factory=list)
    """Its transactions as decoded at read-ahead, until the workers have checked them."""

    def remember_checked(self) -> None:
        """Remember the envelopes whose signatures passed in a worker, so that execution
        decodes none of them again; then let go of the rest."""
        for position in self.checked:
            envelope = self.envelopes[position]
            if envelope is not None:
                remember_verified_envelope(envelope)
        self.envelopes = []


class _SignaturePipeline:
    """Reads blocks ahead of execution and keeps the worker pool busy with their signatures.

    Chunks are cut at ``CHUNK_SIZE`` checks whatever the block size: with whole blocks
    per chunk, the last big block would keep one worker busy while the others idle.
    """

    def __init__(self, pool: ProcessPoolExecutor | None, workers: int) -> None:
        self.pool = pool
        self.max_in_flight = max(1, workers) * LOOKAHEAD_CHUNKS
        self.txs: list[TxCheck] = []
        self.precommits: list[tuple[bytes, bytes, bytes]] = []
        self.open_segments: list[_Segment] = []  # segments in the chunk being filled
        self.in_flight: deque[Future[_Checked]] = deque()
        self.precommits_passed: set[bytes] = set()

    def add(self, pending: _Pending, txs: list[TxCheck], precommits: list[tuple[bytes, bytes, bytes]]) -> None:
        if self.pool is None:
            return
        self.precommits += precommits
        done = 0
        while True:
            take = min(len(txs) - done, max(0, CHUNK_SIZE - len(self.txs) - len(self.precommits)))
            if take or not pending.segments:
                segment = _Segment(None, len(self.txs), done, take)
                pending.segments.append(segment)
                self.open_segments.append(segment)
                self.txs += txs[done:done + take]
                done += take
            if len(self.txs) + len(self.precommits) >= CHUNK_SIZE:
                self.flush()
            if done == len(txs):
                return

    def flush(self) -> None:
        if self.pool is None or not self.open_segments:
            return
        future = self.pool.submit(verify_signature_chunk, self.txs, self.precommits)
        for segment in self.open_segments:
            segment.future = future
        self.in_flight.append(future)
        self.txs, self.precommits, self.open_segments = [], [], []

    def is_full(self) -> bool:
        while self.in_flight and self.in_flight[0].done():
            self._collect(self.in_flight.popleft())
        return len(self.in_flight) >= self.max_in_flight

    def _collect(self, future: Future[_Checked]) -> None:
        # Each chunk leaves ``in_flight`` once, in order: its precommit passes merge once.
        self.precommits_passed.update(future.result().precommits_passed)

    def wait_for(self, pending: _Pending) -> None:
        """Block until ``pending``'s chunks are back; then its ``checked`` positions are set."""
        if any(segment.future is None for segment in pending.segments):
            self.flush()
        checked: set[int] = set()
        for segment in pending.segments:
            future = segment.future
            assert future is not None
            while future in self.in_flight:  # chunks go out in block order: earlier ones are due first
                self._collect(self.in_flight.popleft())
            start, stop = segment.chunk_offset, segment.chunk_offset + segment.count
            checked.update(p - start + segment.block_offset for p in future.result().tx_passed if start <= p < stop)
        pending.checked = frozenset(checked)
        pending.segments = []

    def take(self, digests: set[bytes]) -> frozenset[bytes]:
        """The precommit passes that concern one block, removed from the pool so memory stays bounded."""
        pre = frozenset(digests & self.precommits_passed)
        self.precommits_passed -= pre
        return pre


# --- the replay --------------------------------------------------------------


_EXPECTED_GOT = re.compile(r"expected (.+?), (?:got|content hashes to) (.+)$")
_VALIDATOR = re.compile(r"precommit of validator (\d+)")


def compute_difference(error: LedgerError) -> tuple[str | None, str | None]:
    """Expected and found values from a rule's "expected X, got Y" message."""
    match = _EXPECTED_GOT.search(error.message)
    if match is None:
        return None, None
    return match.group(1), match.group(2)


def _failure(
    height: int, error: LedgerError, *, block: Block | None = None, commit: CommitCertificate | None = None
) -> AuditFailure:
    """Turn the error a rule raised into the report's failure, with the differing bytes."""
    tx_index = error.tx_index
    expected, found = compute_difference(error)
    cause_error = error.__cause__ if isinstance(error.__cause__, LedgerError) else None
    if cause_error is not None and expected is None:
        expected, found = compute_difference(cause_error)
    if isinstance(error, SignatureInvalidError) and block is not None and tx_index is not None:
        envelope = Envelope.decode(block.txs[tx_index])
        expected = f"an Ed25519 signature by {envelope.tx.signer.hex()} over tx {envelope.tx_hash.hex()}"
        found = envelope.sig.hex()
    signature_error = error if isinstance(error, CommitSignatureError) else cause_error
    if isinstance(signature_error, CommitSignatureError):
        certificate = commit if cause_error is None else (block.last_commit if block is not None else None)
        match = _VALIDATOR.search(signature_error.message)
        if match is not None and certificate is not None:
            index = int(match.group(1))
            sig = next((s.sig for s in certificate.signatures if s.validator == index), None)
            expected = f"a precommit signature by validator {index} for block {certificate.block_hash.hex()}"
            found = None if sig is None else sig.hex()
    return AuditFailure(
        height=height,
        tx_index=tx_index,
        rule=error.code,
        message=str(error),
        expected=expected,
        found=found,
        cause=None if cause_error is None else cause_error.code,
    )


class _Tally:
    """Counts for the report, from transactions of blocks that passed."""

    def __init__(self, report: AuditReport) -> None:
        self.report = report
        self.doc_types: dict[str, str] = {}

    def officer(self, zone_id: str, signer: bytes, what: str) -> None:
        per_zone = self.report.officer_activity.setdefault(zone_id, {})
        counts = per_zone.setdefault(signer.hex(), {"issues": 0, "amends": 0, "revokes": 0})
        counts[what] += 1

    def add_block(self, block: Block) -> None:
        report = self.report
        for index, tx_bytes in enumerate(block.txs):
            envelope = Envelope.decode(tx_bytes)
            body = envelope.tx.body
            signer = envelope.tx.signer
            if isinstance(body, DocIssue):
                zone_id = body.zone_id
                self.doc_types[body.doc_id] = body.doc_type
                report.documents_by_type[body.doc_type] = report.documents_by_type.get(body.doc_type, 0) + 1
                report.documents_by_zone[zone_id] = report.documents_by_zone.get(zone_id, 0) + 1
                self.officer(zone_id, signer, "issues")
            elif isinstance(body, DocAmend):
                zone_id = body.zone_id
                report.amendments += 1
                self.officer(zone_id, signer, "amends")
            elif isinstance(body, DocRevoke):
                zone_id = body.zone_id
                self.officer(zone_id, signer, "revokes")
                report.revocations.append({
                    "doc_id": body.doc_id, "doc_type": self.doc_types.get(body.doc_id), "reason": body.reason,
                    "height": block.height, "tx_index": index, "officer": signer.hex(),
                })
            elif isinstance(body, OfficerRegister | OfficerRevoke):
                report.officer_changes.append({
                    "kind": body.KIND, "zone_id": body.zone_id, "officer_key": body.officer_key.hex(),
                    "height": block.height, "tx_index": index,
                })
        report.transactions += len(block.txs)


def audit_chain(
    source: BlockSource,
    genesis: Genesis,
    *,
    workers: int | None = None,
    progress: Callable[[AuditProgress], None] | None = None,
) -> AuditReport:
    """Replay ``source`` from ``genesis``; the report names the first discrepancy, if any.

    ``workers`` processes verify signatures ahead of execution (default: every core);
    ``workers <= 1`` verifies everything in the main process, the plain path.
    """
    count = (os.cpu_count() or 1) if workers is None else max(1, workers)
    report = AuditReport(
        source=source.description, chain_id=genesis.chain_id, genesis_hash=genesis.genesis_hash.hex(),
        evidence=source.evidence(), workers=count,
    )
    started = time.perf_counter()
    pool = ProcessPoolExecutor(count) if count > 1 else None
    if pool is not None:
        # The pool forks a worker per submission as work arrives; fork them all now,
        # before the first block is read, so none waits for the second chunk to exist.
        for _ in range(count):
            pool.submit(os.getpid)
    try:
        _replay(source, genesis, report, pool, count, progress, started)
    except AuditGenesisMismatchError as exc:
        report.failure = _failure(0, exc)  # the source as a whole, before any block
    except LedgerError as exc:
        # Anything not tied to a block (an unreadable store) still ends the audit with a report.
        report.failure = _failure(report.last_height + 1, exc)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        report.elapsed_s = time.perf_counter() - started
        report.docs_per_s = report.transactions / report.elapsed_s if report.elapsed_s > 0 else 0.0
    return report


def _replay(
    source: BlockSource, genesis: Genesis, report: AuditReport, pool: ProcessPoolExecutor | None, workers: int,
    progress: Callable[[AuditProgress], None] | None, started: float,
) -> None:
    stored_genesis = source.genesis_hash()
    if stored_genesis is not None and stored_genesis != genesis.genesis_hash:
        raise AuditGenesisMismatchError(
            f"m/genesis: expected {genesis.genesis_hash.hex()}, got {stored_genesis.hex()}"
        )
    head, head_hash = source.claimed_head()
    report.claimed_head = head
    chain = Chain(ReplayStore(), genesis)
    chain_id = genesis.chain_id
    validators = genesis.validators
    pipeline = _SignaturePipeline(pool, workers)
    tally = _Tally(report)
    queue: deque[_Pending] = deque()
    blocks = source.blocks()
    exhausted = False
    expected_height = 1
    last_progress = started
    previous: _Pending | None = None

    def read_ahead() -> None:
        nonlocal exhausted, expected_height
        while not exhausted and (not queue or not pipeline.is_full()):
            item = next(blocks, None)
            if item is None:
                exhausted = True
                return
            height, source_block, commit_bytes = item
            if height != expected_height or height > head:
                # Stop reading: the gap or the extra block is reported when its turn comes.
                exhausted = True
                error = _source_error(height, expected_height, head)
                at = expected_height if isinstance(error, AuditMissingBlockError) else height
                queue.append(_Pending(at, None, None, commit_bytes, error))
                return
            expected_height += 1
            pending = _Pending(height, None, None, commit_bytes, None)
            try:
                if isinstance(source_block, LedgerError):
                    raise source_block
                pending.block = source_block if isinstance(source_block, Block) else Block.decode(source_block)
                if commit_bytes is not None:
                    pending.commit = CommitCertificate.decode(commit_bytes)
                pending.precommits = _precommit_items(pending.block.last_commit, chain_id, validators) + _precommit_items(
                    pending.commit, chain_id, validators
                )
            except LedgerError as exc:
                pending.error = exc
            queue.append(pending)
            if pending.block is not None and pool is not None:
                pending.envelopes = [decode_or_none(t) for t in pending.block.txs]
                pipeline.add(
                    pending,
                    [compute_tx_check(e, c) for e, c in zip(pending.envelopes, pending.block.documents, strict=True)],
                    pending.precommits,
                )
            if pool is None:
                return

    while True:
        read_ahead()
        if not queue:
            break
        pending = queue.popleft()
        pipeline.wait_for(pending)
        pending.remember_checked()
        block = pending.block
        try:
            if pending.error is not None:
                raise pending.error
            assert block is not None
            _validate_block(chain, source, pending, previous, pipeline)
        except AuditCommitMismatchError as exc:
            # Found while checking block h, but what is wrong is the certificate stored for h-1.
            report.failure = _failure(pending.height - 1, exc)
            return
        except LedgerError as exc:
            report.failure = _failure(pending.height, exc, block=block, commit=pending.commit)
            return
        tally.add_block(block)
        report.blocks += 1
        report.first_height = report.first_height or pending.height
        report.last_height = pending.height
        report.head_hash = chain.head_hash.hex()
        previous = pending
        now = time.perf_counter()
        if progress is not None and now - last_progress >= PROGRESS_INTERVAL_S:
            last_progress = now
            progress(_progress(report, head, now - started))
    if report.last_height < head:
        report.failure = _failure(
            report.last_height + 1,
            AuditMissingBlockError(f"b/{report.last_height + 1}: expected a block up to the claimed head {head}, got none"),
        )
        return
    if head_hash is not None and head and chain.head_hash != head_hash:
        report.failure = _failure(
            head, AuditHeadMismatchError(f"m/head: expected {chain.head_hash.hex()}, got {head_hash.hex()}")
        )
        return
    if progress is not None:
        progress(_progress(report, head, time.perf_counter() - started))


def _source_error(height: int, expected: int, head: int) -> AuditError:
    if expected <= head and height > expected:
        return AuditMissingBlockError(f"b/{expected}: expected a block, got none (the next stored is {height})")
    return AuditExtraBlockError(f"b/{height}: expected nothing after the claimed head {head}, got a block")


def _progress(report: AuditReport, head: int, elapsed: float) -> AuditProgress:
    rate = report.blocks / elapsed if elapsed > 0 else 0.0
    left = head - report.last_height
    return AuditProgress(
        blocks_done=report.blocks, head=head, docs_done=report.transactions,
        docs_per_s=report.transactions / elapsed if elapsed > 0 else 0.0,
        eta_s=left / rate if rate > 0 else None,
    )


def _validate_block(
    chain: Chain, source: BlockSource, pending: _Pending, previous: _Pending | None,
    pipeline: _SignaturePipeline,
) -> None:
    """Every rule for one block, in the order a validator applies them; then commit it in memory."""
    block = pending.block
    assert block is not None
    height = pending.height
    if pending.commit is None:
        raise AuditMissingCommitError(f"c/{height}: expected the block's commit certificate, got none")
    digests = {compute_signature_digest(public, message, sig) for public, message, sig in pending.precommits}
    verified_precommits = pipeline.take(digests)
    executed = execute_block(chain, block, checked=pending.checked, verified_precommits=verified_precommits)
    validate_canonical_commit(previous, block)
    # Checks the block's own stored certificate (its hash is the header's), then writes
    # into the replay store; a failure later in this function ends the replay anyway.
    commit_block(chain, executed, pending.commit, verified_precommits=verified_precommits)
    validate_stored_header(source, block)


def validate_canonical_commit(previous: _Pending | None, block: Block) -> None:
    """The certificate stored for h-1 is the one block h carries (the canonical one)."""
    if previous is None or block.last_commit is None or previous.commit_bytes is None:
        return
    carried = block.last_commit.encode()
    if previous.commit_bytes != carried:
        raise AuditCommitMismatchError(
            f"c/{block.height - 1}: expected the certificate block {block.height} carries "
            f"{_short(carried)}, got {_short(previous.commit_bytes)}"
        )


def validate_stored_header(source: BlockSource, block: Block) -> None:
    """The separately stored header (served to light clients) is the block's own."""
    stored = source.stored_header(block.height)
    if stored is None:
        return
    expected = block.header.encode()
    if stored != expected:
        raise AuditHeaderMismatchError(f"h/{block.height}: expected {expected.hex()}, got {stored.hex()}")


def _short(data: bytes) -> str:
    return f"H={H(data).hex()}"
