"""A devnet's timeouts grow with its size beyond 16 zones, and reach the genesis and node.toml."""

from __future__ import annotations

import json
from pathlib import Path

from node.config import NodeConfig
from scripts.devnet import compute_devnet_timing, create_devnet


def test_small_devnets_keep_the_default_timeouts() -> None:
    for zones in (4, 7, 16):
        consensus, rebroadcast_ms = compute_devnet_timing(zones)
        assert (consensus["timeout_propose_ms"], consensus["timeout_delta_ms"], rebroadcast_ms) == (1000, 500, 2000)


def test_the_whole_alliance_gets_longer_timeouts() -> None:
    consensus, rebroadcast_ms = compute_devnet_timing(58)
    assert (consensus["timeout_propose_ms"], consensus["timeout_delta_ms"], rebroadcast_ms) == (3480, 1740, 5800)


def test_the_timing_lands_in_the_genesis_and_every_node_config(tmp_path: Path) -> None:
    layout = create_devnet(tmp_path / "devnet", 30, 19_760)
    genesis = json.loads(layout.genesis.read_text())
    assert genesis["consensus"]["timeout_propose_ms"] == 1800
    assert {NodeConfig.load(str(z.config)).rebroadcast_ms for z in layout.zones} == {3000}
