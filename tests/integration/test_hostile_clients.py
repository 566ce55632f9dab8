"""Issue 12, "one outsider stalls the alliance", against four real validator processes.

While one hostile client per node sends the largest bodies the API admits to every
POST route (nested empty JSON objects, uploads, batches of unsigned junk transactions,
junk peer messages without any peer authentication; ``scripts/bench_hostile.py``), two
honest officers' documents keep being finalised with p99 finality within 2 s, and after
10,000 refused junk transactions every node's resident memory is within 300 MB of where
it started, at every sample and at the end.

Bounded loops only, loopback only; about 30 s once the network is up.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from netutil import make_layout

from ledger.limits import MIB
from scripts.bench_hostile import build_payloads, percentile, run_officer, run_phase, sign_certificates
from scripts.devnet import Devnet, DevnetLayout

# Slow-marked: its figure (finality p99 within 2 s) is a timing claim that needs the
# machine to itself; run it with `pytest -m slow tests/integration/test_hostile_clients.py`.
pytestmark = [pytest.mark.integration, pytest.mark.slow]

JUNK_TARGET = 10_000
"""Junk transactions to have refused before memory is compared."""
LONG_JUNK_TARGET = 1_000
"""Of which carry a 15,000-byte chain id (the shape that filled memory before)."""
MIN_HOSTILE_S = 20.0
DEADLINE_S = 75.0
FINALITY_P99_S = 2.0
RSS_GROWTH_LIMIT = 300 * MIB
HONEST_MIN_SAMPLES = 40


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


def test_hostile_clients_do_not_stall_finality_or_grow_memory(network: tuple[DevnetLayout, Devnet]) -> None:
    layout, devnet = network
    alliance = layout.alliance()
    urls = [z.url for z in layout.zones]
    pids = {z.zone_id: devnet.processes[z.zone_id].pid for z in layout.zones}
    payloads = build_payloads(alliance, layout.zones[0].zone_id)
    honest = sign_certificates(alliance, 600, "HONEST")

    # Warm up: every node has served and committed before its memory is taken as the start.
    warm_failures: list[str] = []
    run_officer(urls, honest[:8], [], warm_failures, threading.Event())
    assert not warm_failures, warm_failures

    phase = run_phase(
        urls, pids, honest[8:], officers=2, hostile=payloads, seconds=MIN_HOSTILE_S, deadline=DEADLINE_S,
        until=lambda p: (
            p.tally is not None and p.tally.junk_refused >= JUNK_TARGET
            and p.tally.long_junk_refused >= LONG_JUNK_TARGET and len(p.latencies) >= HONEST_MIN_SAMPLES
        ),
    )
    tally = phase.tally
    assert tally is not None
    report = (
        f"{phase.seconds:.1f} s hostile; {tally.requests} hostile requests {tally.statuses}; "
        f"junk refused {tally.junk_refused} ({tally.long_junk_refused} with 15 KB chain ids); "
        f"honest {len(phase.latencies)} final, {len(phase.failures)} not, "
        f"p50 {percentile(phase.latencies, 0.5):.3f} s, p99 {percentile(phase.latencies, 0.99):.3f} s; "
        "RSS MB start/peak/end " + ", ".join(
            f"{z} {phase.rss_start[z] // MIB}/{phase.rss_peak[z] // MIB}/{phase.rss_end[z] // MIB}" for z in pids
        )
    )
    print(report)
    assert not tally.server_errors, tally.server_errors[:5]
    assert tally.junk_refused >= JUNK_TARGET and tally.long_junk_refused >= LONG_JUNK_TARGET, report
    assert not phase.failures, phase.failures[:5]
    assert len(phase.latencies) >= HONEST_MIN_SAMPLES, report
    assert percentile(phase.latencies, 0.99) <= FINALITY_P99_S, report
    for zone in pids:
        assert phase.rss_peak[zone] - phase.rss_start[zone] <= RSS_GROWTH_LIMIT, report
        assert phase.rss_end[zone] - phase.rss_start[zone] <= RSS_GROWTH_LIMIT, report
