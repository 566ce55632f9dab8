"""The audit's worker side: signatures and stateless document checks, in a process pool, ahead of the replay.

Every Ed25519 signature of a window of upcoming blocks (transactions and precommits) is
verified in worker processes first, with the stateless checks of each issued document
(hash, canonical JSON, schema, number). The main process decodes each transaction as it
reads the block and sends a worker what that decode found (:data:`TxCheck`); a worker
answers with the positions that passed and the digests of the precommit signatures that
verified. A pass counts for that position of that block only, where execution then skips
the signature and the content checks; anything that did not pass (an amendment, whose
document type only the ledger state knows, or anything a worker refused) is checked in
full by the main process, in order, so an error is still reported exactly where the
rules meet it.

:class:`SignaturePipeline` cuts the work into chunks of :data:`CHUNK_SIZE` checks
whatever the block size and keeps :data:`LOOKAHEAD_CHUNKS` per worker in flight;
:class:`Pending` is a block read ahead, waiting for its chunks.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field

from ledger.blocks import Block, CommitCertificate, compute_signature_digest
from ledger.errors import CommitSignatureError, LedgerError, SignatureInvalidError
from ledger.keys import verify_bytes
from ledger.transactions import DocAmend, DocIssue, Envelope, remember_verified_envelope
from ledger.transition import validate_content

CHUNK_SIZE = 300
"""Signatures per task sent to a worker: big enough to amortise the hand-off."""
LOOKAHEAD_CHUNKS = 3
"""Chunks per worker kept in flight ahead of execution, so workers never wait on the main process."""

PrecommitCheck = tuple[bytes, bytes, bytes]
"""A precommit signature to verify: (validator key, signed bytes, signature)."""


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


def verify_signature_chunk(txs: list[TxCheck], precommits: list[PrecommitCheck]) -> _Checked:
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


def compute_precommit_items(
    commit: CommitCertificate | None, chain_id: str, validators: tuple[bytes, ...]
) -> list[PrecommitCheck]:
    """The precommit signatures of ``commit`` to verify (signers outside the set are left to the rules)."""
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
class Pending:
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
    precommits: list[PrecommitCheck] = field(default_factory=list)
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


class SignaturePipeline:
    """Reads blocks ahead of execution and keeps the worker pool busy with their signatures.

    Chunks are cut at ``CHUNK_SIZE`` checks whatever the block size: with whole blocks
    per chunk, the last big block would keep one worker busy while the others idle.
    """

    def __init__(self, pool: ProcessPoolExecutor | None, workers: int) -> None:
        self.pool = pool
        self.max_in_flight = max(1, workers) * LOOKAHEAD_CHUNKS
        self.txs: list[TxCheck] = []
        self.precommits: list[PrecommitCheck] = []
        self.open_segments: list[_Segment] = []  # segments in the chunk being filled
        self.in_flight: deque[Future[_Checked]] = deque()
        self.precommits_passed: set[bytes] = set()

    def add(self, pending: Pending, txs: list[TxCheck], precommits: list[PrecommitCheck]) -> None:
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

    def wait_for(self, pending: Pending) -> None:
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

