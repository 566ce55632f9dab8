"""What an audit found: the report, its progress figures and its first discrepancy.

:class:`AuditReport` is what ``zoneledger audit`` prints and writes as JSON: heights and
counts, documents per type and zone, per-zone officer activity, revocations, officer
changes and the node's equivocation evidence, filled in by :class:`Tally` from blocks
that passed. :func:`compute_failure` turns the error a rule raised into the report's
:class:`AuditFailure`; the values that differ are read from the error's ``expected`` and
``found`` (set where the rule raised it), never parsed out of its message.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ledger.blocks import Block
from ledger.errors import LedgerError
from ledger.transactions import (
    DocAmend,
    DocIssue,
    DocRevoke,
    Envelope,
    GovApprove,
    GovPropose,
    OfficerRegister,
    OfficerRevoke,
    ZoneRotateKeys,
)


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


def compute_failure(height: int, error: LedgerError) -> AuditFailure:
    """The report's failure for ``error``, found at ``height``.

    The differing values are the error's own ``expected``/``found``; a rule that wraps
    another (``block.last_commit`` around ``commit.signature_invalid``) shows its
    cause's when it has none itself.
    """
    cause = error.__cause__ if isinstance(error.__cause__, LedgerError) else None
    differs = cause if cause is not None and error.expected is None and error.found is None else error
    return AuditFailure(
        height=height,
        tx_index=error.tx_index,
        rule=error.code,
        message=str(error),
        expected=differs.expected,
        found=differs.found,
        cause=None if cause is None else cause.code,
    )


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
    governance: list[dict[str, Any]] = field(default_factory=list)
    """Each governance transaction (DESIGN §12): kind, signer, proposal id and action, height."""
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
            f"officer changes {len(self.officer_changes)}, governance transactions {len(self.governance)}, "
            f"equivocation evidence {len(self.evidence)}"
        )
        if self.failure is not None:
            lines += self.failure.describe()
        return lines


class Tally:
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
            elif isinstance(body, GovPropose | GovApprove | ZoneRotateKeys):
                entry: dict[str, Any] = {"kind": body.KIND, "signer": signer.hex(), "height": block.height, "tx_index": index}
                if isinstance(body, GovPropose):
                    entry.update(proposal_id=envelope.tx_hash.hex(), action=body.action.TYPE)
                elif isinstance(body, GovApprove):
                    entry["proposal_id"] = body.proposal_id.hex()
                else:
                    entry["zone_id"] = body.zone_id
                report.governance.append(entry)
        report.transactions += len(block.txs)
