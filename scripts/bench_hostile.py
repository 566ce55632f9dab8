"""``zoneledger bench hostile``: finality and node memory with and without hostile clients.

A hostile client sends, back to back, the largest body each POST route admits
(``ledger.limits``): nested empty JSON objects to ``/v1/verify`` as JSON and as uploads,
batches of unsigned junk transactions (some with a 15,000-byte chain id) and nested
JSON to ``/v1/transactions``, and random bytes to ``/peer/v1/message`` without any
peer authentication. Honest officers meanwhile submit one certificate at a time and
wait for it to be final. The integration test ``tests/integration/test_hostile_clients.py``
drives the same clients.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ledger.encoding import cb, decode_cb
from ledger.limits import (
    DEFAULT_MAX_BODY_BYTES,
    MAX_PEER_BODY_BYTES,
    MAX_SUBMISSION_BATCH,
    MAX_SUBMISSION_BYTES,
    MAX_VERIFY_BODY_BYTES,
    MAX_VERIFY_DOCUMENT_BYTES,
    MAX_VERIFY_UPLOAD_BYTES,
    MIB,
)
from ledger.transactions import DocIssue, Envelope
from node.peers import PEER_MESSAGE_PATH
from scripts.devkit import EXAMPLES_DIR, Alliance, with_number

COO = "certificate_of_origin"
LONG_CHAIN_ID = "c" * 15_000
"""The chain id of the junk that filled nodes' memory in issue 12."""
Item = tuple[Envelope, dict[str, Any]]


# --- what the hostile clients send ---------------------------------------------------


def nested_empty_objects(size: int, prefix: bytes, suffix: bytes) -> bytes:
    """``prefix [{}, {}, ...] suffix`` of at most ``size`` bytes: cheap to send, dear to parse."""
    count = (size - len(prefix) - len(suffix) - 2 + 1) // 3
    body = prefix + b"[" + b",".join([b"{}"] * count) + b"]" + suffix
    assert len(body) <= size
    return body


def junk_envelope(alliance: Alliance, zone: str, nonce: int, chain_id: str | None = None) -> bytes:
    """A transaction nobody signed: its signature is zero (and its chain id, if given, foreign)."""
    body = DocIssue(COO, f"{zone}/JUNK-{nonce}", bytes(32))
    wire = decode_cb(alliance.sign(alliance.officer_keys[zone], body, chain_id=chain_id, nonce=nonce).encode())
    wire["sig"] = bytes(64)
    return cb(wire)


def junk_batches(envelopes: list[bytes]) -> list[tuple[bytes, int]]:
    """JSON submission bodies as large as the route admits, and how many transactions each holds."""
    batches: list[tuple[bytes, int]] = []
    items: list[bytes] = []
    size = 20
    for envelope in envelopes:
        item = b'{"envelope":"' + envelope.hex().encode() + b'","document":null}'
        if size + len(item) + 1 > MAX_SUBMISSION_BYTES or len(items) == MAX_SUBMISSION_BATCH:
            batches.append((b'{"transactions":[' + b",".join(items) + b"]}", len(items)))
            items, size = [], 20
        items.append(item)
        size += len(item) + 1
    if items:
        batches.append((b'{"transactions":[' + b",".join(items) + b"]}", len(items)))
    return batches


@dataclass
class Payloads:
    """Every body a hostile client sends, built once."""

    verify_json: bytes
    upload_parsed: bytes
    upload_largest: bytes
    submission_json: bytes
    peer_junk: bytes
    junk: list[tuple[bytes, int]]
    long_junk: list[tuple[bytes, int]]


def build_payloads(alliance: Alliance, zone: str, *, operator_cap: int = DEFAULT_MAX_BODY_BYTES) -> Payloads:
    short = [junk_envelope(alliance, zone, n) for n in range(1, 7_001)]
    long = [junk_envelope(alliance, zone, n, chain_id=LONG_CHAIN_ID) for n in range(1, 1_101)]
    return Payloads(
        verify_json=nested_empty_objects(MAX_VERIFY_BODY_BYTES, b'{"document":{"a":', b"}}"),
        upload_parsed=nested_empty_objects(MAX_VERIFY_DOCUMENT_BYTES - 4096, b'{"a":', b"}"),
        upload_largest=nested_empty_objects(MAX_VERIFY_UPLOAD_BYTES - 4096, b'{"a":', b"}"),
        submission_json=nested_empty_objects(MAX_SUBMISSION_BYTES, b'{"transactions":', b"}"),
        peer_junk=os.urandom(min(MAX_PEER_BODY_BYTES, operator_cap)),
        junk=junk_batches(short),
        long_junk=junk_batches(long),
    )


@dataclass
class Tally:
    """What the hostile clients sent and what came back."""

    junk_refused: int = 0
    long_junk_refused: int = 0
    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _refused(response: httpx.Response) -> int:
    if response.status_code != 202:
        return 0
    return sum(1 for r in response.json()["results"] if r.get("status") == "rejected")


def run_hostile_client(url: str, payloads: Payloads, tally: Tally, stop: threading.Event, offset: int = 0) -> None:
    """Send the largest admitted bodies to every POST route, back to back, until ``stop``."""
    json_headers = {"content-type": "application/json"}
    with httpx.Client(timeout=60.0) as client:
        for round_ in range(100_000):
            k = offset + round_
            sends: list[tuple[str, bool, dict[str, Any]]] = [
                ("/v1/verify", False, {"content": payloads.verify_json, "headers": json_headers}),
                ("/v1/verify", False, {"files": {"file": ("a.json", payloads.upload_parsed)}}),
                ("/v1/verify", False, {"files": {"file": ("scan.pdf", payloads.upload_largest)}}),
                ("/v1/transactions", False, {"content": payloads.junk[k % len(payloads.junk)][0],
                                             "headers": json_headers}),
                ("/v1/transactions", False, {"content": payloads.submission_json, "headers": json_headers}),
                (PEER_MESSAGE_PATH, False, {"content": payloads.peer_junk,
                                            "headers": {"content-type": "application/msgpack"}}),
            ]
            for j in range(4):
                long_body = payloads.long_junk[(4 * k + j) % len(payloads.long_junk)][0]
                sends.append(("/v1/transactions", True, {"content": long_body, "headers": json_headers}))
            for path, long, kwargs in sends:
                if stop.is_set():
                    return
                try:
                    response = client.post(url + path, **kwargs)
                except httpx.HTTPError:
                    continue  # a refused upload may close the connection before it is sent
                refused = _refused(response) if path == "/v1/transactions" else 0
                with tally.lock:
                    tally.requests += 1
                    tally.statuses[response.status_code] = tally.statuses.get(response.status_code, 0) + 1
                    if response.status_code >= 500:
                        tally.server_errors.append(f"{path}: {response.status_code} {response.text[:200]}")
                    tally.junk_refused += refused
                    if long:
                        tally.long_junk_refused += refused


# --- the honest side --------------------------------------------------------------------


def sign_certificates(alliance: Alliance, count: int, prefix: str) -> list[Item]:
    """``count`` certificates of origin like the example, issued by the zones in turn."""
    template = json.loads((EXAMPLES_DIR / "coo_preferential.json").read_text(encoding="utf-8"))
    zones = [z.zone_id for z in alliance.genesis.zones]
    out = []
    for i in range(count):
        number = f"{prefix}-{i:05d}"
        document = with_number(template, COO, number)
        envelope, _ = alliance.issue(zones[i % len(zones)], COO, document, number)
        out.append((envelope, document))
    return out


def run_officer(
    urls: list[str], items: list[Item], latencies: list[float], failures: list[str], stop: threading.Event,
    offset: int = 0,
) -> None:
    """Submit one document at a time, wait for it to be final, record how long that took."""
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


# --- measuring ------------------------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    """A process's resident memory (``VmRSS`` in ``/proc/PID/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Phase:
    """One measured stretch: finality of the honest documents, and node memory."""

    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    rss_start: dict[str, int] = field(default_factory=dict)
    rss_peak: dict[str, int] = field(default_factory=dict)
    rss_end: dict[str, int] = field(default_factory=dict)
    tally: Tally | None = None

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "seconds": self.seconds, "final": len(self.latencies), "not_final": len(self.failures),
            "finality_p50_s": percentile(self.latencies, 0.5), "finality_p99_s": percentile(self.latencies, 0.99),
            "rss_start_mb": {z: v / MIB for z, v in self.rss_start.items()},
            "rss_peak_mb": {z: v / MIB for z, v in self.rss_peak.items()},
            "rss_end_mb": {z: v / MIB for z, v in self.rss_end.items()},
        }
        if self.tally is not None:
            out |= {"hostile_requests": self.tally.requests, "statuses": self.tally.statuses,
                    "junk_refused": self.tally.junk_refused, "long_junk_refused": self.tally.long_junk_refused,
                    "server_errors": len(self.tally.server_errors)}
        return out


def run_phase(
    urls: list[str], pids: dict[str, int], items: list[Item], *, officers: int, hostile: Payloads | None,
    seconds: float, until: Callable[[Phase], bool] = lambda phase: False, deadline: float | None = None,
) -> Phase:
    """Officers (and, with ``hostile``, one hostile client per node) for ``seconds`` at least,
    then until ``until(phase)`` holds or ``deadline`` seconds have passed."""
    phase = Phase(rss_start={z: rss_bytes(p) for z, p in pids.items()})
    phase.rss_peak = dict(phase.rss_start)
    stop = threading.Event()
    threads = [
        threading.Thread(target=run_officer, args=(urls, items[k::officers], phase.latencies, phase.failures, stop, k),
                         daemon=True)
        for k in range(officers)
    ]
    if hostile is not None:
        phase.tally = Tally()
        threads += [
            threading.Thread(target=run_hostile_client, args=(url, hostile, phase.tally, stop, i), daemon=True)
            for i, url in enumerate(urls)
        ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    limit = deadline if deadline is not None else seconds
    try:
        for _ in range(int(limit / 0.25) + 1):
            elapsed = time.monotonic() - started
            for zone, pid in pids.items():
                phase.rss_peak[zone] = max(phase.rss_peak[zone], rss_bytes(pid))
            if elapsed >= limit or (elapsed >= seconds and until(phase)) or not any(t.is_alive() for t in threads):
                break
            time.sleep(0.25)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=90)
    phase.seconds = time.monotonic() - started
    phase.rss_end = {z: rss_bytes(p) for z, p in pids.items()}
    return phase


def run_hostile(args: argparse.Namespace) -> int:
    """Finality p50/p99 on a fresh devnet without, then with, one hostile client per node; node RSS."""
    from scripts.bench import measure_verify_rate
    from scripts.devnet import Devnet, create_devnet, free_port_block

    def say(text: str) -> None:
        print(text, flush=True)

    say("measuring raw Ed25519 verify/s (baseline) ...")
    baseline = measure_verify_rate()

    with tempfile.TemporaryDirectory(prefix="zoneledger-hostile-") as tmp:
        layout = create_devnet(
            Path(tmp), args.zones, free_port_block(args.zones), heartbeat_ms=1000,
            consensus={"timeout_propose_ms": 1000, "timeout_delta_ms": 500, "max_block_txs": 5000},
        )
        alliance = layout.alliance()
        say("signing certificates and building the hostile bodies ...")
        items = sign_certificates(alliance, 4000, "HOSTILE-BENCH")
        payloads = build_payloads(alliance, layout.zones[0].zone_id)
        devnet = Devnet(layout)
        devnet.start()
        try:
            devnet.wait_healthy()
            urls = [z.url for z in layout.zones]
            pids = {z.zone_id: devnet.processes[z.zone_id].pid for z in layout.zones}
            run_officer(urls, items[:8], [], [], threading.Event())  # warm every node up
            say(f"quiet: {args.officers} officers for {args.seconds:.0f} s ...")
            quiet = run_phase(urls, pids, items[8:2000], officers=args.officers, hostile=None, seconds=args.seconds)
            say(f"hostile: {args.officers} officers and one hostile client per node, "
                f"{args.seconds:.0f} s and {args.junk:,} junk transactions refused at least ...")
            noisy = run_phase(
                urls, pids, items[2000:], officers=args.officers, hostile=payloads, seconds=args.seconds,
                until=lambda p: p.tally is not None and p.tally.junk_refused >= args.junk,
                deadline=args.seconds * 4,
            )
        finally:
            devnet.stop()
    figures = {
        "zones": args.zones, "cores": os.cpu_count(), "ed25519_verify_per_s": baseline,
        "quiet": quiet.summary(), "hostile": noisy.summary(),
    }
    say("")
    say(f"baseline {baseline:,.0f} verify/s | {args.zones} validators on {os.cpu_count()} cores")
    for name, phase in (("quiet  ", quiet), ("hostile", noisy)):
        growth = max(phase.rss_peak[z] - phase.rss_start[z] for z in phase.rss_start) / MIB
        say(
            f"{name}: {len(phase.latencies)} documents final in {phase.seconds:.1f} s ({len(phase.failures)} not), "
            f"finality p50 {percentile(phase.latencies, 0.5):.3f} s, p99 {percentile(phase.latencies, 0.99):.3f} s; "
            f"node RSS before {statistics.mean(phase.rss_start.values()) / MIB:.0f} MB, "
            f"after {statistics.mean(phase.rss_end.values()) / MIB:.0f} MB (mean), largest rise {growth:.0f} MB"
        )
    if noisy.tally is not None:
        tally = noisy.tally
        say(f"hostile requests: {tally.requests:,} {dict(sorted(tally.statuses.items()))}, junk transactions refused "
            f"{tally.junk_refused:,} ({tally.long_junk_refused:,} with 15 KB chain ids), 5xx answers "
            f"{len(tally.server_errors)}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


def register(which: Any) -> None:
    """``zoneledger bench hostile`` under the bench command's suites."""
    hostile = which.add_parser("hostile", help="finality p50/p99 and node RSS without and with hostile clients")
    hostile.add_argument("--zones", type=int, default=4)
    hostile.add_argument("--officers", type=int, default=2, help="honest officers, one document at a time each")
    hostile.add_argument("--seconds", type=float, default=30.0, help="length of each phase (the hostile one "
                         "goes on until --junk transactions were refused, at most 4 x as long)")
    hostile.add_argument("--junk", type=int, default=10_000, help="junk transactions to have refused")
    hostile.add_argument("--json", type=Path, help="also write the figures as JSON here")
    hostile.set_defaults(func=run_hostile)
