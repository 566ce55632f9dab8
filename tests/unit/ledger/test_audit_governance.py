"""The auditor's replay of a chain with governance: a clean one passes and lists every
governance transaction; one whose validators executed a proposal on too few approvals
is caught at that block."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger import governance
from ledger.audit import AuditReport, StoreSource, audit_chain
from ledger.store import LevelDBStore
from scripts.devkit import Alliance, make_alliance


def build(alliance: Alliance, root: Path, *, third_approval: bool = True) -> None:
    """Four blocks: a zone proposed and approved by three of four admins (or, forged,
    two), empty blocks across the change of set, the last signed by the five."""
    chain = alliance.chain(LevelDBStore(root / "ledger"))
    try:
        propose = alliance.gov_propose("EG-TEDA", alliance.zone_add("HU-CSEPEL", "Csepel Free Port", "HU"))
        alliance.commit_next(chain, [(propose, None), (alliance.gov_approve("BY-GREATSTONE", propose.tx_hash), None)])
        alliance.commit_next(chain, [(alliance.gov_approve("DJ-DIFTZ", propose.tx_hash), None)] if third_approval else [])
        alliance.commit_next(chain, [])
        alliance.commit_next(chain, [])
    finally:
        chain.store.close()


def audit(root: Path, alliance: Alliance) -> AuditReport:
    source = StoreSource(root)
    try:
        return audit_chain(source, alliance.genesis, workers=1)
    finally:
        source.close()


def test_a_chain_with_governance_replays_clean(tmp_path: Path) -> None:
    alliance = make_alliance(4)
    build(alliance, tmp_path)
    report = audit(tmp_path, alliance)
    assert report.failure is None, report.failure
    assert report.last_height == 4
    assert [(g["kind"], g["height"]) for g in report.governance] == [
        ("gov.propose", 1), ("gov.approve", 1), ("gov.approve", 2),
    ]
    assert report.governance[0]["action"] == "zone.add"


def test_a_forged_approval_count_is_caught_where_it_was_executed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Validators that count two approvals of four members as enough commit block 1
    with the zone admitted; the replay, counting by the rules, finds the state root
    of block 1 wrong."""
    alliance = make_alliance(4)
    with monkeypatch.context() as patched:
        patched.setattr(governance, "compute_approvals_needed", lambda members: 2)
        build(alliance, tmp_path, third_approval=False)
    report = audit(tmp_path, alliance)
    assert report.failure is not None
    assert (report.failure.height, report.failure.rule) == (1, "block.state_root")
