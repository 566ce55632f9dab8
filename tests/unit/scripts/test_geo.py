"""The zones' sites and the latency model between them."""

from __future__ import annotations

import pytest

from ledger.transactions import is_valid_zone_id
from scripts.devkit import ALLIANCE_ZONES, zone_ids
from scripts.geo import (
    AFRICA,
    AMERICAS,
    ASIA,
    EUROPE,
    ZONE_SITES,
    compute_distance_km,
    compute_latency_ms,
    compute_summary,
    get_zones_on,
    latency_matrix,
    main,
)


def test_58_real_zones_each_with_a_site_and_a_valid_unique_id() -> None:
    ids = zone_ids(58)
    assert ids[:8] == ["EG-TEDA", "BY-GREATSTONE", "DJ-DIFTZ", "LK-HAMBANTOTA", "CN-QIANHAI", "AE-JAFZA", "PA-COLON",
                       "KE-NAIVASHA"]
    assert not any(z.startswith("XX-") for z in ids)
    assert len(set(ids)) == 58 and all(is_valid_zone_id(z) for z in ids)
    assert set(ZONE_SITES) == {z[0] for z in ALLIANCE_ZONES}
    assert all(z[2] == z[0][:2] for z in ALLIANCE_ZONES)  # the id starts with the country


def test_asia_against_the_rest_leaves_a_quorum_on_one_side() -> None:
    ids = zone_ids(58)
    asia = get_zones_on({ASIA}, ids)
    rest = get_zones_on({AFRICA, EUROPE, AMERICAS}, ids)
    assert sorted(asia + rest) == sorted(ids)
    f = (len(ids) - 1) // 3
    assert len(asia) <= f and len(rest) >= 2 * f + 1


def test_latency_is_great_circle_at_fibre_speed_with_overhead() -> None:
    # Ain Sokhna to Shenzhen: about 8,020 km on the great circle.
    assert compute_distance_km("EG-TEDA", "CN-QIANHAI") == pytest.approx(8021, abs=5)
    assert compute_latency_ms("EG-TEDA", "CN-QIANHAI") == pytest.approx(8021 / 200 * 1.5 + 2, abs=0.1)
    assert compute_latency_ms("EG-TEDA", "EG-TEDA") == 0.0
    matrix = latency_matrix(zone_ids(7))
    assert len(matrix) == 7 * 6
    assert all(matrix[a, b] == matrix[b, a] for a, b in matrix)
    with pytest.raises(ValueError, match="XX-ZONE60"):
        compute_latency_ms("EG-TEDA", "XX-ZONE60")


def test_summary_of_the_58_zone_matrix(capsys: pytest.CaptureFixture[str]) -> None:
    summary = compute_summary(zone_ids(58))
    assert summary["pairs"] == 58 * 57 / 2
    assert 2 < summary["min_ms"] < summary["median_ms"] < summary["max_ms"] < 200
    assert main(["--zones", "58"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("58 zones, 1653 pairs: one-way min ")
    print(out)
