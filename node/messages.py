"""Consensus wire messages that ``ledger.blocks`` does not define: the signed proposal.

Votes travel as :class:`ledger.blocks.SignedVote`; a proposal travels as a
:class:`SignedProposal`, the proposer's Ed25519 signature over ``PROPOSAL_DOMAIN ||
cb(proposal)``. Commit certificates travel as :class:`ledger.blocks.CommitCertificate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.blocks import CommitCertificate, Proposal, SignedVote
from ledger.encoding import cb, decode_cb, expect_bytes, expect_map
from ledger.errors import EncodingError, VoteError, VoteSignatureError
from ledger.keys import SigningKey, verify_bytes


@dataclass(frozen=True, slots=True)
class SignedProposal:
    """A proposal with its proposer's signature over the proposal domain."""

    proposal: Proposal
    """The proposal."""
    sig: bytes
    """Ed25519 signature over ``PROPOSAL_DOMAIN || cb(proposal)``."""

    def to_wire(self) -> dict[str, Any]:
        return {"proposal": self.proposal.to_wire(), "sig": self.sig}

    def encode(self) -> bytes:
        return cb(self.to_wire())

    @classmethod
    def from_wire(cls, value: Any) -> SignedProposal:
        m = expect_map(value, "signed proposal", frozenset({"proposal", "sig"}))
        return cls(Proposal.from_wire(m["proposal"]), expect_bytes(m["sig"], "sig", 64))

    @classmethod
    def decode(cls, data: bytes) -> SignedProposal:
        try:
            return cls.from_wire(decode_cb(data))
        except EncodingError as exc:
            raise VoteError(str(exc)) from exc

    def verify(self, validators: tuple[bytes, ...] | list[bytes]) -> None:
        """Raise unless signed by the validator the proposal names."""
        index = self.proposal.proposer
        if index >= len(validators):
            raise VoteError(f"proposal.proposer: expected an index below {len(validators)}, got {index}")
        verify_bytes(
            validators[index], self.proposal.signing_bytes(), self.sig, VoteSignatureError, "proposal signature"
        )


def sign_proposal(proposal: Proposal, key: SigningKey) -> SignedProposal:
    """Sign ``proposal`` with ``key`` (Ed25519 is deterministic, so this is pure)."""
    return SignedProposal(proposal, key.sign_bytes(proposal.signing_bytes()))


ConsensusMessage = SignedVote | SignedProposal | CommitCertificate
"""Everything validators gossip to each other during consensus."""
