"""The officer's flow through the command line against a running 4-zone devnet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from netutil import make_layout

from scripts.cli import main
from scripts.devkit import load_example, with_number
from scripts.devnet import Devnet

pytestmark = pytest.mark.integration


def test_submit_amend_revoke_and_read_back(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layout = make_layout(tmp_path, heartbeat_ms=5000)
    devnet = Devnet(layout)
    devnet.start()
    try:
        devnet.wait_healthy()
        zone = layout.zones[0]
        other = layout.zones[2]
        key = str(zone.officer_key)
        document = with_number(load_example("coo_preferential.json"), "certificate_of_origin", "CLI-FLOW-1")
        first = tmp_path / "coo.json"
        first.write_text(json.dumps(document, indent=2))
        doc_id = f"{zone.zone_id}/CLI-FLOW-1"

        # submit through one node, wait for finality
        assert main(["submit", str(first), "--type", "certificate_of_origin", "--key", key, "--node", zone.url, "--wait"]) == 0
        out = capsys.readouterr().out
        assert doc_id in out and "committed" in out

        # read it back through another node (a signed member request)
        assert main(["doc", "get", doc_id, "--key", key, "--node", other.url]) == 0
        record = json.loads(capsys.readouterr().out)
        assert (record["status"], record["version"]) == ("active", 1)
        assert record["document"] == document

        # amend it
        document["name"] = "CERTIFICATE OF ORIGIN (amended)"
        second = tmp_path / "coo-v2.json"
        second.write_text(json.dumps(document))
        assert main(["amend", doc_id, str(second), "--reason", "title corrected", "--key", key,
                     "--node", other.url, "--wait"]) == 0
        capsys.readouterr()
        assert main(["doc", "get", doc_id, "--key", key, "--node", zone.url]) == 0
        record = json.loads(capsys.readouterr().out)
        assert (record["status"], record["version"]) == ("active", 2)
        assert record["history"][-1]["reason"] == "title corrected"

        # revoke it
        assert main(["revoke", doc_id, "--reason", "goods not shipped", "--key", key, "--node", zone.url, "--wait"]) == 0
        capsys.readouterr()
        assert main(["doc", "get", doc_id, "--key", key, "--node", layout.zones[3].url]) == 0
        record = json.loads(capsys.readouterr().out)
        assert record["status"] == "revoked" and record["revoke_reason"] == "goods not shipped"
        assert [h["kind"] for h in record["history"]] == ["doc.issue", "doc.amend", "doc.revoke"]

        # and the status command
        assert main(["status", "--node", zone.url]) == 0
        assert "height" in capsys.readouterr().out.lower()
    finally:
        devnet.stop()
