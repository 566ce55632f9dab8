"""``GET /v1/status`` of a node: the chain fields every node reports, and its own ones."""

from __future__ import annotations

from typing import Any

from ledger.chain import Chain
from ledger.genesis import Genesis


def compute_status(
    chain: Chain,
    genesis: Genesis,
    *,
    round_: int,
    consensus_height: int | None,
    mempool_size: int,
    node: dict[str, Any],
    peers: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """The status body; a validator and an observer differ only in the keyword fields."""
    header = chain.head_header
    officers = chain.get_active_officers_by_zone()
    return {
        "chain_id": genesis.chain_id,
        "genesis_hash": genesis.genesis_hash.hex(),
        "height": chain.height,
        "block_hash": chain.head_hash.hex(),
        "time_ms": header.time_ms if header else None,
        "round": round_,
        "consensus_height": consensus_height,
        "validators": len(chain.validators),
        "mempool_size": mempool_size,
        "log_size": header.log_size if header else 0,
        "node": node,
        "zones": [
            {
                "zone_id": z.zone_id, "name": z.name, "country": z.country, "status": z.status,
                "since_height": z.since_height,
                "officers": [key.hex() for key in officers.get(z.zone_id, [])],
            }
            for z in chain.get_members()
        ],
        "peers": peers,
    }
