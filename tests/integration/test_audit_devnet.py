"""``zoneledger audit`` on a chain built by a real devnet: through the member API while it
runs, from a node's data directory once stopped, and failing on a corrupted LevelDB."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from netutil import make_layout

from ledger.chain import StoredBlock, key_content
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

    # Corrupt one byte of the first document content the first block that carries one names.
    store = LevelDBStore(data_dir / "ledger", create=False)
    try:
        for key, raw in store.iterate(b"b/"):
            stored = StoredBlock.decode(raw, int.from_bytes(key[2:], "big"))
            if any(h is not None for h in stored.content_hashes):
                index = next(i for i, h in enumerate(stored.content_hashes) if h is not None)
                content_key = key_content(stored.header.height, index)
                doc = store.get(content_key)
                assert doc is not None
                at = doc.index(b'"') + 1
                batch = WriteBatch()
                batch.put(content_key, doc[:at] + bytes([doc[at] ^ 0x01]) + doc[at + 1:])
                store.write(batch)
                height = stored.header.height
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
