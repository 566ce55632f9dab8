"""Precommit signatures a node has already verified, so that a certificate assembled from
them is not verified again.

At 58 zones a height's certificate holds 39 precommits, and a validator meets it (or a
sibling of it) up to four times: as the votes it counted, as the certificate its own
decision carries, as the certificates its peers broadcast after deciding, and as the
``last_commit`` of the next block. Each precommit signature is verified the first time
only; every other rule of :func:`ledger.blocks.validate_commit` is still checked each
time. Digests are :func:`ledger.blocks.compute_signature_digest`, which binds key,
message and signature, so a digest can only be present for a signature that verified.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence, Set

from ledger.blocks import PRECOMMIT, CommitCertificate, SignedVote, compute_signature_digest

HEIGHTS_AHEAD = 2
"""Signatures of heights beyond the head + this are not remembered: a Byzantine validator
may sign precommits for any height, and the cache must stay bounded whatever it signs."""


class VerifiedPrecommits:
    """Digests of verified precommit signatures, forgotten once their height is old."""

    def __init__(
        self, validators: tuple[bytes, ...] | list[bytes] | Callable[[int], tuple[bytes, ...]], *, head: int | None = 0,
    ) -> None:
        """``validators``: the set, or the set of a height when it changes (DESIGN §12).
        ``head=None`` remembers every height (the simulator, which forgets nothing)."""
        fixed = validators
        self.validators_for: Callable[[int], Sequence[bytes]] = (
            fixed if callable(fixed) else (lambda height: fixed)  # type: ignore[arg-type,return-value]
        )
        self.head = head
        self._digests: set[bytes] = set()
        self._by_height: dict[int, list[bytes]] = {}

    @property
    def digests(self) -> Set[bytes]:
        """The set to pass as ``verified`` to ``validate_commit`` (live, not a copy)."""
        return self._digests

    def add_vote(self, signed: SignedVote) -> None:
        """Remember a precommit for a block whose signature was just verified."""
        vote = signed.vote
        if vote.type != PRECOMMIT or vote.block_hash is None:
            return
        key = self.validators_for(vote.height)[vote.validator]
        self._add(vote.height, compute_signature_digest(key, vote.signing_bytes(), signed.sig))

    def add_commit(self, commit: CommitCertificate, chain_id: str) -> None:
        """Remember every signature of a certificate that ``validate_commit`` just accepted."""
        validators = self.validators_for(commit.height)
        for entry in commit.signatures:
            message = commit.precommit_for(chain_id, entry.validator).signing_bytes()
            self._add(commit.height, compute_signature_digest(validators[entry.validator], message, entry.sig))

    def forget_below(self, head: int) -> None:
        """The chain's head is now ``head``: only its certificate (the next block's
        ``last_commit``) and later ones can still be met."""
        self.head = head
        for height in [h for h in self._by_height if h < head]:
            self._digests.difference_update(self._by_height.pop(height))

    def _add(self, height: int, digest: bytes) -> None:
        if self.head is not None and not self.head <= height <= self.head + HEIGHTS_AHEAD:
            return
        if digest not in self._digests:
            self._digests.add(digest)
            self._by_height.setdefault(height, []).append(digest)
