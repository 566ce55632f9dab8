"""The auditor's replay: re-check a whole chain from genesis, rule by rule (PROTOCOL §16).

:func:`audit_chain` reads every block and its stored certificate from a
:class:`BlockSource` and applies every rule the validators applied again, by code the
auditor runs; the first discrepancy stops it, and the :class:`AuditReport` names the
height, the transaction, the rule (the error code) and the values that differ.

The parts, one module each:

* :mod:`ledger.audit.sources` — where blocks come from (:class:`BlockSource`, a stopped
  node's LevelDB as :class:`StoreSource`);
* :mod:`ledger.audit.pipeline` — signatures and stateless document checks in a process
  pool, ahead of execution;
* :mod:`ledger.audit.replay` — :func:`audit_chain`, the rules in a validator's order;
* :mod:`ledger.audit.report` — the report, its progress figures and its failure.
"""

from __future__ import annotations

from ledger.audit.replay import audit_chain
from ledger.audit.report import AuditFailure, AuditProgress, AuditReport
from ledger.audit.sources import BlockSource, SourceBlock, StoreSource, read_evidence

__all__ = [
    "AuditFailure",
    "AuditProgress",
    "AuditReport",
    "BlockSource",
    "SourceBlock",
    "StoreSource",
    "audit_chain",
    "read_evidence",
]
