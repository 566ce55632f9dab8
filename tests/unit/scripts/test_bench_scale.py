"""The arithmetic of ``zoneledger bench scale``: metrics parsed, costs per height."""

from __future__ import annotations

from scripts.bench_scale import Snapshot, compute_per_height, parse_metrics, percentile

METRICS = """# HELP zoneledger_height Committed chain height.
zoneledger_height 12
zoneledger_peer_up{validator="1"} 1
zoneledger_peer_frames_total{direction="out"} 40
zoneledger_peer_frames_total{direction="in"} 38
zoneledger_peer_items_total{direction="out"} 90
zoneledger_peer_items_total{direction="in"} 88
zoneledger_peer_bytes_total{direction="out"} 123456
zoneledger_peer_bytes_total{direction="in"} 120000
process_cpu_seconds_total 3.250
zoneledger_peer_received_total{kind=""} 7
zoneledger_peer_received_total{kind="vote"} 60
"""


def test_parse_metrics_reads_the_outbound_counters_height_and_cpu() -> None:
    assert parse_metrics(METRICS) == Snapshot(12, 90.0, 40.0, 123456.0, 3.25, {"reply": 7.0, "vote": 60.0})


def test_per_height_sums_every_validator_over_the_heights_all_of_them_committed() -> None:
    before = [Snapshot(10, 100, 50, 1000, 1.0, {"vote": 5}), Snapshot(11, 200, 60, 2000, 2.0)]
    after = [Snapshot(15, 300, 90, 5000, 2.0, {"vote": 35}), Snapshot(14, 400, 100, 6000, 4.0, {"vote": 30, "txs": 3})]
    figures = compute_per_height(before, after)
    # From the highest "before" (11) to the lowest "after" (14): 3 heights every validator saw.
    assert figures["heights"] == 3
    assert figures["messages_per_height"] == (200 + 200) / 3
    assert figures["frames_per_height"] == (40 + 40) / 3
    assert figures["bytes_per_height"] == (4000 + 4000) / 3
    assert figures["cpu_s_per_height"] == (1.0 + 2.0) / 3
    assert figures["received_per_height"] == {"txs": 1.0, "vote": 20.0}


def test_no_height_committed_gives_no_per_height_figures() -> None:
    same = [Snapshot(5, 1, 1, 1, 1.0)]
    assert compute_per_height(same, same) == {"heights": 0.0}


def test_percentile_picks_from_the_sorted_values() -> None:
    assert percentile([3.0, 1.0, 2.0, 4.0], 0.5) == 3.0
    assert percentile([3.0, 1.0, 2.0, 4.0], 0.99) == 4.0
