"""The alliance on separate hosts: each zone in its own network namespace, the latency
matrix between the zones' real locations on every link (``scripts/netns.py``).

The default suite runs 7 zones through one partition and one kill. The slow-marked tests
run the whole 58-zone alliance through the faults of issue 14: f = 19 zones killed,
20 killed, Asia partitioned from Africa and Europe, the proposer stopped for 30 s, a zone
restarted with an empty disk. After each: every acknowledged document is final on every
surviving node, all report the same block at every height, nobody equivocated.

Run the slow ones with ``.venv/bin/pytest -m slow tests/integration/test_netns_alliance.py``
(root is needed for ``ip netns``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from netutil import (
    assert_no_equivocation,
    assert_same_chain,
    certificates,
    heights,
    submit_all,
    wait_final_everywhere,
    wait_until,
)

from scripts.geo import AFRICA, AMERICAS, ASIA, EUROPE, get_zones_on
from scripts.netns import PREFIX, NetnsAlliance, get_unavailable_reason

UNAVAILABLE = get_unavailable_reason()
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(UNAVAILABLE is not None, reason=f"network namespaces unavailable: {UNAVAILABLE}"),
]


def ip_names() -> set[str]:
    import subprocess

    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return {n for n in namespaces if n.startswith(PREFIX)} | {
        p.split(":")[1].strip().split("@")[0] for p in links.splitlines() if f": {PREFIX}" in p
    }


def patient_heights(urls: list[str], timeout: float = 30.0) -> dict[str, int]:
    """``heights`` for 58 busy validators on 2 cores: a status may take seconds to answer."""
    with httpx.Client(timeout=timeout) as client:
        return {url: client.get(f"{url}/v1/status").json()["height"] for url in urls}


def patient_same_chain(urls: list[str], timeout: float = 30.0) -> int:
    """``assert_same_chain`` with the patience of :func:`patient_heights`: one block hash at
    the lowest head among ``urls``. Headers are hash-chained, so the same block there means
    the same chain below it (58 zones x every height was thousands of requests)."""
    top = min(patient_heights(urls).values())
    with httpx.Client(timeout=timeout) as client:
        hashes = {client.get(f"{url}/v1/headers/{top}").json()["block_hash"] for url in urls}
    assert len(hashes) == 1, f"fork at or below height {top}: {hashes}"
    return top


def max_height(urls: list[str]) -> int:
    return max(patient_heights(urls).values())


def wait_caught_up(urls: list[str], timeout: float) -> None:
    """Every zone reaches the height the highest one had when this was called. (Not "all at
    one height at once": reading 58 busy zones takes longer than a height, so on a live
    chain that never held.)"""
    target = max_height(urls)
    with httpx.Client(timeout=30.0) as client:
        for url in urls:
            wait_until(lambda url=url: client.get(f"{url}/v1/status").json()["height"] >= target, timeout,
                       f"{url} to reach height {target}")


def proposer_zone(alliance: NetnsAlliance, via: str) -> str:
    with httpx.Client(timeout=5.0) as client:
        status = client.get(f"{via}/v1/status").json()
    return str(alliance.plan.zones[(status["consensus_height"] + status["round"]) % len(alliance.plan.zones)])


# --- 7 zones, default suite -------------------------------------------------------------


@pytest.fixture
def seven(tmp_path: Path) -> Iterator[NetnsAlliance]:
    before = ip_names()
    with NetnsAlliance(tmp_path / "devnet", 7, heartbeat_ms=3000) as alliance:
        alliance.start(timeout=120)
        yield alliance
    assert ip_names() == before, "the harness left namespaces or interfaces behind"


def test_seven_zones_in_namespaces_survive_a_partition_and_a_kill(seven: NetnsAlliance) -> None:
    alliance = seven
    items = certificates(alliance.layout.alliance(), 60, "NS7")
    # Liveness bounds, not speed figures: generous, the machine is shared.
    final = 240.0
    everyone = alliance.urls()

    acked = submit_all(everyone, items[:20])
    assert len(acked) == 20
    wait_final_everywhere(everyone, acked, final)
    # Every validator pair talked through its delaying link, not around it.
    for zone_id in alliance.plan.zones:
        links = alliance.link_status(zone_id)
        assert all(link["bytes_up"] > 0 and link["bytes_down"] > 0 for link in links.values()), (zone_id, links)
        assert all(link["delay_ms"] > 2 for link in links.values())

    # Partition: the two Asian zones from the other five (a quorum of 7 is 5).
    cut = ["LK-HAMBANTOTA", "CN-QIANHAI"]
    majority = alliance.urls(skip=cut)
    minority = [alliance.url(z) for z in cut]
    alliance.partition(cut)
    assert alliance.link_status("LK-HAMBANTOTA")["LK-HAMBANTOTA>EG-TEDA"]["cut"] is True
    assert alliance.link_status("EG-TEDA")["EG-TEDA>CN-QIANHAI"]["cut"] is True
    assert alliance.link_status("LK-HAMBANTOTA")["LK-HAMBANTOTA>CN-QIANHAI"]["cut"] is False
    time.sleep(1.0)  # a block already certified before the cut may still land on the cut side
    stranded = heights(minority)
    during = submit_all(majority, items[20:40])
    assert len(during) == 20
    wait_final_everywhere(majority, during, final)
    assert max_height(majority) > max(stranded.values()), "the quorum side did not go on"
    assert heights(minority) == stranded, "the cut-off side committed without a quorum"
    assert_same_chain(majority)
    alliance.heal()
    wait_final_everywhere(everyone, acked + during, final)
    assert_same_chain(everyone)

    # kill -9 one zone; the other six go on; it comes back and catches up.
    victim = "DJ-DIFTZ"
    alliance.kill_zone(victim)
    survivors = alliance.urls(skip=[victim])
    after = submit_all(survivors, items[40:])
    assert len(after) == 20
    wait_final_everywhere(survivors, after, final)
    alliance.start_zone(victim)
    wait_final_everywhere(everyone, acked + during + after, final)
    assert_same_chain(everyone)
    assert_no_equivocation(alliance.layout)


def test_stale_names_from_a_crashed_harness_are_removed(tmp_path: Path) -> None:
    """A harness that dies leaves namespaces behind: ``cleanup_stale`` with its tag removes them all."""
    from scripts.netns import cleanup_stale

    alliance = NetnsAlliance(tmp_path / "devnet", 2)
    alliance.build()  # no close(): as if the harness had crashed
    try:
        names = {n for n in ip_names() if n.startswith(PREFIX + alliance.plan.tag)}
        assert alliance.plan.namespace(0) in names and alliance.plan.bridge in names
        assert alliance.plan.run_dir.is_dir()
        proxies = list(alliance.proxies.values())
        removed = cleanup_stale(alliance.plan.tag)
        assert alliance.plan.namespace(0) in removed and alliance.plan.bridge in removed
        assert not {n for n in ip_names() if n.startswith(PREFIX + alliance.plan.tag)}
        assert not alliance.plan.run_dir.exists()
        for process in proxies:
            assert process.wait(10) != 0  # killed with its namespace
    finally:
        alliance.close()


# --- 58 zones, slow ---------------------------------------------------------------------


ZONES = 58
F = (ZONES - 1) // 3


@pytest.fixture(scope="module")
def alliance58(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetnsAlliance]:
    before = ip_names()
    root = tmp_path_factory.mktemp("netns58") / "devnet"
    with NetnsAlliance(root, ZONES, heartbeat_ms=5000) as alliance:
        started = time.monotonic()
        alliance.start(timeout=900)
        print(f"58 validators in namespaces answering after {time.monotonic() - started:.1f} s")
        yield alliance
    assert ip_names() == before


@pytest.fixture
def whole(alliance58: NetnsAlliance) -> NetnsAlliance:
    """Every zone running and caught up before a test faults it."""
    alliance = alliance58
    alliance.heal()
    for zone_id in alliance.plan.zones:
        if zone_id in alliance.running():
            alliance.resume_zone(zone_id)  # harmless unless a failed test left it stopped
        else:
            alliance.start_zone(zone_id, timeout=300)
    wait_caught_up(alliance.urls(), 300)
    return alliance


def check_everything(alliance: NetnsAlliance, acked: list[bytes], urls: list[str] | None = None) -> None:
    urls = urls or alliance.urls()
    wait_final_everywhere(urls, acked, timeout=600)
    patient_same_chain(urls)
    assert_no_equivocation(alliance.layout)


@pytest.mark.slow
def test_58_kill_f_19_the_other_39_keep_committing(whole: NetnsAlliance) -> None:
    alliance = whole
    items = certificates(alliance.layout.alliance(), 60, "K19")
    victims = list(alliance.plan.zones[-F:])
    for zone_id in victims:
        alliance.kill_zone(zone_id)
    survivors = alliance.urls(skip=victims)
    acked = submit_all(survivors, items)
    assert len(acked) == len(items)
    check_everything(alliance, acked, survivors)
    for zone_id in victims:
        alliance.start_zone(zone_id, timeout=300)
    check_everything(alliance, acked)


@pytest.mark.slow
def test_58_kill_20_halts_without_fork_and_resumes(whole: NetnsAlliance) -> None:
    alliance = whole
    victims = list(alliance.plan.zones[-(F + 1):])
    for zone_id in victims:
        alliance.kill_zone(zone_id)
    survivors = alliance.urls(skip=victims)
    time.sleep(5)  # what was certified before the kill lands
    before = patient_heights(survivors)
    acked = submit_all(survivors, certificates(alliance.layout.alliance(), 20, "K20"))
    assert len(acked) == 20  # accepted: replicated to f peers, but cannot be final
    time.sleep(30)
    assert patient_heights(survivors) == before, "the chain advanced with 38 of 58 validators"
    patient_same_chain(survivors)
    for zone_id in victims:
        alliance.start_zone(zone_id, timeout=300)
    check_everything(alliance, acked)


@pytest.mark.slow
def test_58_partition_asia_from_africa_and_europe(whole: NetnsAlliance) -> None:
    alliance = whole
    asia = get_zones_on({ASIA}, alliance.plan.zones)
    rest = get_zones_on({AFRICA, EUROPE, AMERICAS}, alliance.plan.zones)
    assert len(asia) <= F and len(rest) >= 2 * F + 1  # the side holding a quorum is Africa + Europe (+ Americas)
    asia_urls = [alliance.url(z) for z in asia]
    rest_urls = [alliance.url(z) for z in rest]
    alliance.partition(asia)
    time.sleep(3)
    stranded = patient_heights(asia_urls)
    acked = submit_all(rest_urls, certificates(alliance.layout.alliance(), 60, "ASIA"))
    assert len(acked) == 60
    wait_final_everywhere(rest_urls, acked, timeout=600)
    assert max_height(rest_urls) > max(stranded.values()), "the quorum side did not go on"
    assert patient_heights(asia_urls) == stranded, "the Asian side committed without a quorum"
    patient_same_chain(rest_urls)
    alliance.heal()
    check_everything(alliance, acked)


@pytest.mark.slow
def test_58_sigstop_the_proposer_for_30_seconds(whole: NetnsAlliance) -> None:
    alliance = whole
    frozen = proposer_zone(alliance, alliance.urls()[0])
    others = alliance.urls(skip=[frozen])
    items = certificates(alliance.layout.alliance(), 60, "STOP")
    acked: list[bytes] = []
    alliance.pause_zone(frozen)
    paused_at = time.monotonic()
    try:
        acked += submit_all(others, items)
        wait_final_everywhere(others, acked, timeout=300)  # the others go on without it
        time.sleep(max(0.0, 30.0 - (time.monotonic() - paused_at)))  # stopped 30 s in all
    finally:
        alliance.resume_zone(frozen)
    assert len(acked) == 60
    check_everything(alliance, acked)


@pytest.mark.slow
def test_58_restart_with_an_empty_disk_syncs_from_peers(whole: NetnsAlliance) -> None:
    alliance = whole
    acked = submit_all(alliance.urls(), certificates(alliance.layout.alliance(), 40, "EMPTY"))
    wait_final_everywhere(alliance.urls(), acked, timeout=600)
    lost = "KE-NAIVASHA"
    alliance.stop_zone(lost)
    target = max_height(alliance.urls(skip=[lost]))
    alliance.start_zone(lost, empty=True, timeout=300)
    # It starts from genesis: everything it holds it fetched and checked (each block's
    # commit certificate against the genesis validator set) before applying.
    wait_until(lambda: patient_heights([alliance.url(lost)])[alliance.url(lost)] >= target, 600, "the emptied zone to sync")
    check_everything(alliance, acked)


@pytest.mark.slow
def test_58_namespaces_reach_each_other_through_the_delaying_links(tmp_path: Path) -> None:
    """The network alone at full size (no validators): the root namespace reaches every
    zone's address, and one zone reaches every other through its link, no sooner than the
    matrix allows (a new connection: handshake round trip, request, reply = 4 one-way)."""
    import subprocess
    import sys

    from scripts.geo import compute_latency_ms
    from scripts.netns import PROXY_BASE_PORT

    with NetnsAlliance(tmp_path / "devnet", ZONES) as alliance:
        plan = alliance.plan
        servers = [
            subprocess.Popen(
                ["ip", "netns", "exec", plan.namespace(i), sys.executable, "-m", "http.server", "8600",
                 "--bind", plan.address(i)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            for i in range(ZONES)
        ]
        try:
            with httpx.Client(timeout=10.0) as client:
                for i in range(ZONES):
                    wait_until(lambda i=i: client.get(f"http://{plan.address(i)}:8600/").status_code == 200, 60,
                               f"{plan.zones[i]}'s server from the root namespace")
            me = plan.zones.index("LK-HAMBANTOTA")
            script = (
                "import sys, time, urllib.request\n"
                "for j in map(int, sys.argv[1:]):\n"
                "    s = time.monotonic()\n"
                f"    urllib.request.urlopen(f'http://127.0.0.1:{{{PROXY_BASE_PORT} + j}}/', timeout=30).read()\n"
                "    print(j, time.monotonic() - s)\n"
            )
            others = [str(j) for j in range(ZONES) if j != me]
            out = subprocess.run(
                ["ip", "netns", "exec", plan.namespace(me), sys.executable, "-c", script, *others],
                capture_output=True, text=True, timeout=300, check=True,
            ).stdout
            measured = {plan.zones[int(j)]: float(s) for j, s in (line.split() for line in out.splitlines())}
            assert len(measured) == ZONES - 1
            for zone_id, seconds in measured.items():
                one_way = compute_latency_ms("LK-HAMBANTOTA", zone_id) / 1000
                assert seconds >= 4 * one_way - 0.002, (zone_id, seconds, one_way)
        finally:
            for server in servers:
                server.kill()
                server.wait()
