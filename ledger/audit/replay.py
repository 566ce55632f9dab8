"""The replay: :func:`audit_chain` applies every rule again, block by block, from genesis.

It reads every block and its stored commit certificate from a
:class:`~ledger.audit.sources.BlockSource` and replays them into a fresh in-memory chain
(:class:`ReplayStore`), so every rule the validators applied is applied again by code
the auditor runs, in this order:

1. the source: its genesis hash; blocks 1..head with no gap and nothing after the
   claimed head, each with a stored certificate;
2. the block: canonical bytes; then :func:`~ledger.transition.execute_block` — chain id,
   height, link, proposer ``(h + round) mod n``, validator hashes, time order, the
   ``last_commit`` of the previous block, every transaction (encoding, chain id, replay,
   signature, authorization, document hash, canonical JSON, schema, amendment and
   revocation rules) and the recomputed ``log_size``, ``log_root`` and ``state_root``;
3. that the certificate stored for h-1 is the canonical one, carried by block h
   (:func:`validate_canonical_commit`); the block's own stored certificate
   (:func:`~ledger.transition.commit_block`); a separately stored header equal to the
   block's (:func:`validate_stored_header`);
4. the claimed head hash is the replayed head's.

Signatures and stateless document checks run ahead in :mod:`ledger.audit.pipeline`. The
first discrepancy stops the replay; the report (:mod:`ledger.audit.report`) then names
the height, the transaction index, the rule and the values that differ.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

from ledger.audit.pipeline import (
    Pending,
    SignaturePipeline,
    compute_precommit_items,
    compute_tx_check,
    decode_or_none,
)
from ledger.audit.report import AuditProgress, AuditReport, Tally, compute_failure
from ledger.audit.sources import BlockSource
from ledger.blocks import Block, CommitCertificate, compute_signature_digest
from ledger.chain import Chain
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
    LedgerError,
)
from ledger.genesis import Genesis
from ledger.store import MemoryStore, WriteBatch
from ledger.transition import commit_block, execute_block

PROGRESS_INTERVAL_S = 0.5


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
        report.failure = compute_failure(0, exc)  # the source as a whole, before any block
    except LedgerError as exc:
        # Anything not tied to a block (an unreadable store) still ends the audit with a report.
        report.failure = compute_failure(report.last_height + 1, exc)
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
            f"m/genesis: expected {genesis.genesis_hash.hex()}, got {stored_genesis.hex()}",
            expected=genesis.genesis_hash, found=stored_genesis,
        )
    head, head_hash = source.claimed_head()
    report.claimed_head = head
    chain = Chain(ReplayStore(), genesis)
    chain_id = genesis.chain_id
    pipeline = SignaturePipeline(pool, workers)
    tally = Tally(report)
    queue: deque[Pending] = deque()
    blocks = source.blocks()
    exhausted = False
    expected_height = 1
    last_progress = started
    previous: Pending | None = None

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
                queue.append(Pending(at, None, None, commit_bytes, error))
                return
            expected_height += 1
            pending = Pending(height, None, None, commit_bytes, None)
            try:
                if isinstance(source_block, LedgerError):
                    raise source_block
                pending.block = source_block if isinstance(source_block, Block) else Block.decode(source_block)
                if commit_bytes is not None:
                    pending.commit = CommitCertificate.decode(commit_bytes)
                # Read ahead of execution, a change of the set may not be known yet: a
                # precommit checked against the wrong set is only checked again in order.
                pending.precommits = compute_precommit_items(
                    pending.block.last_commit, chain_id, chain.validators_for(height - 1)
                ) + compute_precommit_items(pending.commit, chain_id, chain.validators_for(height))
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
            validate_block(chain, source, pending, previous, pipeline)
        except AuditCommitMismatchError as exc:
            # Found while checking block h, but what is wrong is the certificate stored for h-1.
            report.failure = compute_failure(pending.height - 1, exc)
            return
        except LedgerError as exc:
            report.failure = compute_failure(pending.height, exc)
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
        report.failure = compute_failure(
            report.last_height + 1,
            AuditMissingBlockError(f"b/{report.last_height + 1}: expected a block up to the claimed head {head}, got none"),
        )
        return
    if head_hash is not None and head and chain.head_hash != head_hash:
        report.failure = compute_failure(
            head,
            AuditHeadMismatchError(
                f"m/head: expected {chain.head_hash.hex()}, got {head_hash.hex()}",
                expected=chain.head_hash, found=head_hash,
            ),
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


def validate_block(
    chain: Chain, source: BlockSource, pending: Pending, previous: Pending | None, pipeline: SignaturePipeline,
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


def validate_canonical_commit(previous: Pending | None, block: Block) -> None:
    """The certificate stored for h-1 is the one block h carries (the canonical one)."""
    if previous is None or block.last_commit is None or previous.commit_bytes is None:
        return
    carried = block.last_commit.encode()
    if previous.commit_bytes != carried:
        raise AuditCommitMismatchError(
            f"c/{block.height - 1}: expected the certificate block {block.height} carries "
            f"{_short(carried)}, got {_short(previous.commit_bytes)}",
            expected=carried, found=previous.commit_bytes,
        )


def validate_stored_header(source: BlockSource, block: Block) -> None:
    """The separately stored header (served to light clients) is the block's own."""
    stored = source.stored_header(block.height)
    if stored is None:
        return
    expected = block.header.encode()
    if stored != expected:
        raise AuditHeaderMismatchError(
            f"h/{block.height}: expected {expected.hex()}, got {stored.hex()}", expected=expected, found=stored
        )


def _short(data: bytes) -> str:
    return f"H={H(data).hex()}"
