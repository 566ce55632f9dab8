"""Four validator processes and one observer process (``role = "observer"``): the
observer follows with identical block hashes, serves verify and proofs with the
validators' verdicts, refuses writes with ``node.read_only``, keeps following when a
validator dies, and resumes from its disk after a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from netutil import certificates, make_layout

from scripts.devnet import Devnet, free_port_block, post_transaction
from scripts.observers import Observers, create_observers

pytestmark = pytest.mark.integration


def height_of(client: httpx.Client, url: str) -> int:
    height: int = client.get(f"{url}/healthz").json()["height"]
    return height


def block_hashes(client: httpx.Client, url: str, height: int) -> list[str]:
    return [client.get(f"{url}/v1/headers/{h}").json()["block_hash"] for h in range(1, height + 1)]


def without_head_commit(bundle: dict[str, Any]) -> dict[str, Any]:
    """A bundle but its commit's signatures: the newest block's certificate is the one
    each node saw (any quorum) until the next block fixes the canonical one."""
    commit = bundle["commit"]
    return {**bundle, "commit": {k: v for k, v in commit.items() if k != "signatures"}}


def test_an_observer_follows_serves_reads_refuses_writes_and_survives_faults(tmp_path: Path) -> None:
    layout = make_layout(tmp_path, zones=4, heartbeat_ms=60_000)
    alliance = layout.alliance()
    items = certificates(alliance, 3, "OBSERVED")
    devnet = Devnet(layout)
    observer_files = create_observers(layout, 1, free_port_block(1))
    observers = Observers(observer_files)
    observer = observer_files[0]
    devnet.start()
    try:
        devnet.wait_healthy()
        observers.start()
        with httpx.Client(timeout=70.0) as client:
            validator = layout.zones[1].url
            envelope, document = items[0]
            committed = post_transaction(client, validator, envelope, document, wait=30)
            assert committed["status"] == "committed"
            height = height_of(client, validator)
            observers.wait_height(height, timeout=90)
            assert block_hashes(client, observer.url, height) == block_hashes(client, validator, height)

            ours = client.post(f"{observer.url}/v1/verify", json={"document": document}).json()
            theirs = client.post(f"{validator}/v1/verify", json={"document": document}).json()
            assert ours["verdict"] == theirs["verdict"] == "valid"
            assert ours["doc_id"] == theirs["doc_id"]
            assert without_head_commit(ours["bundle"]) == without_head_commit(theirs["bundle"])
            doc_hash = ours["document_hash"]
            our_proof = client.get(f"{observer.url}/v1/proofs/{doc_hash}").json()
            assert without_head_commit(our_proof) == \
                without_head_commit(client.get(f"{validator}/v1/proofs/{doc_hash}").json())

            refused = client.post(
                f"{observer.url}/v1/transactions", json={"envelope": items[1][0].encode().hex(), "document": items[1][1]}
            )
            assert refused.status_code == 503
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["type"] == "node.read_only" and layout.zones[0].url in refused.json()["detail"]
            status = client.get(f"{observer.url}/v1/status").json()
            assert status["node"]["role"] == "observer" and status["mempool_size"] == 0

            # A validator dies: the observer keeps following from the others.
            devnet.kill_zone(layout.zones[0].zone_id)
            envelope, document = items[1]
            assert post_transaction(client, validator, envelope, document, wait=30)["status"] == "committed"
            height = height_of(client, validator)
            observers.wait_height(height, timeout=90)
            assert block_hashes(client, observer.url, height) == block_hashes(client, validator, height)

            # The observer restarts: it resumes from its LevelDB and catches up.
            observers.stop()
            envelope, document = items[2]
            assert post_transaction(client, validator, envelope, document, wait=30)["status"] == "committed"
            observers.start()
            height = height_of(client, validator)
            observers.wait_height(height, timeout=90)
            assert block_hashes(client, observer.url, height) == block_hashes(client, validator, height)
            verdict = client.post(f"{observer.url}/v1/verify", json={"document": document}).json()["verdict"]
            assert verdict == "valid"
        log = observer.log.read_text(errors="replace")
        assert "refused" not in log, "an honest devnet sent nothing the observer had to refuse"
    finally:
        observers.stop()
        devnet.stop()
