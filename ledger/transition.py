"""The state transition: how a block changes the ledger, rule by rule.

``apply_block`` reads as the order of checks on a whiteboard:

1. the header: chain, height, link, proposer, validator set, time, count, last commit;
2. each transaction: encoding, chain id, replay, signature, authorization, the kind's
   rules, and the document content (hash, canonical JSON, schema, number);
3. execute: append each transaction to the document log, update document records;
4. recompute ``log_size``, ``log_root`` and ``state_root`` and compare with the header;
5. check the block's own commit certificate, then write everything in one atomic batch.

Nothing is written until every check has passed, so an invalid block changes nothing.
Within a block every rule sees the effect of the transactions before it.
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from dataclasses import dataclass, field

from ledger.blocks import (
    Block,
    CommitCertificate,
    Header,
    compute_last_commit_hash,
    compute_proposer,
    validate_commit,
)
from ledger.chain import (
    KEY_HEAD,
    Chain,
    DocRecord,
    HistoryEntry,
    LedgerView,
    StoredBlock,
    TxLocation,
    encode_head,
    encode_location,
    key_attachment,
    key_block,
    key_by_hash,
    key_commit,
    key_content,
    key_doc,
    key_header,
    key_history,
    key_number,
    key_tx,
    pack_record,
)
from ledger.documents import DOC_TYPES, validate_document_bytes
from ledger.encoding import H, bounded_repr
from ledger.errors import (
    AttachmentError,
    BlockChainIdError,
    BlockTimeError,
    BlockTooManyTxsError,
    DocIdMismatchError,
    DocumentExistsError,
    DocumentHashMismatchError,
    DocumentMissingError,
    DocumentNotFoundError,
    DocumentRevokedError,
    DocumentTooLargeError,
    DuplicateInBlockError,
    LastCommitMismatchError,
    LedgerError,
    LogRootMismatchError,
    LogSizeMismatchError,
    MalformedTransactionError,
    ReplayedTransactionError,
    StaleRevocationHashError,
    StaleSupersedesError,
    StateRootMismatchError,
    TxCountMismatchError,
    UnknownDocTypeError,
    ValidatorsHashMismatchError,
    WrongHeightError,
    WrongPrevHashError,
    WrongProposerError,
)
from ledger.genesis import compute_validators_hash
from ledger.governance_rules import (
    apply_expiries,
    apply_gov_approve,
    apply_gov_propose,
    apply_key_change,
    apply_officer_register,
    apply_officer_revoke,
    check_gov_approve,
    check_gov_propose,
    check_officer_register,
    check_officer_revoke,
    check_zone_rotate_keys,
    validate_no_content,
    validate_officer_of_zone,
)
from ledger.limits import MAX_DOCUMENT_BYTES
from ledger.membership import SetChange, put_validators
from ledger.merkle import MerkleLog
from ledger.store import Overlay, WriteBatch
from ledger.transactions import (
    STATUS_ACTIVE,
    STATUS_REVOKED,
    Attachment,
    DocAmend,
    DocIssue,
    DocRevoke,
    Envelope,
    GovApprove,
    GovPropose,
    OfficerRegister,
    OfficerRevoke,
    ZoneRotateKeys,
    doc_id_parts,
    get_verified_envelope,
    remember_verified_envelope,
    validate_chain_id,
    validate_signature,
)


@dataclass
class BlockContext:
    """Everything one block's execution reads and writes; discarded if the block fails."""

    chain: Chain
    height: int
    batch: WriteBatch = field(default_factory=WriteBatch)
    verified: frozenset[bytes] = frozenset()
    signatures_checked: frozenset[bytes] = frozenset()
    """Transactions whose signatures verified in the block's first pass (content not checked)."""
    checked: frozenset[int] = frozenset()
    """Positions in this block of transactions whose signature and content, exactly as
    the block carries them, were checked in full beforehand (the auditor's workers)."""
    seen_tx: set[bytes] = field(default_factory=set)
    changed_docs: dict[str, DocRecord] = field(default_factory=dict)
    changed_state: dict[bytes, bytes] = field(default_factory=dict)
    """State-tree entries of membership records (zones, officers, proposals) changed."""
    membership_changed: bool = False
    """A zone, the auditors or the consensus settings changed: the chain rereads them."""
    locations: list[TxLocation] = field(default_factory=list)
    view: LedgerView = field(init=False)
    log: MerkleLog = field(init=False)

    def __post_init__(self) -> None:
        overlay = Overlay(self.chain.store, self.batch)
        self.view = LedgerView(overlay, self.chain.genesis)
        self.log = self.chain.log(overlay)
        apply_expiries(self)


@dataclass(frozen=True, slots=True)
class ExecutedBlock:
    """A block that passed every check, with the batch that would commit it."""

    block: Block
    """The block executed."""
    batch: WriteBatch
    """Every record it writes, not yet written."""
    log_size: int
    """Log size after the block."""
    log_root: bytes
    """Log root after the block."""
    state_root: bytes
    """State root after the block."""
    set_change: SetChange | None
    """The validator set this block hands to the height after next, if it changes it."""
    membership_changed: bool
    """Whether the block changed any zone, the auditors or the consensus settings."""
    tx_hashes: tuple[bytes, ...]
    """Its transactions, in order."""
    content_hashes: tuple[bytes | None, ...]
    """For each transaction, the hash of the content beside it, or ``None``."""


# --- header rules ----------------------------------------------------------


def validate_header(
    chain: Chain, header: Header, tx_count: int, last_commit: CommitCertificate | None, *,
    verified_precommits: Set[bytes] = frozenset(),
) -> None:
    """The header's own fields and its link to the chain, before any transaction runs."""
    genesis = chain.genesis
    if header.chain_id != genesis.chain_id:
        raise BlockChainIdError(
            f"header.chain_id: expected {genesis.chain_id!r}, got {bounded_repr(header.chain_id)}",
            expected=repr(genesis.chain_id), found=bounded_repr(header.chain_id),
        )
    if header.height != chain.height + 1:
        raise WrongHeightError(
            f"header.height: expected {chain.height + 1}, got {header.height}", expected=chain.height + 1, found=header.height
        )
    if header.prev_hash != chain.head_hash:
        raise WrongPrevHashError(
            f"header.prev_hash: expected {chain.head_hash.hex()}, got {header.prev_hash.hex()}",
            expected=chain.head_hash, found=header.prev_hash,
        )
    validators = chain.validators_for(header.height)
    expected_proposer = compute_proposer(header.height, header.round, len(validators))
    if header.proposer != expected_proposer:
        raise WrongProposerError(
            f"header.proposer: expected validator {expected_proposer} for round {header.round}, got {header.proposer}",
            expected=expected_proposer, found=header.proposer,
        )
    validators_hash = compute_validators_hash(validators)
    if header.validators_hash != validators_hash:
        raise ValidatorsHashMismatchError(
            f"header.validators_hash: expected {validators_hash.hex()}, got {header.validators_hash.hex()}",
            expected=validators_hash, found=header.validators_hash,
        )
    next_hash = compute_validators_hash(chain.validators_for(header.height + 1))
    if header.next_validators_hash != next_hash:
        raise ValidatorsHashMismatchError(
            f"header.next_validators_hash: expected {next_hash.hex()}, got {header.next_validators_hash.hex()}",
            expected=next_hash, found=header.next_validators_hash,
        )
    validate_block_time_order(chain, header)
    if header.tx_count != tx_count:
        raise TxCountMismatchError(
            f"header.tx_count: expected {tx_count}, got {header.tx_count}", expected=tx_count, found=header.tx_count
        )
    limit = chain.consensus.max_block_txs
    if tx_count > limit:
        # A rule of validity, not only the proposer's habit: the settings in force
        # (genesis, or consensus.set) bound what every validator must execute.
        raise BlockTooManyTxsError(
            f"block: expected at most {limit} transactions (consensus.max_block_txs), got {tx_count}",
            expected=limit, found=tx_count,
        )
    validate_last_commit(chain, header, last_commit, verified_precommits=verified_precommits)


def validate_block_time_order(chain: Chain, header: Header) -> None:
    """Block time strictly increases from height 2 on (height 1 has no predecessor)."""
    if chain.head_header is not None and header.time_ms <= chain.head_header.time_ms:
        raise BlockTimeError(
            f"header.time_ms: expected after the previous block's {chain.head_header.time_ms}, got {header.time_ms}",
            expected=f"after {chain.head_header.time_ms}", found=header.time_ms,
        )


def validate_block_time_bound(header: Header, now_ms: int, max_skew_ms: int) -> None:
    """A validator's own check that the proposer's clock is not too far ahead (not deterministic)."""
    if header.time_ms > now_ms + max_skew_ms:
        raise BlockTimeError(
            f"header.time_ms: expected at most {max_skew_ms} ms ahead of {now_ms}, got {header.time_ms}",
            expected=f"at most {now_ms + max_skew_ms}", found=header.time_ms,
        )


def validate_last_commit(
    chain: Chain, header: Header, last_commit: CommitCertificate | None, *,
    verified_precommits: Set[bytes] = frozenset(),
) -> None:
    """Block h carries the certificate of block h-1, bound by ``last_commit_hash``."""
    if header.height == 1:
        if last_commit is not None:
            raise LastCommitMismatchError("last_commit: expected none at height 1, got a certificate")
    else:
        if last_commit is None:
            raise LastCommitMismatchError(f"last_commit: expected the certificate of height {header.height - 1}")
        try:
            validate_commit(
                last_commit,
                chain_id=chain.genesis.chain_id,
                validators=chain.validators_for(header.height - 1),
                height=header.height - 1,
                block_hash=header.prev_hash,
                verified=verified_precommits,
            )
        except LedgerError as exc:
            raise LastCommitMismatchError(f"last_commit: {exc}") from exc
    expected = compute_last_commit_hash(last_commit)
    if header.last_commit_hash != expected:
        raise LastCommitMismatchError(
            f"header.last_commit_hash: expected {expected.hex()}, got {header.last_commit_hash.hex()}",
            expected=expected, found=header.last_commit_hash,
        )


# --- transaction rules -----------------------------------------------------


def validate_not_replayed(ctx: BlockContext, envelope: Envelope) -> None:
    if envelope.tx_hash in ctx.seen_tx:
        raise DuplicateInBlockError(f"transaction {envelope.tx_hash.hex()} appears twice in the block")
    location = ctx.view.get_tx_location(envelope.tx_hash)
    if location is not None:
        raise ReplayedTransactionError(
            f"transaction {envelope.tx_hash.hex()} was committed at height {location.height}"
        )


def validate_content(
    doc_type: str, doc_id: str, doc_hash: bytes, content: bytes | None, *, checked_before: bool = False
) -> None:
    """The document travelling beside the transaction is the one it names, and well-formed.

    ``checked_before``: this node already ran every check on this transaction (mempool
    admission). The signed ``doc_hash`` pins the content, so confirming the hash is
    enough; canonical JSON, schema and number were settled then.
    """
    if content is None:
        raise DocumentMissingError(f"expected the content of {doc_id} beside its transaction")
    if len(content) > MAX_DOCUMENT_BYTES:
        raise DocumentTooLargeError(f"expected at most {MAX_DOCUMENT_BYTES} bytes, got {len(content)}")
    actual = H(content)
    if actual != doc_hash:
        raise DocumentHashMismatchError(
            f"doc_hash: expected {doc_hash.hex()}, content hashes to {actual.hex()}", expected=doc_hash, found=actual
        )
    if checked_before:
        return
    own_number = validate_document_bytes(doc_type, content)
    _, number = doc_id_parts(doc_id)
    if own_number != number:
        raise DocIdMismatchError(f"doc_id: expected \"<zone>/{own_number}\" (the document's number), got {doc_id!r}")


def validate_new_content_hash(ctx: BlockContext, doc_hash: bytes) -> None:
    existing = ctx.view.get_doc_by_hash(doc_hash)
    if existing is not None:
        raise DocumentExistsError(
            f"content {doc_hash.hex()} is already registered as {existing[0]} version {existing[1]}"
        )


def validate_attachments(ctx: BlockContext, doc_id: str, attachments: tuple[Attachment, ...]) -> None:
    for attachment in attachments:
        owner = ctx.view.get_attachment(attachment.sha256)
        if owner is not None and owner["doc_id"] != doc_id:
            raise AttachmentError(
                f"attachment {attachment.name!r}: file {attachment.sha256.hex()} is already registered to {owner['doc_id']}"
            )


def get_active_document(ctx: BlockContext, doc_id: str) -> DocRecord:
    record = ctx.view.get_doc(doc_id)
    if record is None:
        raise DocumentNotFoundError(f"expected an issued document, got unknown {doc_id!r}")
    if record.status == STATUS_REVOKED:
        raise DocumentRevokedError(f"{doc_id} was revoked")
    return record


def check_doc_issue(ctx: BlockContext, index: int, envelope: Envelope, body: DocIssue, content: bytes | None) -> None:
    validate_officer_of_zone(ctx, envelope.tx.signer, body.zone_id)
    if body.doc_type not in DOC_TYPES:
        raise UnknownDocTypeError(f"doc_type: expected one of {sorted(DOC_TYPES)}, got {body.doc_type!r}")
    if ctx.view.get_doc(body.doc_id) is not None:
        raise DocumentExistsError(f"{body.doc_id} is already issued; amend it instead")
    validate_new_content_hash(ctx, body.doc_hash)
    validate_attachments(ctx, body.doc_id, body.attachments)
    if index not in ctx.checked:
        validate_content(
            body.doc_type, body.doc_id, body.doc_hash, content, checked_before=envelope.tx_hash in ctx.verified
        )


def check_doc_amend(ctx: BlockContext, envelope: Envelope, body: DocAmend, content: bytes | None) -> DocRecord:
    validate_officer_of_zone(ctx, envelope.tx.signer, body.zone_id)
    record = get_active_document(ctx, body.doc_id)
    if body.supersedes != record.doc_hash:
        raise StaleSupersedesError(
            f"supersedes: expected the current version {record.doc_hash.hex()}, got {body.supersedes.hex()}"
        )
    validate_new_content_hash(ctx, body.doc_hash)
    validate_attachments(ctx, body.doc_id, body.attachments)
    validate_content(
        record.doc_type, body.doc_id, body.doc_hash, content, checked_before=envelope.tx_hash in ctx.verified
    )
    return record


def check_doc_revoke(ctx: BlockContext, envelope: Envelope, body: DocRevoke, content: bytes | None) -> DocRecord:
    validate_officer_of_zone(ctx, envelope.tx.signer, body.zone_id)
    record = get_active_document(ctx, body.doc_id)
    if body.doc_hash != record.doc_hash:
        raise StaleRevocationHashError(
            f"doc_hash: expected the current version {record.doc_hash.hex()}, got {body.doc_hash.hex()}"
        )
    if content is not None:
        raise MalformedTransactionError("documents: expected no content beside a revocation")
    return record


# --- execution -------------------------------------------------------------


def _write_doc_version(
    ctx: BlockContext, index: int, record: DocRecord, envelope: Envelope, content: bytes | None,
    attachments: tuple[Attachment, ...], *, entry_log_index: int | None = None,
) -> None:
    batch = ctx.batch
    entry = HistoryEntry(
        envelope.tx.kind, envelope.tx_hash, record.log_index if entry_log_index is None else entry_log_index,
        ctx.height, record.doc_hash, record.version,
    )
    batch.put(key_doc(record.doc_id), pack_record(record.to_wire()))
    batch.put(key_history(record.doc_id, record.history_len - 1), pack_record(entry.to_wire()))
    if content is not None:
        batch.put(key_content(ctx.height, index), content)
        batch.put(key_by_hash(record.doc_hash), pack_record({
            "doc_id": record.doc_id, "version": record.version, "height": ctx.height, "index": index,
        }))
    for attachment in attachments:
        batch.put(
            key_attachment(attachment.sha256),
            pack_record({
                "doc_id": record.doc_id, "version": record.version, "name": attachment.name,
                "media_type": attachment.media_type, "size": attachment.size,
            }),
        )
    ctx.changed_docs[record.doc_id] = record


def apply_transaction(
    ctx: BlockContext, index: int, tx_bytes: bytes, content: bytes | None, *, decoded: Envelope | None = None
) -> Envelope:
    """Check one transaction against the ledger as the block has left it so far, then execute it.

    All checks come before the first write, so a refused transaction leaves ``ctx`` as it was.
    An envelope whose signature verified before in this process is not checked again;
    ``decoded`` is ``Envelope.decode(tx_bytes)`` when the caller has it already.
    """
    remembered = get_verified_envelope(tx_bytes)
    envelope = remembered or decoded or Envelope.decode(tx_bytes)
    validate_chain_id(envelope, ctx.chain.genesis.chain_id)
    validate_not_replayed(ctx, envelope)
    if remembered is None:
        if not (index in ctx.checked or envelope.tx_hash in ctx.verified or envelope.tx_hash in ctx.signatures_checked):
            validate_signature(envelope)
        remember_verified_envelope(envelope)
    body = envelope.tx.body
    log_index = ctx.log.size
    if isinstance(body, DocIssue):
        check_doc_issue(ctx, index, envelope, body, content)
        record = DocRecord(body.doc_id, body.doc_type, STATUS_ACTIVE, 1, body.doc_hash, log_index, 1)
        ctx.batch.put(key_number(body.number, body.doc_id), b"")
        _write_doc_version(ctx, index, record, envelope, content, body.attachments)
    elif isinstance(body, DocAmend):
        current = check_doc_amend(ctx, envelope, body, content)
        record = DocRecord(
            body.doc_id, current.doc_type, STATUS_ACTIVE, current.version + 1, body.doc_hash, log_index,
            current.history_len + 1,
        )
        _write_doc_version(ctx, index, record, envelope, content, body.attachments)
    elif isinstance(body, DocRevoke):
        current = check_doc_revoke(ctx, envelope, body, content)
        # The state keeps pointing at the current version's leaf (DESIGN §6); the
        # revocation itself is found through the document's history.
        record = DocRecord(
            body.doc_id, current.doc_type, STATUS_REVOKED, current.version, current.doc_hash, current.log_index,
            current.history_len + 1, body.reason,
        )
        _write_doc_version(ctx, index, record, envelope, None, (), entry_log_index=log_index)
    else:
        validate_no_content(content, envelope.tx.kind)
        apply_membership_transaction(ctx, envelope)
    appended = ctx.log.append(ctx.batch, tx_bytes)
    location = TxLocation(ctx.height, index, appended)
    ctx.batch.put(key_tx(envelope.tx_hash), encode_location(location))
    ctx.seen_tx.add(envelope.tx_hash)
    ctx.locations.append(location)
    return envelope


def apply_membership_transaction(ctx: BlockContext, envelope: Envelope) -> None:
    """Officer and governance transactions (DESIGN §12), each checked, then applied."""
    body = envelope.tx.body
    if isinstance(body, OfficerRegister):
        check_officer_register(ctx, envelope, body)
        apply_officer_register(ctx, body)
    elif isinstance(body, OfficerRevoke):
        apply_officer_revoke(ctx, check_officer_revoke(ctx, envelope, body))
    elif isinstance(body, GovPropose):
        check_gov_propose(ctx, envelope, body)
        apply_gov_propose(ctx, envelope, body)
    elif isinstance(body, GovApprove):
        apply_gov_approve(ctx, envelope, check_gov_approve(ctx, envelope, body))
    elif isinstance(body, ZoneRotateKeys):
        check_zone_rotate_keys(ctx, envelope, body)
        apply_key_change(ctx, body.change)
    else:  # pragma: no cover - decoding admits no other body
        raise MalformedTransactionError(f"tx.kind: {envelope.tx.kind} has no rule")


def compute_set_change(ctx: BlockContext) -> SetChange | None:
    """The set this block hands to height + 2, when its changes change the set; written
    into the batch. Header height + 1 will carry its hash as ``next_validators_hash``."""
    if not ctx.membership_changed:
        return None
    validators = ctx.view.compute_active_validators()
    if validators == ctx.chain.validators_for(ctx.height + 1):
        return None
    change = SetChange(ctx.height + 2, validators)
    put_validators(ctx.batch, change)
    return change


def compute_valid_signatures(txs: Iterable[bytes], verified: frozenset[bytes]) -> frozenset[bytes]:
    """Hashes of the transactions (not already ``verified``) whose signatures verify,
    checked one after another before any rule runs.

    Back to back, the verifications run with the verifier hot in the CPU's caches: about
    11 µs a certificate less than one between every decode, parse and schema walk.
    Whatever fails here, or does not decode, is left to the in-order pass, which raises
    it at its place; the rules see exactly what they would without this pass.
    """
    envelopes = []
    for tx_bytes in txs:
        if get_verified_envelope(tx_bytes) is not None:
            continue  # verified before: apply_transaction finds it remembered
        try:
            envelope = Envelope.decode(tx_bytes)
        except LedgerError:
            continue
        if envelope.tx_hash not in verified:
            envelopes.append(envelope)
    passed = set()
    for envelope in envelopes:
        try:
            validate_signature(envelope)
        except LedgerError:
            continue
        passed.add(envelope.tx_hash)
        remember_verified_envelope(envelope)
    return frozenset(passed)


def compute_verified_envelope(tx_bytes: bytes, chain_id: str) -> Envelope:
    """The checks of a transaction that read no ledger state, in the order
    :func:`apply_transaction` runs them: decoding, the chain id, the signature; the
    envelope is then remembered as verified. Pure, so it may run off the event loop.

    ``apply_transaction`` checks whether it was committed before (a replay) between the
    chain id and the signature; a replayed envelope is the same bytes as the committed
    one, whose signature verified, so skipping that check here changes no answer.
    """
    remembered = get_verified_envelope(tx_bytes)
    envelope = Envelope.decode(tx_bytes) if remembered is None else remembered
    validate_chain_id(envelope, chain_id)
    if remembered is None:
        validate_signature(envelope)
        remember_verified_envelope(envelope)
    return envelope


def compute_content_hash(envelope: Envelope) -> bytes | None:
    """The hash of the content an executed transaction carried: an issue's or an
    amendment's ``doc_hash`` (its rules checked the content against it), else ``None``."""
    body = envelope.tx.body
    return body.doc_hash if isinstance(body, DocIssue | DocAmend) else None


def compute_state_root(ctx: BlockContext) -> bytes:
    """Fold the block's changed documents and records into the state tree (one batched update)."""
    tree = ctx.chain.state_tree(Overlay(ctx.chain.store, ctx.batch))
    if not ctx.changed_docs and not ctx.changed_state:
        return tree.root()
    updates = {H(doc_id.encode("utf-8")): record.state_value() for doc_id, record in ctx.changed_docs.items()}
    updates.update(ctx.changed_state)
    return tree.update(ctx.batch, updates)


def validate_roots(header: Header, log_size: int, log_root: bytes, state_root: bytes) -> None:
    if header.log_size != log_size:
        raise LogSizeMismatchError(
            f"header.log_size: expected {log_size}, got {header.log_size}", expected=log_size, found=header.log_size
        )
    if header.log_root != log_root:
        raise LogRootMismatchError(
            f"header.log_root: expected {log_root.hex()}, got {header.log_root.hex()}",
            expected=log_root, found=header.log_root,
        )
    if header.state_root != state_root:
        raise StateRootMismatchError(
            f"header.state_root: expected {state_root.hex()}, got {header.state_root.hex()}",
            expected=state_root, found=header.state_root,
        )


def execute_block(
    chain: Chain, block: Block, *, verified: frozenset[bytes] = frozenset(),
    verified_precommits: Set[bytes] = frozenset(), checked: frozenset[int] = frozenset(),
) -> ExecutedBlock:
    """Every check of a block against the chain's head; returns the batch, writes nothing.

    ``verified`` names transactions this node already checked in full (mempool): their
    signatures and document contents are not checked again, only bound by hash;
    ``verified_precommits`` the ``last_commit`` signatures already checked
    (:func:`ledger.blocks.compute_signature_digest`; the auditor's worker processes);
    ``checked`` the positions of transactions whose signature and content, as this
    block carries them, were checked in full (the auditor's workers): not even the
    content's hash is taken again.
    """
    header = block.header
    validate_header(chain, header, len(block.txs), block.last_commit, verified_precommits=verified_precommits)
    unchecked = [tx for index, tx in enumerate(block.txs) if index not in checked] if checked else block.txs
    ctx = BlockContext(
        chain, header.height, verified=verified, signatures_checked=compute_valid_signatures(unchecked, verified),
        checked=checked,
    )
    hashes = []
    content_hashes: list[bytes | None] = []
    for index, (tx_bytes, content) in enumerate(zip(block.txs, block.documents, strict=True)):
        try:
            envelope = apply_transaction(ctx, index, tx_bytes, content)
            hashes.append(envelope.tx_hash)
            content_hashes.append(compute_content_hash(envelope))
        except LedgerError as exc:
            exc.message = f"transaction {index}: {exc.message}"
            exc.tx_index = index
            raise
    log_size = ctx.log.size
    log_root = ctx.log.root()
    state_root = compute_state_root(ctx)
    validate_roots(header, log_size, log_root, state_root)
    return ExecutedBlock(
        block, ctx.batch, log_size, log_root, state_root, compute_set_change(ctx), ctx.membership_changed,
        tuple(hashes), tuple(content_hashes),
    )


def commit_block(
    chain: Chain, executed: ExecutedBlock, commit: CommitCertificate, *,
    verified_precommits: Set[bytes] = frozenset(),
) -> None:
    """Check the block's certificate, then write the block and all its effects atomically."""
    block = executed.block
    header = block.header
    block_hash = header.block_hash
    validate_commit(
        commit, chain_id=chain.genesis.chain_id, validators=chain.validators_for(header.height), height=header.height,
        block_hash=block_hash, verified=verified_precommits,
    )
    batch = executed.batch
    batch.put(key_block(header.height), StoredBlock.from_block(block, executed.content_hashes).encode())
    batch.put(key_header(header.height), header.encode())
    batch.put(key_commit(header.height), commit.encode())
    if block.last_commit is not None:
        # The certificate carried by h+1 becomes the canonical one for h.
        batch.put(key_commit(header.height - 1), block.last_commit.encode())
    batch.put(KEY_HEAD, encode_head(header.height, block_hash))
    chain.store.write(batch, sync=True)
    chain.height = header.height
    chain.head_hash = block_hash
    chain.head_header = header
    if executed.membership_changed:
        chain.load_membership()


def apply_block(
    chain: Chain, block: Block, commit: CommitCertificate, *, verified: frozenset[bytes] = frozenset()
) -> ExecutedBlock:
    """Validate ``block`` fully, check its certificate, and commit it; on any error nothing changes."""
    executed = execute_block(chain, block, verified=verified)
    commit_block(chain, executed, commit)
    return executed


@dataclass(frozen=True, slots=True)
class Rejected:
    """A candidate transaction the proposer left out, and why."""

    tx_bytes: bytes
    """The candidate as offered."""
    error: LedgerError
    """The rule it broke."""


def build_block(
    chain: Chain,
    candidates: Iterable[tuple[bytes, bytes | None]],
    *,
    round_: int,
    time_ms: int,
    last_commit: CommitCertificate | None,
    verified: frozenset[bytes] = frozenset(),
    max_txs: int | None = None,
    max_bytes: int | None = None,
) -> tuple[ExecutedBlock, list[Rejected]]:
    """The proposer's side: run candidates in order, keep the valid ones, fill in the header."""
    params = chain.consensus
    limit_txs = max_txs or params.max_block_txs
    limit_bytes = max_bytes or params.max_block_bytes
    height = chain.height + 1
    ctx = BlockContext(chain, height, verified=verified)
    txs: list[bytes] = []
    hashes: list[bytes] = []
    content_hashes: list[bytes | None] = []
    docs: list[bytes | None] = []
    rejected: list[Rejected] = []
    size = 0
    for tx_bytes, content in candidates:
        if len(txs) >= limit_txs:
            break
        item_size = len(tx_bytes) + (len(content) if content else 0)
        if size + item_size > limit_bytes:
            break
        try:
            envelope = apply_transaction(ctx, len(txs), tx_bytes, content)
        except LedgerError as exc:
            rejected.append(Rejected(tx_bytes, exc))
            continue
        txs.append(tx_bytes)
        hashes.append(envelope.tx_hash)
        content_hashes.append(compute_content_hash(envelope))
        docs.append(content)
        size += item_size
    validators = chain.validators_for(height)
    header = Header(
        chain_id=chain.genesis.chain_id,
        height=height,
        round=round_,
        time_ms=time_ms,
        prev_hash=chain.head_hash,
        proposer=compute_proposer(height, round_, len(validators)),
        tx_count=len(txs),
        log_size=ctx.log.size,
        log_root=ctx.log.root(),
        state_root=compute_state_root(ctx),
        validators_hash=compute_validators_hash(validators),
        next_validators_hash=compute_validators_hash(chain.validators_for(height + 1)),
        last_commit_hash=compute_last_commit_hash(last_commit),
    )
    block = Block(header, last_commit, tuple(txs), tuple(docs))
    executed = ExecutedBlock(
        block, ctx.batch, header.log_size, header.log_root, header.state_root, compute_set_change(ctx),
        ctx.membership_changed, tuple(hashes), tuple(content_hashes),
    )
    return executed, rejected
