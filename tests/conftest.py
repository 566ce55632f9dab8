"""Shared fixtures: where the contract lives, and a deterministic alliance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from scripts.devkit import Alliance, make_alliance

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.load_profile("default")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    assert SHARED.is_dir(), f"the contract directory {SHARED} is missing"
    return SHARED


@pytest.fixture(scope="session")
def contract(shared_dir: Path) -> dict[str, Any]:
    """The worked examples. contract-governance.json supersedes contract.json now that
    zone and officer records are in the state tree from genesis (DESIGN §12): its blocks
    1-2, state and bundle carry the same transactions over those records."""
    value: dict[str, Any] = json.loads((shared_dir / "vectors" / "contract-governance.json").read_text())
    return value


@pytest.fixture
def alliance() -> Alliance:
    return make_alliance(4)
