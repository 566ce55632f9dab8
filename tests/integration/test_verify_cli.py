"""Verification end to end on a real 4-zone devnet: API, CLI online, CLI offline, and the log monitor."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from netutil import make_layout

from ledger.blocks import Header
from scripts.cli import main
from scripts.devkit import EXAMPLES_DIR, load_example, with_number
from scripts.devnet import Devnet, DevnetLayout, free_port_block, submit_examples

pytestmark = pytest.mark.integration

COO = "certificate_of_origin"
EXIT = {"valid": 0, "amended": 10, "revoked": 11, "tampered": 12, "unknown": 13, "unsound": 14}


@dataclass
class Net:
    layout: DevnetLayout
    devnet: Devnet
    url: str
    copies: dict[str, Path]  # verdict -> a copy that should get it


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    root = tmp_path_factory.mktemp("verify")
    layout = make_layout(root, heartbeat_ms=5000)
    devnet = Devnet(layout)
    devnet.start()
    try:
        devnet.wait_healthy()
        submit_examples(layout, lambda text: None)
        amended = layout.root / "coo_preferential_amended.json"
        tampered = json.loads(amended.read_text())
        tampered["supplyChainConsignment"]["exporter"]["name"] = "Someone Else Trading Ltd"
        unknown = with_number(load_example("coo_preferential.json"), COO, "CO-2026-999999")
        copies = {
            "valid": amended,
            "amended": EXAMPLES_DIR / "coo_preferential.json",
            "revoked": EXAMPLES_DIR / "coo_non_preferential.json",
            "tampered": root / "tampered.json",
            "unknown": root / "unknown.json",
        }
        copies["tampered"].write_text(json.dumps(tampered, indent=2))
        copies["unknown"].write_text(json.dumps(unknown))
        yield Net(layout, devnet, layout.zones[1].url, copies)
    finally:
        devnet.stop()


def test_every_verdict_through_the_api(net: Net) -> None:
    with httpx.Client(timeout=10.0) as client:
        for verdict, path in net.copies.items():
            document = json.loads(path.read_text())
            answer = client.post(f"{net.url}/v1/verify", json={"document": document}).json()
            assert answer["verdict"] == verdict, (path, answer.get("checks"))
            if verdict == "tampered":
                assert (answer["matched"], answer["doc_id"]) == ("number", "EG-TEDA/CO-2026-000123")
            if verdict == "unknown":
                assert answer["bundle"] is None
            else:
                proof = client.get(f"{net.url}/v1/proofs/{answer['bundle']['document_hash']}")
                assert proof.status_code == 200


def test_every_verdict_through_the_cli_online(net: Net, capsys: pytest.CaptureFixture[str]) -> None:
    genesis = str(net.layout.genesis)
    for verdict, path in net.copies.items():
        code = main(["verify", str(path), "--node", net.url, "--genesis", genesis])
        out = capsys.readouterr().out
        assert code == EXIT[verdict], out
        assert f"verdict: {verdict}" in out
        if verdict != "unknown":
            assert "✓ commit" in out and "signed by" in out
    revoked = main(["verify", str(net.copies["revoked"]), "--node", net.url, "--genesis", genesis])
    assert revoked == EXIT["revoked"]
    assert "crane not shipped: contract cancelled" in capsys.readouterr().out


def test_online_verify_without_genesis_is_refused(net: Net, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(net.copies["valid"]), "--node", net.url]) == 2
    err = capsys.readouterr().err
    assert "--genesis" in err and len(err.strip().splitlines()) == 1


# --- the log monitor against a doctored node ------------------------------------------------


def free_port() -> int:
    # Below the ephemeral range, so no client connection takes it before the server binds.
    return free_port_block(1)


@dataclass
class Doctored:
    """What the doctored node serves; tests swap these between runs."""

    checkpoint: dict[str, Any]
    consistency: dict[str, Any] | None = None


def serve(doctored: Doctored) -> tuple[str, uvicorn.Server, threading.Thread]:
    app = FastAPI()

    @app.get("/v1/checkpoint")
    async def checkpoint() -> dict[str, Any]:
        return doctored.checkpoint

    @app.get("/v1/consistency")
    async def consistency() -> dict[str, Any] | None:
        return doctored.consistency

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "doctored node did not start"
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server, thread


def checkpoint_at(client: httpx.Client, url: str, height: int, real: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint of an older height, built from the node's own header and certificate."""
    answer = client.get(f"{url}/v1/headers/{height}").json()
    fields = answer["header"]
    header = Header(**{k: bytes.fromhex(v) if k in Header.HASH_FIELDS else v for k, v in fields.items()})
    return {**real, "header": header.encode().hex(), "header_fields": header.to_json(),
            "block_hash": header.block_hash.hex(), "commit": answer["commit"]}


def test_watch_alerts_on_rollback_fork_and_bad_consistency(net: Net, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    genesis = str(net.layout.genesis)
    state = tmp_path / "watch.json"
    assert main(["watch", "--once", "--node", net.url, "--genesis", genesis, "--state", str(state)]) == 0
    assert main(["watch", "--once", "--node", net.url, "--genesis", genesis, "--state", str(state)]) == 0
    capsys.readouterr()
    remembered = json.loads(state.read_text())
    with httpx.Client(timeout=10.0) as client:
        real = client.get(f"{net.url}/v1/checkpoint").json()
        older = checkpoint_at(client, net.url, 2, real)
    # heartbeat blocks may land in between: the node only ever moves forward
    assert real["header_fields"]["height"] >= remembered["height"] > 2

    doctored = Doctored(older)
    url, server, thread = serve(doctored)
    try:
        # rollback: a genuine but older checkpoint
        assert main(["watch", "--once", "--node", url, "--genesis", genesis, "--state", str(state)]) == 3
        err = capsys.readouterr().err
        assert "ALERT" in err and "proof.rollback" in err
        assert json.loads(state.read_text()) == remembered  # the alert does not overwrite the good state

        # fork: the newest header with another log root (validly encoded), under the real certificate
        forked = Header.decode(bytes.fromhex(real["header"])).with_changes(log_root=bytes(32))
        doctored.checkpoint = {**real, "header": forked.encode().hex(), "header_fields": forked.to_json(),
                               "block_hash": forked.block_hash.hex()}
        assert main(["watch", "--once", "--node", url, "--genesis", genesis, "--state", str(state)]) == 3
        err = capsys.readouterr().err
        assert "ALERT" in err and "commit." in err

        # growth whose consistency proof does not verify
        older_state = tmp_path / "older.json"
        fields = older["header_fields"]
        older_state.write_text(json.dumps({"height": fields["height"], "block_hash": older["block_hash"],
                                           "log_size": fields["log_size"], "log_root": fields["log_root"]}))
        with httpx.Client(timeout=10.0) as client:
            honest = client.get(f"{net.url}/v1/consistency",
                                params={"from": fields["log_size"], "to": real["header_fields"]["log_size"]}).json()
        assert main(["watch", "--once", "--node", net.url, "--genesis", genesis, "--state", str(older_state)]) == 0
        older_state.write_text(json.dumps({"height": fields["height"], "block_hash": older["block_hash"],
                                           "log_size": fields["log_size"], "log_root": fields["log_root"]}))
        doctored.checkpoint = real
        doctored.consistency = {**honest, "proof": [("00" * 32) for _ in honest["proof"]]}
        assert main(["watch", "--once", "--node", url, "--genesis", genesis, "--state", str(older_state)]) == 3
        err = capsys.readouterr().err
        assert "ALERT" in err and "proof.consistency_invalid" in err
    finally:
        server.should_exit = True
        thread.join(10)


# --- offline, with the network gone (last: stops the devnet) ---------------------------------


def test_every_verdict_offline_with_the_network_stopped(net: Net, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    genesis = str(net.layout.genesis)
    bundles = {}
    for verdict, path in net.copies.items():
        if verdict == "unknown":
            continue
        out = tmp_path / f"{verdict}.bundle.json"
        assert main(["proof", str(path), "--node", net.url, "--out", str(out)]) == 0
        bundles[verdict] = out
    assert main(["proof", str(net.copies["unknown"]), "--node", net.url]) == 1
    capsys.readouterr()

    net.devnet.stop()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{net.url}/healthz", timeout=2.0)

    for verdict, bundle in bundles.items():
        code = main(["verify", str(net.copies[verdict]), "--offline", str(bundle), "--genesis", genesis])
        out = capsys.readouterr().out
        assert code == EXIT[verdict], out
        assert f"verdict: {verdict}" in out
    # the amended copy's bundle is the current version: the older copy checks against it too
    assert main(["verify", str(net.copies["amended"]), "--offline", str(bundles["valid"]), "--genesis", genesis]) == 10
    # a bundle edited by hand no longer proves anything
    edited = json.loads(bundles["valid"].read_text())
    edited["log_index"] += 1
    broken = tmp_path / "edited.json"
    broken.write_text(json.dumps(edited))
    assert main(["verify", str(net.copies["valid"]), "--offline", str(broken), "--genesis", genesis]) == 14
    # offline without a genesis file is refused
    assert main(["verify", str(net.copies["valid"]), "--offline", str(bundles["valid"])]) == 2
