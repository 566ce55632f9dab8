"""The zone admins' flow through the command line against a running 4-zone devnet: an
officer registered, an auditor added by proposal and approvals from three zones, each
command sent to another zone's node."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from netutil import make_layout

from ledger.keys import SigningKey
from scripts.cli import main
from scripts.devkit import load_example, with_number
from scripts.devnet import Devnet

pytestmark = pytest.mark.integration


def test_officer_add_and_an_auditor_added_by_the_alliance(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layout = make_layout(tmp_path, heartbeat_ms=5000)
    devnet = Devnet(layout)
    devnet.start()
    try:
        devnet.wait_healthy()
        zones = layout.zones
        first = zones[0]

        # the first zone's admin registers a new officer, who submits at once
        officer = tmp_path / "officer.pem"
        SigningKey.generate().save(officer)
        officer_key = SigningKey.load(officer).public.hex()
        assert main(["officer", "add", str(officer), "--zone", first.zone_id, "--key", str(first.admin_key),
                     "--node", first.url, "--wait"]) == 0
        assert "committed at height" in capsys.readouterr().out
        document = with_number(load_example("coo_preferential.json"), "certificate_of_origin", "GOV-FLOW-1")
        path = tmp_path / "coo.json"
        path.write_text(json.dumps(document))
        assert main(["submit", str(path), "--type", "certificate_of_origin", "--key", str(officer),
                     "--node", zones[1].url, "--wait"]) == 0
        assert f"{first.zone_id}/GOV-FLOW-1" in capsys.readouterr().out

        # an auditor added by the alliance: proposed at one node, approved at two others
        auditor = SigningKey.generate().public.hex()
        assert main(["gov", "propose", "auditor-add", auditor, "--key", str(first.admin_key), "--node", first.url,
                     "--wait"]) == 0
        out = capsys.readouterr().out
        found = re.search(r"^proposal_id\s+([0-9a-f]{64})$", out, re.MULTILINE)
        assert found is not None and "open: 1 of 3 approvals" in out, out
        proposal_id = found.group(1)
        for zone in (zones[1], zones[2]):
            assert main(["gov", "approve", proposal_id, "--key", str(zone.admin_key), "--node", zone.url,
                         "--wait"]) == 0
        assert "proposal     executed at height" in capsys.readouterr().out

        last = zones[2].url  # it answered the executing approval: it holds that block
        assert main(["gov", "show", proposal_id, "--node", last]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert (shown["status"], len(shown["approvals"]), shown["approvals_needed"]) == ("executed", 3, 3)
        assert shown["action"] == {"type": "auditor.add", "auditor_key": auditor}
        assert main(["officer", "list", "--zone", first.zone_id, "--node", last]) == 0
        row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(officer_key))
        assert first.zone_id in row and row.endswith("active")
    finally:
        devnet.stop()
