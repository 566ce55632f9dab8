"""``zoneledger bench scale``: what one height costs the alliance as it grows.

Starts a fresh devnet of ``--zones`` validators (on loopback, or each zone in its own
network namespace behind the wide-area latency stage with ``--netns``), waits until every
validator has a stream to every other, offers ``--rate`` single-document submissions per
second for ``--seconds``, and reads each validator's ``/metrics`` before and after. It
reports, per committed height and summed over the validators: stream items (messages,
requests, replies), frames, bytes and CPU seconds; and the finality latency of the
offered documents, each validator's resident memory, and the startup time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

METRICS_TIMEOUT_S = 120.0
"""How long one ``/metrics`` read may take before the measurement gives up."""
_METRIC = re.compile(r'^(?P<name>[a-z_]+)(?:\{direction="(?P<direction>in|out)"\})? (?P<value>[0-9.e+-]+)$')
_RECEIVED = re.compile(r'^zoneledger_peer_received_total\{kind="(?P<kind>[^"]*)"\} (?P<value>[0-9.e+-]+)$')


def register(which: Any) -> None:
    scale = which.add_parser("scale", help="messages, bytes, CPU per height and finality by alliance size")
    scale.add_argument("--zones", type=int, default=4)
    scale.add_argument("--rate", type=float, default=10.0, help="offered documents per second")
    scale.add_argument("--seconds", type=float, default=60.0, help="how long the load is offered")
    scale.add_argument("--netns", action="store_true", help="each zone in its own network namespace, WAN latency")
    scale.add_argument("--data-dir", type=Path, default=None, help="keep the devnet here (default: a temp dir)")
    scale.add_argument("--json", type=Path, help="also write the figures as JSON here")
    scale.set_defaults(func=run_scale)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One validator's counters at one instant."""

    height: int
    items_out: float
    frames_out: float
    bytes_out: float
    cpu_s: float
    received: dict[str, float] = field(default_factory=dict)
    """Stream items read, by kind (replies have the kind ``reply``)."""


def parse_metrics(text: str) -> Snapshot:
    values: dict[str, float] = {}
    received: dict[str, float] = {}
    for line in text.splitlines():
        by_kind = _RECEIVED.match(line)
        if by_kind:
            received[by_kind["kind"] or "reply"] = float(by_kind["value"])
            continue
        match = _METRIC.match(line)
        if match:
            key = match["name"] + (f":{match['direction']}" if match["direction"] else "")
            values[key] = float(match["value"])
    return Snapshot(
        int(values.get("zoneledger_height", 0)), values.get("zoneledger_peer_items_total:out", 0.0),
        values.get("zoneledger_peer_frames_total:out", 0.0), values.get("zoneledger_peer_bytes_total:out", 0.0),
        values.get("process_cpu_seconds_total", 0.0), received,
    )


def compute_per_height(before: list[Snapshot], after: list[Snapshot]) -> dict[str, Any]:
    """Alliance-wide cost of one height between two snapshots of every validator."""
    heights = min(a.height for a in after) - max(b.height for b in before)
    if heights <= 0:
        return {"heights": float(heights)}

    def total(field: str) -> float:
        return float(sum(getattr(a, field) - getattr(b, field) for a, b in zip(after, before, strict=True)))

    return {
        "heights": float(heights),
        "messages_per_height": total("items_out") / heights,
        "frames_per_height": total("frames_out") / heights,
        "bytes_per_height": total("bytes_out") / heights,
        "cpu_s_per_height": total("cpu_s") / heights,
        "received_per_height": {
            kind: sum(a.received.get(kind, 0.0) - b.received.get(kind, 0.0) for a, b in zip(after, before, strict=True)) / heights
            for kind in sorted({k for a in after for k in a.received})
        },
    }


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


@contextmanager
def started_alliance(args: argparse.Namespace, root: Path, say: Callable[[str], None]) -> Iterator[tuple[list[str], list[int]]]:
    """The alliance running: (validator URLs, validator PIDs)."""
    if args.netns:
        from scripts.netns import NetnsAlliance

        with NetnsAlliance(root, args.zones, heartbeat_ms=5000) as alliance:
            alliance.start(timeout=60.0 + 4.0 * args.zones, progress=lambda up, n: say(f"  {up}/{n} validators up"))
            yield alliance.urls(), [p.pid for p in alliance.devnet.processes.values()]
        return
    from scripts.devnet import Devnet, create_devnet, free_port_block

    layout = create_devnet(root, args.zones, free_port_block(args.zones), heartbeat_ms=5000)
    devnet = Devnet(layout)
    devnet.start()
    try:
        devnet.wait_healthy(timeout=60.0 + 4.0 * args.zones)
        yield [z.url for z in layout.zones], [p.pid for p in devnet.processes.values()]
    finally:
        devnet.stop()


def wait_streams(client: httpx.Client, urls: list[str], timeout_s: float, say: Callable[[str], None]) -> None:
    """Until every validator answers and has streams to at least 2f other validators (with
    itself a quorum: enough to commit), reporting progress every 15 s. All n - 1 is not
    waited for: at 58 zones on two cores some peer is always reconnecting."""
    deadline = time.monotonic() + timeout_s
    n = len(urls)
    want = min(n - 1, 2 * ((n - 1) // 3))
    next_report = time.monotonic() + 15.0
    while True:
        ups: list[int] = []
        silent = 0
        for url in urls:
            try:
                text = client.get(f"{url}/metrics").text
            except httpx.HTTPError:
                silent += 1
                continue
            ups.append(sum(1 for line in text.splitlines() if line.startswith("zoneledger_peer_up{") and line.endswith(" 1")))
        if not silent and min(ups) >= want:
            return
        fewest = min(ups) if ups else 0
        if time.monotonic() > deadline:
            # Measured all the same: what a saturated alliance does is the figure wanted.
            say(f"  going on after {timeout_s:.0f} s with fewest {fewest}/{n - 1} streams, {silent} not answering")
            return
        if time.monotonic() > next_report:
            say(f"  fewest streams up on a validator: {fewest}/{n - 1} (waiting for {want}); {silent} not answering")
            next_report += 15.0
        time.sleep(1.0)


def snapshot_all(client: httpx.Client, urls: list[str]) -> list[Snapshot]:
    """Every validator's counters, read side by side (at 58 zones one read can take tens
    of seconds on a saturated machine: one after another they would span minutes)."""
    from concurrent.futures import ThreadPoolExecutor

    def read(url: str) -> Snapshot:
        return parse_metrics(client.get(f"{url}/metrics", timeout=METRICS_TIMEOUT_S).text)

    with ThreadPoolExecutor(max_workers=min(16, len(urls))) as pool:
        return list(pool.map(read, urls))


def run_scale(args: argparse.Namespace) -> int:
    from scripts.bench import _offer, example_certificate, measure_verify_rate, sign_certificates

    def say(text: str) -> None:
        print(text, flush=True)

    say("measuring raw Ed25519 verify/s (baseline) ...")
    baseline = measure_verify_rate()
    say(f"  baseline: {baseline:,.0f} verify/s")
    with tempfile.TemporaryDirectory(prefix="zoneledger-scale-") as tmp:
        root = args.data_dir or Path(tmp)
        started = time.monotonic()
        with started_alliance(args, root / "devnet", say) as (urls, pids), httpx.Client(timeout=30.0) as client:
            healthy_s = time.monotonic() - started
            say(f"{len(urls)} validators healthy after {healthy_s:.1f} s; waiting for every stream ...")
            wait_streams(client, urls, 60.0 + len(urls), say)
            streams_s = time.monotonic() - started
            say(f"  every validator has streams to a quorum after {streams_s:.1f} s")
            from scripts.devnet import DevnetLayout

            layout = DevnetLayout.load((root / "devnet").resolve())
            alliance = layout.alliance()
            count = max(1, int(args.rate * args.seconds))
            items = sign_certificates(alliance, [z.zone_id for z in layout.zones], count, "SCALE", example_certificate())
            batches = [[item] for item in items]
            before = snapshot_all(client, urls)
            say(f"offering {count} documents at {args.rate:g}/s, one per request ...")
            clients = max(8, int(args.rate * 10) + 1)
            latencies, committed, elapsed = asyncio.run(_offer(batches, urls, args.rate, 1, clients))
            after = snapshot_all(client, urls)
            memory = [rss_mib(pid) for pid in pids]
    figures: dict[str, Any] = {
        "zones": args.zones, "netns": args.netns, "offered_rate": args.rate, "offered": count, "committed": committed,
        "elapsed_s": elapsed, "finality_p50_s": percentile(latencies, 0.5), "finality_p99_s": percentile(latencies, 0.99),
        "healthy_s": healthy_s, "streams_up_s": streams_s, "rss_mib_median": percentile(memory, 0.5),
        "rss_mib_max": max(memory) if memory else 0.0, "ed25519_verify_per_s": baseline, "cores": os.cpu_count(),
        **compute_per_height(before, after),
    }
    say("")
    say(
        f"{args.zones} zones{' (netns, WAN latency)' if args.netns else ''}: committed {committed}/{count} | "
        f"finality p50 {figures['finality_p50_s']:.3f} s, p99 {figures['finality_p99_s']:.3f} s | "
        f"startup {healthy_s:.0f} s healthy, {streams_s:.0f} s all streams | RSS median {figures['rss_mib_median']:.0f} MiB"
    )
    if figures.get("messages_per_height") is not None:
        say(
            f"per height over {figures['heights']:.0f} heights: {figures['messages_per_height']:,.0f} messages in "
            f"{figures['frames_per_height']:,.0f} frames, {figures['bytes_per_height'] / 1024:,.0f} KiB, "
            f"{figures['cpu_s_per_height']:.2f} CPU s (all validators) | baseline {baseline:,.0f} verify/s"
        )
        received = ", ".join(f"{kind} {count:,.0f}" for kind, count in figures["received_per_height"].items())
        say(f"received per height, by kind: {received}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0
