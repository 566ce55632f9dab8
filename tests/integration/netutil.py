"""Helpers for tests that run real validator processes on loopback."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from ledger.documents import document_number
from scripts.devkit import EXAMPLES_DIR, Alliance, with_number
from scripts.devnet import DevnetLayout, create_devnet, free_port_block

COO = "certificate_of_origin"


def make_layout(tmp_path: Path, zones: int = 4, heartbeat_ms: int = 1000) -> DevnetLayout:
    return create_devnet(
        tmp_path / "devnet", zones, free_port_block(zones), heartbeat_ms=heartbeat_ms,
        consensus={"timeout_propose_ms": 1000, "timeout_delta_ms": 500, "max_block_txs": 5000},
    )


def certificates(alliance: Alliance, count: int, prefix: str, zone: str = "EG-TEDA") -> list[tuple[Any, dict[str, Any]]]:
    template = json.loads((EXAMPLES_DIR / "coo_preferential.json").read_text())
    out = []
    for i in range(count):
        document = with_number(template, COO, f"{prefix}-{i:05d}")
        envelope, _ = alliance.issue(zone, COO, document, document_number(COO, document))
        out.append((envelope, document))
    return out


def submit_all(urls: list[str], items: list[tuple[Any, dict[str, Any]]], workers: int = 8) -> list[bytes]:
    """Submit each item to a rotating node; return the hashes the network acknowledged."""
    local = threading.local()
    clients: list[httpx.Client] = []

    def one(args: tuple[int, tuple[Any, dict[str, Any]]]) -> bytes | None:
        i, (envelope, document) = args
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=10.0)
            clients.append(local.client)
        for attempt in range(len(urls)):
            url = urls[(i + attempt) % len(urls)]
            try:
                r = local.client.post(f"{url}/v1/transactions", json={"envelope": envelope.encode().hex(), "document": document})
            except httpx.HTTPError:
                continue
            if r.status_code in (200, 202):
                return bytes.fromhex(r.json()["tx_hash"])
        return None

    try:
        with ThreadPoolExecutor(workers) as pool:
            return [h for h in pool.map(one, enumerate(items)) if h is not None]
    finally:
        for client in clients:
            client.close()


def wait_final_everywhere(urls: list[str], tx_hashes: list[bytes], timeout: float = 90.0) -> None:
    """Every transaction committed on every node; the nodes are asked side by side (at 58
    zones, one after another took longer than the transactions took to commit)."""
    deadline = time.monotonic() + timeout
    with ThreadPoolExecutor(max_workers=min(16, len(urls) or 1)) as pool:
        for future in [pool.submit(_wait_final_on, url, tx_hashes, deadline) for url in urls]:
            future.result()


def _wait_final_on(url: str, tx_hashes: list[bytes], deadline: float) -> None:
    with httpx.Client(timeout=5.0) as client:
        remaining = list(tx_hashes)
        while remaining:
            still = []
            for tx_hash in remaining:
                try:
                    r = client.get(f"{url}/v1/transactions/{tx_hash.hex()}")
                    status = r.json().get("status") if r.status_code == 200 else None
                except httpx.HTTPError:
                    status = None
                if status != "committed":
                    still.append(tx_hash)
                if status == "rejected":
                    raise AssertionError(f"{url}: acknowledged transaction {tx_hash.hex()} was rejected: {r.json()}")
            remaining = still
            if remaining:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{url}: {len(remaining)} acknowledged transactions not final")
                time.sleep(0.5)


def heights(urls: list[str]) -> dict[str, int]:
    with httpx.Client(timeout=5.0) as client:
        return {url: client.get(f"{url}/v1/status").json()["height"] for url in urls}


def assert_same_chain(urls: list[str]) -> int:
    """Every node reports the same block hash at every height they share; return that height."""
    top = min(heights(urls).values())
    with httpx.Client(timeout=5.0) as client:
        for height in range(1, top + 1):
            hashes = {client.get(f"{url}/v1/headers/{height}").json()["block_hash"] for url in urls}
            assert len(hashes) == 1, f"fork at height {height}: {hashes}"
    return top


def assert_no_equivocation(layout: DevnetLayout) -> None:
    for zone in layout.zones:
        # The node's evidence log (node/evidence.py), and the file nodes wrote before it.
        for evidence in (zone.data_dir / "evidence" / "evidence.jsonl", zone.data_dir / "evidence.jsonl"):
            text = evidence.read_text() if evidence.exists() else ""
            assert not text, f"{zone.zone_id} saw equivocation: {text[:500]}"


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")
