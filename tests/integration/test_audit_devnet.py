"""``zoneledger audit`` on a chain built by a real devnet: through the member API while it
runs, from a node's data directory once stopped, and failing on a corrupted LevelDB."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from netutil import make_layout

from ledger.blocks import Block
from ledger.chain import key_block
from ledger.store import LevelDBStore, WriteBatch
from scripts.devnet import EXAMPLES, REPO_ROOT, Devnet, submit_examples

pytestmark = pytest.mark.integration


def zoneledger(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scripts.cli", *map(str, args)], cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=300,
    )


def test_audit_through_the_api_and_from_the_data_dir_then_corrupted(tmp_path: Path) -> None:
    layout = make_layout(tmp_path, zones=4, heartbeat_ms=60_000)
    devnet = Devnet(layout)
    devnet.start()
    try:
        devnet.wait_healthy()
        submit_examples(layout, lambda text: None)
        report_path = tmp_path / "api-report.json"
        node = zoneledger(
            "audit", "--node", layout.zones[1].url, "--key", layout.auditor_key, "--genesis", layout.genesis,
            "--report", report_path, "--workers", "2",
        )
        assert node.returncode == 0, node.stdout + node.stderr
        assert "audit PASSED" in node.stdout
        report = json.loads(report_path.read_text())
        assert report["passed"] and report["blocks"] >= 1
        zones = {z.zone_id for z in layout.zones}
        assert sum(report["documents_by_type"].values()) == sum(1 for *_, zone in EXAMPLES if zone in zones)
        assert report["amendments"] == 1 and len(report["revocations"]) == 1
    finally:
        devnet.stop()

    data_dir = layout.zones[0].data_dir
    stopped = zoneledger("audit", "--data-dir", data_dir, "--genesis", layout.genesis, "--workers", "2")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "audit PASSED" in stopped.stdout

    # Corrupt one document byte inside the first block that carries a document.
    store = LevelDBStore(data_dir / "ledger", create=False)
    try:
        for _key, raw in store.iterate(b"b/"):
            block = Block.decode(raw)
            if any(d is not None for d in block.documents):
                index = next(i for i, d in enumerate(block.documents) if d is not None)
                doc = block.documents[index]
                assert doc is not None
                at = doc.index(b'"') + 1
                changed = doc[:at] + bytes([doc[at] ^ 0x01]) + doc[at + 1:]
                documents = block.documents[:index] + (changed,) + block.documents[index + 1:]
                batch = WriteBatch()
                batch.put(key_block(block.height), replace(block, documents=documents, encoded=None).encode())
                store.write(batch)
                height = block.height
                break
        else:
            raise AssertionError("no block with a document")
    finally:
        store.close()
    bad_report = tmp_path / "bad-report.json"
    failed = zoneledger("audit", "--data-dir", data_dir, "--genesis", layout.genesis, "--report", bad_report)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert f"AUDIT FAILED at height {height}, transaction {index}" in failed.stdout
    assert "doc.hash_mismatch" in failed.stdout
    failure = json.loads(bad_report.read_text())["failure"]
    assert (failure["height"], failure["tx_index"], failure["rule"]) == (height, index, "doc.hash_mismatch")
