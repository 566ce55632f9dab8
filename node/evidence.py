"""Equivocation evidence: checking it, keeping it across restarts, and reading it back.

When a validator signs two different votes (or proposals) for one height, round and
type, the consensus machine reports an :class:`~node.votes.Evidence`. This module
owns what happens to it afterwards:

* :func:`validate_evidence` is the independent check anyone can run on a piece of
  evidence with nothing but the chain id and the validator set: both messages validly
  signed by the same validator, for the same height, round and type, and different.
* :class:`EvidenceLog` keeps each piece on disk (``evidence.jsonl`` in its directory),
  one JSON line per entry, appended and fsynced (``node/durable.py``). An entry holds
  both signed messages as hex of their canonical bytes, so it can be re-checked
  anywhere, plus validator, height, round, type and the time this node saw it. The
  log keeps the first piece per (validator, height, round, type), at most
  :data:`MAX_ENTRIES_PER_VALIDATOR` per validator (so one equivocator cannot crowd out
  the others) and :data:`MAX_ENTRIES` in all; beyond that new evidence is counted in
  ``dropped`` and logged, never written.

An entry's ``seq`` is its line number in the file: the file is only ever appended to, so
``seq`` is a stable cursor for paging (``entries(since=seq, limit=n)``). A line cut short
by a crash is removed on open (it was never acknowledged); a damaged line in the middle
is skipped and keeps its number, and every line after it is still read.
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.blocks import VOTE_TYPES, SignedVote
from ledger.encoding import bounded_repr
from ledger.errors import EvidenceInvalidError, LedgerError
from ledger.limits import MAX_EVIDENCE_ENTRIES, MAX_EVIDENCE_ENTRIES_PER_VALIDATOR, MAX_EVIDENCE_LINE_BYTES
from node.durable import DurableAppender, create_durable, make_dirs_durable
from node.messages import SignedProposal
from node.votes import Evidence

FILE_NAME = "evidence.jsonl"
PROPOSAL_TYPE = "proposal"
"""The ``type`` of evidence made of two proposals (votes use ``prevote``/``precommit``)."""
MAX_ENTRIES = MAX_EVIDENCE_ENTRIES
MAX_ENTRIES_PER_VALIDATOR = MAX_EVIDENCE_ENTRIES_PER_VALIDATOR
MAX_LINE_BYTES = MAX_EVIDENCE_LINE_BYTES

_ENTRY_FIELDS = frozenset({"validator", "height", "round", "type", "seen_ms", "first", "second"})

log = logging.getLogger(__name__)

EvidenceKey = tuple[int, int, int, str]
"""(validator, height, round, type) that the two messages of a piece of evidence share."""


def compute_message_key(message: SignedVote | SignedProposal) -> EvidenceKey:
    """(validator, height, round, type) of one signed vote or proposal."""
    if isinstance(message, SignedVote):
        v = message.vote
        return (v.validator, v.height, v.round, v.type)
    p = message.proposal
    return (p.proposer, p.height, p.round, PROPOSAL_TYPE)


def validate_evidence(evidence: Evidence, chain_id: str, validators: Sequence[bytes]) -> None:
    """Raise unless ``evidence`` proves an equivocation on chain ``chain_id``.

    Checks, in this order: two votes or two proposals; the same validator, height,
    round and type; both for ``chain_id``; different signed content (the same vote
    signed twice is not equivocation); both signatures by that validator's key. Raises
    :class:`~ledger.errors.EvidenceInvalidError`, or the message's own
    :class:`~ledger.errors.VoteError` / :class:`~ledger.errors.VoteSignatureError`.
    """
    first, second = evidence.first, evidence.second
    if type(first) is not type(second):
        raise EvidenceInvalidError(
            f"expected two votes or two proposals, got a {type(first).__name__} and a {type(second).__name__}"
        )
    first_key, second_key = compute_message_key(first), compute_message_key(second)
    if first_key != second_key:
        raise EvidenceInvalidError(
            f"expected one (validator, height, round, type), got {first_key} and {second_key}"
        )
    for name, message in (("first", first), ("second", second)):
        content = message.vote if isinstance(message, SignedVote) else message.proposal
        if content.chain_id != chain_id:
            raise EvidenceInvalidError(f"{name}: expected chain {chain_id!r}, got {bounded_repr(content.chain_id)}")
    if _signed_content(first) == _signed_content(second):
        raise EvidenceInvalidError("expected two different signed messages, got the same content twice")
    keys = tuple(validators)
    first.verify(keys)
    second.verify(keys)


def _signed_content(message: SignedVote | SignedProposal) -> object:
    return message.vote if isinstance(message, SignedVote) else message.proposal


def _decode_message(data: bytes, type_: str) -> SignedVote | SignedProposal:
    return SignedProposal.decode(data) if type_ == PROPOSAL_TYPE else SignedVote.decode(data)


@dataclass(frozen=True, slots=True)
class EvidenceEntry:
    """One piece of evidence as this node recorded it."""

    seq: int
    """Position in the log (its line number, from 0): a stable paging cursor."""
    seen_ms: int
    """This node's clock, Unix milliseconds, when the second message arrived."""
    evidence: Evidence
    """The two conflicting signed messages, first the one that was counted."""

    @property
    def key(self) -> EvidenceKey:
        return compute_message_key(self.evidence.first)

    def to_json(self) -> dict[str, Any]:
        """The entry as the API serves it: the log line's fields plus ``seq``."""
        return {"seq": self.seq, **self._fields()}

    def _fields(self) -> dict[str, Any]:
        validator, height, round_, type_ = self.key
        return {
            "validator": validator,
            "height": height,
            "round": round_,
            "type": type_,
            "seen_ms": self.seen_ms,
            "first": self.evidence.first.encode().hex(),
            "second": self.evidence.second.encode().hex(),
        }

    def encode(self) -> bytes:
        """One line of the log (without its newline): JSON, keys sorted, no spaces."""
        return json.dumps(self._fields(), sort_keys=True, separators=(",", ":")).encode("ascii")

    @classmethod
    def decode(cls, line: bytes, seq: int) -> EvidenceEntry:
        """Parse a log line into an entry, or raise EvidenceInvalidError.

        The stated validator, height, round and type must be those of the messages.
        Signatures are not checked here (see :func:`validate_evidence`).
        """
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise EvidenceInvalidError(f"entry {seq}: expected a JSON object, got unreadable text") from exc
        if not isinstance(value, dict) or set(value) != _ENTRY_FIELDS:
            found = sorted(value) if isinstance(value, dict) else type(value).__name__
            raise EvidenceInvalidError(f"entry {seq}: expected fields {sorted(_ENTRY_FIELDS)}, got {found}")
        type_ = value["type"]
        if type_ not in (*VOTE_TYPES, PROPOSAL_TYPE):
            raise EvidenceInvalidError(f"entry {seq}: type: expected prevote, precommit or proposal, got {type_!r}")
        seen_ms = value["seen_ms"]
        if type(seen_ms) is not int or seen_ms < 0:
            raise EvidenceInvalidError(f"entry {seq}: seen_ms: expected an integer >= 0, got {seen_ms!r}")
        try:
            first = _decode_message(bytes.fromhex(value["first"]), type_)
            second = _decode_message(bytes.fromhex(value["second"]), type_)
        except (TypeError, ValueError, LedgerError) as exc:
            raise EvidenceInvalidError(f"entry {seq}: expected two signed messages in hex, got {exc}") from exc
        entry = cls(seq, seen_ms, Evidence(first, second))
        stated = (value["validator"], value["height"], value["round"], type_)
        if stated != entry.key or compute_message_key(second) != entry.key:
            raise EvidenceInvalidError(f"entry {seq}: expected the messages' own {entry.key}, got {stated}")
        return entry


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class EvidenceLog:
    """The node's durable, bounded, de-duplicated record of equivocation evidence."""

    def __init__(
        self,
        directory: str | Path,
        *,
        max_entries: int = MAX_ENTRIES,
        max_per_validator: int = MAX_ENTRIES_PER_VALIDATOR,
        clock: Callable[[], int] = _now_ms,
    ) -> None:
        self.path = Path(directory) / FILE_NAME
        self.max_entries = max_entries
        self.max_per_validator = max_per_validator
        self.clock = clock
        self.dropped = 0
        """Evidence not written because a bound was reached (since this process started)."""
        self._entries: list[EvidenceEntry] = []
        self._seqs: list[int] = []
        self._keys: set[EvidenceKey] = set()
        self._per_validator: dict[int, int] = {}
        self._lines = 0
        make_dirs_durable(self.path.parent)
        if not self.path.exists():
            create_durable(self.path, b"")
        size = self._read()
        self._appender = DurableAppender(self.path, size)

    def __len__(self) -> int:
        return len(self._entries)

    def _read(self) -> int:
        """Load every readable entry; cut a torn last line; return the good length."""
        data = self.path.read_bytes()
        good = data.rfind(b"\n") + 1
        if good < len(data):
            # A crash tore the last append; it was never acknowledged, so cut it off.
            log.warning("evidence log %s: cutting a torn last line of %d bytes", self.path, len(data) - good)
            with open(self.path, "r+b") as handle:
                handle.truncate(good)
                handle.flush()
                os.fsync(handle.fileno())
        lines = data[:good].split(b"\n")[:-1]
        for seq, line in enumerate(lines):
            try:
                if len(line) > MAX_LINE_BYTES:
                    raise EvidenceInvalidError(f"entry {seq}: expected at most {MAX_LINE_BYTES} bytes, got {len(line)}")
                entry = EvidenceEntry.decode(line, seq)
            except EvidenceInvalidError as exc:
                log.warning("evidence log %s: skipping a damaged line: %s", self.path, exc)
                continue
            if entry.key not in self._keys:
                self._remember(entry)
        self._lines = len(lines)
        return good

    def _remember(self, entry: EvidenceEntry) -> None:
        self._entries.append(entry)
        self._seqs.append(entry.seq)
        self._keys.add(entry.key)
        validator = entry.key[0]
        self._per_validator[validator] = self._per_validator.get(validator, 0) + 1

    def append(self, evidence: Evidence) -> EvidenceEntry | None:
        """Record ``evidence`` durably and return its entry; ``None`` when it is not written
        (the same (validator, height, round, type) is already held, or a bound is reached).

        Raises :class:`~ledger.errors.StoreWriteError` when the disk refuses the entry.
        """
        key = compute_message_key(evidence.first)
        if key in self._keys:
            return None
        if len(self._entries) >= self.max_entries or self._per_validator.get(key[0], 0) >= self.max_per_validator:
            self.dropped += 1
            log.warning("evidence log %s is full for %s; evidence not kept (%d dropped)", self.path, key, self.dropped)
            return None
        entry = EvidenceEntry(self._lines, self.clock(), evidence)
        self._appender.append(entry.encode() + b"\n", f"evidence entry {entry.seq}")
        self._lines += 1
        self._remember(entry)
        return entry

    def entries(self, *, since: int = 0, limit: int = 100) -> list[EvidenceEntry]:
        """Up to ``limit`` entries whose ``seq`` is at least ``since``, oldest first."""
        start = bisect.bisect_left(self._seqs, since)
        return self._entries[start:start + max(0, limit)]

    def close(self) -> None:
        self._appender.close()
