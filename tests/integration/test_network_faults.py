"""Four validator processes on loopback, under kill -9, SIGSTOP, outages and data loss.

After each scenario: every acknowledged document is final on every running node, all
nodes report the same block hash at every height, and no validator equivocated.
"""

from __future__ import annotations

import shutil
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
from netutil import (
    assert_no_equivocation,
    assert_same_chain,
    certificates,
    heights,
    make_layout,
    submit_all,
    wait_final_everywhere,
    wait_until,
)

from scripts.devnet import Devnet, DevnetLayout

pytestmark = pytest.mark.integration


@pytest.fixture
def network(tmp_path: Path):  # type: ignore[no-untyped-def]
    layout = make_layout(tmp_path)
    devnet = Devnet(layout)
    devnet.start()
    devnet.wait_healthy()
    yield layout, devnet
    devnet.stop()


def urls_of(layout: DevnetLayout, skip: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
    return [z.url for z in layout.zones if z.zone_id not in skip]


def proposer_zone(layout: DevnetLayout) -> str:
    with httpx.Client(timeout=5.0) as client:
        status = client.get(f"{layout.zones[0].url}/v1/status").json()
    index = (status["consensus_height"] + status["round"]) % len(layout.zones)
    return layout.zones[index].zone_id


def stream_with_fault(layout: DevnetLayout, count: int, fault: object, prefix: str, skip: set[str]) -> list[bytes]:
    items = certificates(layout.alliance(), count, prefix)
    acked: list[bytes] = []
    worker = threading.Thread(target=lambda: acked.extend(submit_all(urls_of(layout, skip), items)))
    worker.start()
    time.sleep(1.5)
    fault()  # type: ignore[operator]
    worker.join(timeout=300)
    return acked


def test_kill_non_proposer_during_500_submissions(network) -> None:  # type: ignore[no-untyped-def]
    layout, devnet = network
    victim = "LK-HAMBANTOTA"
    acked = stream_with_fault(layout, 500, lambda: devnet.kill_zone(victim), "KA", {victim})
    assert len(acked) == 500
    running = urls_of(layout, {victim})
    wait_final_everywhere(running, acked)
    assert_same_chain(running)
    devnet.start_zone(victim)
    devnet.wait_healthy(zones=[victim])
    wait_final_everywhere(urls_of(layout), acked)
    assert_same_chain(urls_of(layout))
    assert_no_equivocation(layout)


def test_kill_current_proposer(network) -> None:  # type: ignore[no-untyped-def]
    layout, devnet = network
    killed: list[str] = []

    def kill_proposer() -> None:
        zone = proposer_zone(layout)
        killed.append(zone)
        devnet.kill_zone(zone)

    items = certificates(layout.alliance(), 200, "KP")
    first = submit_all(urls_of(layout), items[:100])
    kill_proposer()
    survivors = urls_of(layout, set(killed))
    second = submit_all(survivors, items[100:])
    acked = first + second
    assert len(acked) == 200
    wait_final_everywhere(survivors, acked)
    assert_same_chain(survivors)
    devnet.start_zone(killed[0])
    devnet.wait_healthy(zones=killed)
    wait_final_everywhere(urls_of(layout), acked)
    assert_same_chain(urls_of(layout))
    assert_no_equivocation(layout)


def test_sigstop_one_node_for_ten_seconds(network) -> None:  # type: ignore[no-untyped-def]
    layout, devnet = network
    frozen = "DJ-DIFTZ"
    items = certificates(layout.alliance(), 150, "SS")
    devnet.signal_zone(frozen, signal.SIGSTOP)
    try:
        acked = submit_all(urls_of(layout, {frozen}), items)
        time.sleep(10)
    finally:
        devnet.signal_zone(frozen, signal.SIGCONT)
    assert len(acked) == 150
    wait_final_everywhere(urls_of(layout), acked)
    assert_same_chain(urls_of(layout))
    assert_no_equivocation(layout)


def test_two_of_four_down_halts_then_resumes(network) -> None:  # type: ignore[no-untyped-def]
    layout, devnet = network
    down = {"DJ-DIFTZ", "LK-HAMBANTOTA"}
    up = urls_of(layout, down)
    for zone in down:
        devnet.stop_zone(zone)
    before = heights(up)
    items = certificates(layout.alliance(), 20, "HALT")
    acked = submit_all(up, items)
    assert len(acked) == 20
    time.sleep(6)
    assert heights(up) == before, "the chain advanced without a quorum"
    with httpx.Client(timeout=5.0) as client:
        statuses = [client.get(f"{url}/v1/transactions/{acked[0].hex()}").json()["status"] for url in up]
    assert statuses == ["pending", "pending"]
    assert_same_chain(up)
    for zone in down:
        devnet.start_zone(zone)
    devnet.wait_healthy()
    wait_final_everywhere(urls_of(layout), acked)
    assert_same_chain(urls_of(layout))
    assert_no_equivocation(layout)


def test_node_with_empty_data_directory_catches_up(network) -> None:  # type: ignore[no-untyped-def]
    layout, devnet = network
    acked = submit_all(urls_of(layout), certificates(layout.alliance(), 120, "CU"))
    wait_final_everywhere(urls_of(layout), acked)
    lost = layout.zones[3]
    devnet.stop_zone(lost.zone_id)
    shutil.rmtree(lost.data_dir)
    more = submit_all(urls_of(layout, {lost.zone_id}), certificates(layout.alliance(), 30, "CU2"))
    devnet.start_zone(lost.zone_id)
    devnet.wait_healthy(zones=[lost.zone_id])
    target = max(heights(urls_of(layout, {lost.zone_id})).values())
    wait_until(lambda: heights([lost.url])[lost.url] >= target, 60, "the emptied node to catch up")
    wait_final_everywhere(urls_of(layout), acked + more)
    assert_same_chain(urls_of(layout))
    assert_no_equivocation(layout)
