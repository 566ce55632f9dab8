"""Genesis loading: the contract's example, and each way a genesis can be wrong."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from ledger import errors
from ledger.genesis import Genesis


def test_contract_genesis_loads(contract: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "genesis.json"
    path.write_text(json.dumps(contract["genesis"], indent=2))
    genesis = Genesis.load(path)
    assert genesis.genesis_hash.hex() == contract["genesis_hash"]
    assert genesis.chain_id == "sez-alliance-example"
    assert [z.zone_id for z in genesis.zones] == ["EG-TEDA", "BY-GREATSTONE", "DJ-DIFTZ", "LK-HAMBANTOTA"]
    assert genesis.consensus.timeout_propose_ms == 1000


def _mutate(contract: dict[str, Any], change: Any) -> dict[str, Any]:
    value = copy.deepcopy(contract["genesis"])
    change(value)
    return value


BAD = {
    "no zones": lambda g: g.update(zones=[]),
    "bad chain id": lambda g: g.update(chain_id="Bad Chain"),
    "bad time": lambda g: g.update(genesis_time="yesterday"),
    "duplicate zone": lambda g: g["zones"].append(copy.deepcopy(g["zones"][0])),
    "bad country": lambda g: g["zones"][0].update(country="XX"),
    "short key": lambda g: g["zones"][0].update(admin_key="abcd"),
    "uppercase hex": lambda g: g["zones"][0].update(admin_key=g["zones"][0]["admin_key"].upper()),
    "shared validator": lambda g: g["zones"][1].update(validator_key=g["zones"][0]["validator_key"]),
    "negative timeout": lambda g: g["consensus"].update(timeout_propose_ms=-1),
    "unknown setting": lambda g: g["consensus"].update(timeout_propse_ms=5),
    "bad zone id": lambda g: g["zones"][0].update(zone_id="teda"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_genesis_refused(contract: dict[str, Any], name: str) -> None:
    with pytest.raises(errors.GenesisError):
        Genesis.from_json(_mutate(contract, BAD[name]))


def test_unreadable_genesis_file(tmp_path: Path) -> None:
    with pytest.raises(errors.GenesisError):
        Genesis.load(tmp_path / "missing.json")
    (tmp_path / "g.json").write_text("{not json")
    with pytest.raises(errors.GenesisError):
        Genesis.load(tmp_path / "g.json")
