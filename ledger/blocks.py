"""Blocks, votes, proposals and commit certificates (DESIGN §7).

A block is final the moment a commit certificate for its hash exists: at least
``floor(2n/3)+1`` distinct validators' precommits. :func:`validate_commit` is the one
place that decides whether a certificate is good; everything that accepts a block
(execution, sync, proof bundles, the auditor) goes through it.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from ledger.encoding import (
    ZERO_HASH,
    H,
    cb,
    decode_cb,
    expect_bytes,
    expect_int,
    expect_list,
    expect_map,
    expect_str,
)
from ledger.errors import (
    BlockMalformedError,
    CommitDuplicateSignerError,
    CommitError,
    CommitOrderError,
    CommitQuorumError,
    CommitSignatureError,
    CommitTargetError,
    CommitUnknownValidatorError,
    EncodingError,
    VoteError,
    VoteSignatureError,
)
from ledger.keys import PROPOSAL_DOMAIN, VOTE_DOMAIN, SigningKey, signing_bytes, verify_bytes
from ledger.limits import MAX_BLOCK_WIRE_BYTES

PREVOTE = "prevote"
PRECOMMIT = "precommit"
VOTE_TYPES = (PREVOTE, PRECOMMIT)


def compute_quorum(n: int) -> int:
    """Votes needed for a decision among ``n`` validators: ``floor(2n/3) + 1``."""
    return (2 * n) // 3 + 1


def compute_max_faulty(n: int) -> int:
    """``f = floor((n - 1) / 3)``: faults tolerated among ``n`` validators."""
    return (n - 1) // 3


def compute_proposer(height: int, round_: int, n: int) -> int:
    """Round-robin: the proposer of (h, r) is ``validators[(h + r) mod n]``."""
    return (height + round_) % n


_HEADER_FIELDS = frozenset(
    {
        "chain_id", "height", "round", "time_ms", "prev_hash", "proposer", "tx_count", "log_size",
        "log_root", "state_root", "validators_hash", "next_validators_hash", "last_commit_hash",
    }
)


@dataclass(frozen=True, slots=True)
class Header:
    """What validators sign (through its hash) and light clients check."""

    HASH_FIELDS: ClassVar[tuple[str, ...]] = (
        "prev_hash", "log_root", "state_root", "validators_hash", "next_validators_hash", "last_commit_hash",
    )
    chain_id: str
    """The genesis chain id."""
    height: int
    """1 for the first block after genesis."""
    round: int
    """Consensus round in which the block was decided."""
    time_ms: int
    """Proposer's clock, Unix milliseconds; strictly after the previous block's."""
    prev_hash: bytes
    """Previous block's hash; ``genesis_hash`` at height 1."""
    proposer: int
    """Validator index; must be ``(height + round) mod n``."""
    tx_count: int
    """Transactions in the block."""
    log_size: int
    """Leaves in the document log after this block."""
    log_root: bytes
    """RFC 9162 root of the document log after this block."""
    state_root: bytes
    """Sparse Merkle root of document status after this block."""
    validators_hash: bytes
    """``H(cb(validator keys))`` of the set that decides this block."""
    next_validators_hash: bytes
    """The same for the next block."""
    last_commit_hash: bytes
    """``H(cb(commit of the previous block))``; zeros at height 1."""

    def to_wire(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _HEADER_FIELDS}

    def encode(self) -> bytes:
        return cb(self.to_wire())

    @property
    def block_hash(self) -> bytes:
        return H(self.encode())

    def to_json(self) -> dict[str, Any]:
        """Header fields for display, bytes as hex (DESIGN §9 ``header_fields``)."""
        out: dict[str, Any] = {}
        for name in (
            "chain_id", "height", "round", "time_ms", "prev_hash", "proposer", "tx_count", "log_size",
            "log_root", "state_root", "validators_hash", "next_validators_hash", "last_commit_hash",
        ):
            value = getattr(self, name)
            out[name] = value.hex() if isinstance(value, bytes) else value
        return out

    @classmethod
    def from_wire(cls, value: Any) -> Header:
        m = expect_map(value, "header", _HEADER_FIELDS)
        return cls(
            chain_id=expect_str(m["chain_id"], "header.chain_id"),
            height=expect_int(m["height"], "header.height", 1),
            round=expect_int(m["round"], "header.round"),
            time_ms=expect_int(m["time_ms"], "header.time_ms"),
            prev_hash=expect_bytes(m["prev_hash"], "header.prev_hash", 32),
            proposer=expect_int(m["proposer"], "header.proposer"),
            tx_count=expect_int(m["tx_count"], "header.tx_count"),
            log_size=expect_int(m["log_size"], "header.log_size"),
            log_root=expect_bytes(m["log_root"], "header.log_root", 32),
            state_root=expect_bytes(m["state_root"], "header.state_root", 32),
            validators_hash=expect_bytes(m["validators_hash"], "header.validators_hash", 32),
            next_validators_hash=expect_bytes(m["next_validators_hash"], "header.next_validators_hash", 32),
            last_commit_hash=expect_bytes(m["last_commit_hash"], "header.last_commit_hash", 32),
        )

    @classmethod
    def decode(cls, data: bytes) -> Header:
        try:
            return cls.from_wire(decode_cb(data))
        except EncodingError as exc:
            raise BlockMalformedError(f"header: {exc}") from exc

    def with_changes(self, **changes: Any) -> Header:
        return replace(self, **changes)


# --- votes -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Vote:
    """A prevote or precommit for a block hash (``None`` is a vote for nil)."""

    chain_id: str
    """The genesis chain id."""
    type: str
    """``prevote`` or ``precommit``."""
    height: int
    """Height voted on."""
    round: int
    """Round voted in."""
    block_hash: bytes | None
    """The block voted for, or ``None`` for nil."""
    validator: int
    """Voter's index in the validator set."""

    def to_wire(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "type": self.type,
            "height": self.height,
            "round": self.round,
            "block_hash": self.block_hash,
            "validator": self.validator,
        }

    def signing_bytes(self) -> bytes:
        return signing_bytes(VOTE_DOMAIN, self.to_wire())

    def sign(self, key: SigningKey) -> SignedVote:
        return SignedVote(self, key.sign_bytes(self.signing_bytes()))

    @classmethod
    def from_wire(cls, value: Any) -> Vote:
        m = expect_map(value, "vote", frozenset({"chain_id", "type", "height", "round", "block_hash", "validator"}))
        vtype = expect_str(m["type"], "vote.type")
        if vtype not in VOTE_TYPES:
            raise VoteError(f"vote.type: expected prevote or precommit, got {vtype!r}")
        block_hash = m["block_hash"]
        return cls(
            expect_str(m["chain_id"], "vote.chain_id"),
            vtype,
            expect_int(m["height"], "vote.height", 1),
            expect_int(m["round"], "vote.round"),
            None if block_hash is None else expect_bytes(block_hash, "vote.block_hash", 32),
            expect_int(m["validator"], "vote.validator"),
        )


@dataclass(frozen=True, slots=True)
class SignedVote:
    """A vote with its validator's signature over the vote domain."""

    vote: Vote
    """The vote."""
    sig: bytes
    """Ed25519 signature over ``VOTE_DOMAIN || cb(vote)``."""

    def to_wire(self) -> dict[str, Any]:
        return {"vote": self.vote.to_wire(), "sig": self.sig}

    def encode(self) -> bytes:
        return cb(self.to_wire())

    @classmethod
    def from_wire(cls, value: Any) -> SignedVote:
        m = expect_map(value, "signed vote", frozenset({"vote", "sig"}))
        return cls(Vote.from_wire(m["vote"]), expect_bytes(m["sig"], "sig", 64))

    @classmethod
    def decode(cls, data: bytes) -> SignedVote:
        try:
            return cls.from_wire(decode_cb(data))
        except EncodingError as exc:
            raise VoteError(str(exc)) from exc

    def verify(self, validators: tuple[bytes, ...] | list[bytes]) -> None:
        """Raise unless signed by the validator the vote names."""
        index = self.vote.validator
        if index >= len(validators):
            raise VoteError(f"vote.validator: expected an index below {len(validators)}, got {index}")
        verify_bytes(validators[index], self.vote.signing_bytes(), self.sig, VoteSignatureError, "vote signature")


@dataclass(frozen=True, slots=True)
class Proposal:
    """The proposer's signed offer of a block for (height, round)."""

    chain_id: str
    """The genesis chain id."""
    height: int
    """Height proposed for."""
    round: int
    """Round proposed in."""
    block_hash: bytes
    """Hash of the proposed block's header."""
    pol_round: int
    """Round of the proof-of-lock this re-proposal relies on, or -1."""
    proposer: int
    """Proposer's validator index."""

    def to_wire(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "height": self.height,
            "round": self.round,
            "block_hash": self.block_hash,
            "pol_round": self.pol_round,
            "proposer": self.proposer,
        }

    def signing_bytes(self) -> bytes:
        return signing_bytes(PROPOSAL_DOMAIN, self.to_wire())

    @classmethod
    def from_wire(cls, value: Any) -> Proposal:
        m = expect_map(
            value, "proposal", frozenset({"chain_id", "height", "round", "block_hash", "pol_round", "proposer"})
        )
        pol_round = m["pol_round"]
        if type(pol_round) is not int or pol_round < -1:
            raise VoteError(f"proposal.pol_round: expected an integer >= -1, got {pol_round!r}")
        return cls(
            expect_str(m["chain_id"], "proposal.chain_id"),
            expect_int(m["height"], "proposal.height", 1),
            expect_int(m["round"], "proposal.round"),
            expect_bytes(m["block_hash"], "proposal.block_hash", 32),
            pol_round,
            expect_int(m["proposer"], "proposal.proposer"),
        )


# --- commit certificates ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommitSignature:
    """One validator's precommit signature inside a certificate."""

    validator: int
    """Index in the validator set."""
    sig: bytes
    """Signature over the precommit vote for the certified block."""


@dataclass(frozen=True, slots=True)
class CommitCertificate:
    """Proof that a quorum precommitted ``block_hash`` at (height, round)."""

    height: int
    """Certified block's height."""
    round: int
    """Round in which the precommits were cast."""
    block_hash: bytes
    """Certified block's hash."""
    signatures: tuple[CommitSignature, ...]
    """Sorted by validator index, one per validator."""

    def to_wire(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "round": self.round,
            "block_hash": self.block_hash,
            "signatures": [{"validator": s.validator, "sig": s.sig} for s in self.signatures],
        }

    def encode(self) -> bytes:
        return cb(self.to_wire())

    @property
    def commit_hash(self) -> bytes:
        return H(self.encode())

    def to_json(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "round": self.round,
            "block_hash": self.block_hash.hex(),
            "signatures": [{"validator": s.validator, "sig": s.sig.hex()} for s in self.signatures],
        }

    @classmethod
    def from_json(cls, value: Any) -> CommitCertificate:
        """Parse the hex JSON form (proof bundles, API), or raise ``CommitError``."""
        try:
            m = expect_map(value, "commit", frozenset({"height", "round", "block_hash", "signatures"}))
            signatures = [
                {**expect_map(s, f"commit.signatures[{i}]"), "sig": _hex(s.get("sig"), f"commit.signatures[{i}].sig", 64)}
                for i, s in enumerate(expect_list(m["signatures"], "commit.signatures"))
            ]
            wire = {**m, "block_hash": _hex(m["block_hash"], "commit.block_hash", 32), "signatures": signatures}
            return cls.from_wire(wire)
        except EncodingError as exc:
            raise CommitError(str(exc)) from exc

    @classmethod
    def from_wire(cls, value: Any) -> CommitCertificate:
        m = expect_map(value, "commit", frozenset({"height", "round", "block_hash", "signatures"}))
        sigs = []
        for i, item in enumerate(expect_list(m["signatures"], "commit.signatures")):
            s = expect_map(item, f"commit.signatures[{i}]", frozenset({"validator", "sig"}))
            sigs.append(
                CommitSignature(
                    expect_int(s["validator"], f"commit.signatures[{i}].validator"),
                    expect_bytes(s["sig"], f"commit.signatures[{i}].sig", 64),
                )
            )
        return cls(
            expect_int(m["height"], "commit.height", 1),
            expect_int(m["round"], "commit.round"),
            expect_bytes(m["block_hash"], "commit.block_hash", 32),
            tuple(sigs),
        )

    @classmethod
    def decode(cls, data: bytes) -> CommitCertificate:
        try:
            return cls.from_wire(decode_cb(data))
        except EncodingError as exc:
            raise CommitError(str(exc)) from exc

    def precommit_for(self, chain_id: str, validator: int) -> Vote:
        return Vote(chain_id, PRECOMMIT, self.height, self.round, self.block_hash, validator)


def _hex(value: Any, what: str, size: int) -> bytes:
    text = expect_str(value, what)
    try:
        raw = bytes.fromhex(text)
    except ValueError as exc:
        raise EncodingError(f"{what}: expected hex, got {text[:20]!r}") from exc
    if len(raw) != size or raw.hex() != text:
        raise EncodingError(f"{what}: expected {size} bytes in lowercase hex, got {text[:20]!r}")
    return raw


def build_commit(votes: list[SignedVote]) -> CommitCertificate:
    """A certificate from precommits for one block (one per validator, sorted)."""
    if not votes:
        raise CommitQuorumError("expected precommits, got none")
    first = votes[0].vote
    by_validator: dict[int, bytes] = {}
    for sv in votes:
        v = sv.vote
        if (v.type, v.height, v.round, v.block_hash) != (PRECOMMIT, first.height, first.round, first.block_hash):
            raise CommitTargetError("expected precommits for one block, height and round")
        by_validator.setdefault(v.validator, sv.sig)
    if first.block_hash is None:
        raise CommitTargetError("expected precommits for a block, got nil")
    sigs = tuple(CommitSignature(i, by_validator[i]) for i in sorted(by_validator))
    return CommitCertificate(first.height, first.round, first.block_hash, sigs)


def compute_signature_digest(public: bytes, message: bytes, sig: bytes) -> bytes:
    """Names one (key, message, signature) triple, so a set can hold signatures checked elsewhere
    (the auditor verifies precommits in worker processes). Key and signature have fixed sizes,
    so the concatenation is unambiguous."""
    return H(public + sig + message)


def validate_commit(
    commit: CommitCertificate,
    *,
    chain_id: str,
    validators: tuple[bytes, ...] | list[bytes],
    height: int,
    block_hash: bytes,
    verified: Set[bytes] = frozenset(),
) -> None:
    """Raise unless ``commit`` certifies ``block_hash`` at ``height`` by a quorum of ``validators``.

    ``verified`` holds :func:`compute_signature_digest` values of precommit signatures
    already verified; those are not verified again (every other rule still is).
    """
    if commit.height != height:
        raise CommitTargetError(f"commit.height: expected {height}, got {commit.height}", expected=height, found=commit.height)
    if commit.block_hash != block_hash:
        raise CommitTargetError(
            f"commit.block_hash: expected {block_hash.hex()}, got {commit.block_hash.hex()}",
            expected=block_hash, found=commit.block_hash,
        )
    n = len(validators)
    previous = -1
    for entry in commit.signatures:
        if entry.validator >= n:
            raise CommitUnknownValidatorError(
                f"expected a validator index below {n}, got {entry.validator}", expected=f"below {n}", found=entry.validator
            )
        if entry.validator == previous:
            raise CommitDuplicateSignerError(f"validator {entry.validator} signs twice")
        if entry.validator < previous:
            raise CommitOrderError(f"expected validator indexes ascending, got {entry.validator} after {previous}")
        previous = entry.validator
    needed = compute_quorum(n)
    if len(commit.signatures) < needed:
        raise CommitQuorumError(
            f"expected at least {needed} of {n} validators, got {len(commit.signatures)}",
            expected=f"at least {needed} signatures", found=len(commit.signatures),
        )
    for entry in commit.signatures:
        vote = commit.precommit_for(chain_id, entry.validator)
        message = vote.signing_bytes()
        if verified and compute_signature_digest(validators[entry.validator], message, entry.sig) in verified:
            continue
        verify_bytes(
            validators[entry.validator],
            message,
            entry.sig,
            CommitSignatureError,
            f"precommit of validator {entry.validator}",
        )


# --- blocks ----------------------------------------------------------------

_BLOCK_FIELDS = frozenset({"header", "last_commit", "txs", "documents"})


@dataclass(frozen=True, slots=True)
class Block:
    """A header, the previous block's commit, the transactions and the document contents."""

    header: Header
    """The block's header."""
    last_commit: CommitCertificate | None
    """Certificate of the previous block; ``None`` at height 1."""
    txs: tuple[bytes, ...]
    """Canonical envelope bytes, in log order."""
    documents: tuple[bytes | None, ...]
    """For each transaction, the document's JCS bytes (issue and amend) or ``None``."""
    encoded: bytes | None = field(default=None, compare=False, repr=False)
    """The wire bytes when decoded from them."""

    @property
    def block_hash(self) -> bytes:
        return self.header.block_hash

    @property
    def height(self) -> int:
        return self.header.height

    def to_wire(self) -> dict[str, Any]:
        return {
            "header": self.header.to_wire(),
            "last_commit": None if self.last_commit is None else self.last_commit.to_wire(),
            "txs": list(self.txs),
            "documents": list(self.documents),
        }

    def encode(self) -> bytes:
        if self.encoded is not None:
            return self.encoded
        return cb(self.to_wire())

    @classmethod
    def decode(cls, data: bytes, *, max_bytes: int = MAX_BLOCK_WIRE_BYTES) -> Block:
        if len(data) > max_bytes:
            raise BlockMalformedError(f"expected a block under {max_bytes} bytes, got {len(data)}")
        try:
            m = expect_map(decode_cb(data), "block", _BLOCK_FIELDS)
            header, last_commit, txs = decode_block_frame(m)
            documents = decode_per_tx_bytes(m["documents"], "documents")
        except EncodingError as exc:
            raise BlockMalformedError(str(exc)) from exc
        if len(documents) != len(txs):
            raise BlockMalformedError(f"documents: expected one entry per transaction ({len(txs)}), got {len(documents)}")
        return cls(header, last_commit, txs, documents, data)


def decode_block_frame(m: dict[str, Any]) -> tuple[Header, CommitCertificate | None, tuple[bytes, ...]]:
    """The header, ``last_commit`` and ``txs`` of a decoded block map (the wire block, or
    the stored record of :mod:`ledger.chain`); raises an :class:`EncodingError`."""
    header = Header.from_wire(m["header"])
    raw_commit = m["last_commit"]
    last_commit = None if raw_commit is None else CommitCertificate.from_wire(raw_commit)
    txs = tuple(expect_bytes(t, f"txs[{i}]") for i, t in enumerate(expect_list(m["txs"], "txs")))
    return header, last_commit, txs


def decode_per_tx_bytes(value: Any, what: str, size: int | None = None) -> tuple[bytes | None, ...]:
    """A list with one ``bytes`` or ``None`` per transaction (contents, content hashes)."""
    return tuple(None if d is None else expect_bytes(d, f"{what}[{i}]", size) for i, d in enumerate(expect_list(value, what)))


def compute_last_commit_hash(last_commit: CommitCertificate | None) -> bytes:
    return ZERO_HASH if last_commit is None else last_commit.commit_hash
