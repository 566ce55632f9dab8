"""Issue 12, "one outsider stalls the alliance", against four real validator processes.

While one hostile client per node sends the largest bodies the API admits to every
POST route (nested empty JSON objects, uploads, batches of unsigned junk transactions,
junk peer messages without any peer authentication), an honest officer's documents keep
being finalised with p99 finality within 2 s, and once 10,000 junk transactions have
been refused every node's resident memory is within 300 MB of where it started.

Bounded loops only, loopback only; about a minute in all.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from netutil import certificates, make_layout

from ledger.encoding import cb, decode_cb
from ledger.limits import (
    DEFAULT_MAX_BODY_BYTES,
    MAX_PEER_BODY_BYTES,
    MAX_SUBMISSION_BYTES,
    MAX_VERIFY_BODY_BYTES,
    MAX_VERIFY_DOCUMENT_BYTES,
    MAX_VERIFY_UPLOAD_BYTES,
    MIB,
)
from ledger.testkit import Alliance
from ledger.transactions import DocIssue
from node.peers import PEER_MESSAGE_PATH
from scripts.devnet import Devnet, DevnetLayout

pytestmark = pytest.mark.integration

JUNK_TARGET = 10_000
"""Junk transactions to have refused before memory is compared."""
LONG_JUNK_TARGET = 1_000
"""Of which carry a 15,000-byte chain id (the shape that filled memory before)."""
MIN_HOSTILE_S = 20.0
DEADLINE_S = 75.0
FINALITY_P99_S = 2.0
RSS_GROWTH_LIMIT = 300 * MIB
HONEST_MIN_SAMPLES = 40


# --- what the hostile clients send ---------------------------------------------------


def nested_empty_objects(size: int, prefix: bytes, suffix: bytes) -> bytes:
    """``prefix [{}, {}, ...] suffix`` of ``size`` bytes: cheap to send, dear to parse."""
    count = (size - len(prefix) - len(suffix) - 2 + 1) // 3
    body = prefix + b"[" + b",".join([b"{}"] * count) + b"]" + suffix
    assert len(body) <= size
    return body


def junk_envelope(alliance: Alliance, zone: str, nonce: int, chain_id: str | None = None) -> bytes:
    """A transaction nobody signed: the signature is zero (and the chain id, if given, foreign)."""
    body = DocIssue("certificate_of_origin", f"{zone}/JUNK-{nonce}", bytes(32))
    wire = decode_cb(alliance.sign(alliance.officer_keys[zone], body, chain_id=chain_id, nonce=nonce).encode())
    wire["sig"] = bytes(64)
    return cb(wire)


def junk_batches(envelopes: list[bytes]) -> list[tuple[bytes, int]]:
    """JSON submission bodies as large as the route admits, and how many junk transactions each holds."""
    batches: list[tuple[bytes, int]] = []
    items: list[bytes] = []
    size = 20
    for envelope in envelopes:
        item = b'{"envelope":"' + envelope.hex().encode() + b'","document":null}'
        if size + len(item) + 1 > MAX_SUBMISSION_BYTES or len(items) == 5000:
            batches.append((b'{"transactions":[' + b",".join(items) + b"]}", len(items)))
            items, size = [], 20
        items.append(item)
        size += len(item) + 1
    if items:
        batches.append((b'{"transactions":[' + b",".join(items) + b"]}", len(items)))
    return batches


@dataclass
class Payloads:
    verify_json: bytes
    upload_parsed: bytes
    upload_largest: bytes
    submission_json: bytes
    peer_junk: bytes
    junk: list[tuple[bytes, int]]
    long_junk: list[tuple[bytes, int]]


def build_payloads(alliance: Alliance, zone: str) -> Payloads:
    short = [junk_envelope(alliance, zone, n) for n in range(1, 7_001)]
    long = [junk_envelope(alliance, zone, n, chain_id="c" * 15_000) for n in range(1, 1_101)]
    peer_limit = min(MAX_PEER_BODY_BYTES, DEFAULT_MAX_BODY_BYTES)
    return Payloads(
        verify_json=nested_empty_objects(MAX_VERIFY_BODY_BYTES, b'{"document":{"a":', b"}}"),
        upload_parsed=nested_empty_objects(MAX_VERIFY_DOCUMENT_BYTES - 4096, b'{"a":', b"}"),
        upload_largest=nested_empty_objects(MAX_VERIFY_UPLOAD_BYTES - 4096, b'{"a":', b"}"),
        submission_json=nested_empty_objects(MAX_SUBMISSION_BYTES, b'{"transactions":', b"}"),
        peer_junk=os.urandom(peer_limit),
        junk=junk_batches(short),
        long_junk=junk_batches(long),
    )


@dataclass
class Tally:
    junk_refused: int = 0
    long_junk_refused: int = 0
    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def saw(self, status: int) -> None:
        with self.lock:
            self.requests += 1
            self.statuses[status] = self.statuses.get(status, 0) + 1


def refused_count(response: httpx.Response) -> int:
    if response.status_code != 202:
        return 0
    return sum(1 for r in response.json()["results"] if r.get("status") == "rejected")


def hostile_client(url: str, payloads: Payloads, tally: Tally, stop: threading.Event, offset: int) -> None:
    """Send the largest admitted bodies to every POST route until ``stop`` (bounded)."""
    json_headers = {"content-type": "application/json"}
    with httpx.Client(timeout=60.0) as client:
        for round_ in range(10_000):
            if stop.is_set():
                return
            k = offset + round_
            sends: list[tuple[str, dict[str, Any]]] = [
                ("/v1/verify", {"content": payloads.verify_json, "headers": json_headers}),
                ("/v1/verify", {"files": {"file": ("a.json", payloads.upload_parsed)}}),
                ("/v1/verify", {"files": {"file": ("scan.pdf", payloads.upload_largest)}}),
                ("/v1/transactions", {"content": payloads.junk[k % len(payloads.junk)][0], "headers": json_headers}),
                ("/v1/transactions", {"content": payloads.submission_json, "headers": json_headers}),
                (PEER_MESSAGE_PATH, {"content": payloads.peer_junk, "headers": {"content-type": "application/msgpack"}}),
            ] + [
                ("/v1/transactions", {"content": payloads.long_junk[(4 * k + j) % len(payloads.long_junk)][0],
                                      "headers": json_headers})
                for j in range(4)
            ]
            for index, (path, kwargs) in enumerate(sends):
                if stop.is_set():
                    return
                try:
                    response = client.post(url + path, **kwargs)
                except httpx.HTTPError:
                    continue  # a refused upload may close the connection early
                tally.saw(response.status_code)
                assert response.status_code < 500, (path, response.status_code, response.text[:300])
                refused = refused_count(response) if path == "/v1/transactions" else 0
                with tally.lock:
                    tally.junk_refused += refused
                    if index >= 6:
                        tally.long_junk_refused += refused


def honest_officer(
    urls: list[str], items: list[tuple[Any, dict[str, Any]]], latencies: list[float], failures: list[str],
    stop: threading.Event, offset: int,
) -> None:
    """Submit one document at a time and wait for it to be final; record each latency."""
    with httpx.Client(timeout=30.0) as client:
        for i, (envelope, document) in enumerate(items):
            if stop.is_set():
                return
            url = urls[(offset + i) % len(urls)]
            started = time.perf_counter()
            try:
                response = client.post(
                    f"{url}/v1/transactions", params={"wait": 10},
                    json={"envelope": envelope.encode().hex(), "document": document},
                )
            except httpx.HTTPError as exc:
                failures.append(f"{url}: {exc!r}")
                continue
            took = time.perf_counter() - started
            if response.status_code == 200 and response.json().get("status") == "committed":
                latencies.append(took)
            else:
                failures.append(f"{url}: {response.status_code} {response.text[:200]}")


# --- the measurement ---------------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


@pytest.fixture
def network(tmp_path: Path) -> Iterator[tuple[DevnetLayout, Devnet]]:
    layout = make_layout(tmp_path)
    devnet = Devnet(layout)
    devnet.start()
    try:
        devnet.wait_healthy()
        yield layout, devnet
    finally:
        devnet.stop()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def test_hostile_clients_do_not_stall_finality_or_grow_memory(network: tuple[DevnetLayout, Devnet]) -> None:
    layout, devnet = network
    alliance = layout.alliance()
    urls = [z.url for z in layout.zones]
    pids = {z.zone_id: devnet.processes[z.zone_id].pid for z in layout.zones}
    payloads = build_payloads(alliance, layout.zones[0].zone_id)
    honest = certificates(alliance, 600, "HONEST")

    # Warm up: every node has served and committed before its memory is taken as the start.
    warm_latencies: list[float] = []
    warm_failures: list[str] = []
    honest_officer(urls, honest[:8], warm_latencies, warm_failures, threading.Event(), 0)
    assert not warm_failures, warm_failures
    start_rss = {zone: rss_bytes(pid) for zone, pid in pids.items()}
    peak_rss = dict(start_rss)

    tally = Tally()
    stop = threading.Event()
    latencies: list[float] = []
    failures: list[str] = []
    threads = [
        threading.Thread(target=hostile_client, args=(url, payloads, tally, stop, i), daemon=True)
        for i, url in enumerate(urls)
    ] + [
        threading.Thread(target=honest_officer, args=(urls, honest[8 + k::2], latencies, failures, stop, k), daemon=True)
        for k in range(2)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        while time.monotonic() - started < DEADLINE_S:
            for zone, pid in pids.items():
                peak_rss[zone] = max(peak_rss[zone], rss_bytes(pid))
            done = (
                tally.junk_refused >= JUNK_TARGET and tally.long_junk_refused >= LONG_JUNK_TARGET
                and time.monotonic() - started >= MIN_HOSTILE_S and len(latencies) >= HONEST_MIN_SAMPLES
            )
            if done or not any(t.is_alive() for t in threads[:len(urls)]):
                break
            time.sleep(0.25)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=90)
    end_rss = {zone: rss_bytes(pid) for zone, pid in pids.items()}
    elapsed = time.monotonic() - started

    report = (
        f"{elapsed:.1f} s hostile; {tally.requests} hostile requests {tally.statuses}; "
        f"junk refused {tally.junk_refused} ({tally.long_junk_refused} with 15 KB chain ids); "
        f"honest {len(latencies)} final, p50 {statistics.median(latencies) if latencies else float('nan'):.3f} s, "
        f"p99 {percentile(latencies, 0.99) if latencies else float('nan'):.3f} s; "
        f"RSS MB start/peak/end " + ", ".join(
            f"{z} {start_rss[z] // MIB}/{peak_rss[z] // MIB}/{end_rss[z] // MIB}" for z in pids
        )
    )
    print(report)
    assert not any(t.is_alive() for t in threads), "a client did not stop"
    assert tally.junk_refused >= JUNK_TARGET and tally.long_junk_refused >= LONG_JUNK_TARGET, report
    assert not failures, failures[:5]
    assert len(latencies) >= HONEST_MIN_SAMPLES, report
    assert percentile(latencies, 0.99) <= FINALITY_P99_S, report
    for zone in pids:
        assert peak_rss[zone] - start_rss[zone] <= RSS_GROWTH_LIMIT, report
        assert end_rss[zone] - start_rss[zone] <= RSS_GROWTH_LIMIT, report
