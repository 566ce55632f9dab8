"""Where the alliance's zones are, and the wide-area latency between them.

Owns the location (latitude, longitude, continent) of every zone in
:data:`scripts.devkit.ALLIANCE_ZONES` and the latency matrix the network-namespace
harness (``scripts/netns.py``) injects with its delaying proxy (``scripts/wanproxy.py``),
because this machine's kernel has no ``netem``.

**The matrix and its source.** Coordinates are the zones' published sites (rounded to
0.01 degree, read off public maps); the delay is a model, not a measurement::

    one_way_ms(a, b) = great_circle_km(a, b) / FIBRE_KM_PER_MS * ROUTING_FACTOR + HOP_MS

with ``great_circle_km`` the haversine distance on a sphere of radius 6,371 km,
``FIBRE_KM_PER_MS = 200`` (light in glass, about 2/3 c: 200,000 km/s), ``ROUTING_FACTOR
= 1.5`` (cables do not follow great circles, and routes detour through exchange points)
and ``HOP_MS = 2`` (access networks and routers at both ends). A round trip is twice
the one-way figure. For example EG-TEDA to CN-QIANHAI, 8,021 km, gives 62 ms one way,
124 ms round trip. Over the 58 zones (1,653 pairs): min 3.2 ms, median 44.5 ms, max
148.4 ms one way.

``python -m scripts.geo`` prints the matrix's summary for 58 zones (min/median/max).
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from scripts.devkit import ALLIANCE_ZONES, zone_ids

EARTH_RADIUS_KM = 6371.0
FIBRE_KM_PER_MS = 200.0
"""Light in fibre: about 200,000 km/s."""
ROUTING_FACTOR = 1.5
"""Real routes over real cables are this much longer than the great circle."""
HOP_MS = 2.0
"""Fixed one-way cost of the access networks and routers at both ends."""

AFRICA = "Africa"
AMERICAS = "Americas"
ASIA = "Asia"
EUROPE = "Europe"


@dataclass(frozen=True, slots=True)
class Site:
    """Where one zone is."""

    lat: float
    """Latitude in degrees, north positive."""
    lon: float
    """Longitude in degrees, east positive."""
    continent: str
    """``Africa``, ``Americas``, ``Asia`` (with the Middle East and the Caucasus) or ``Europe``."""


ZONE_SITES: dict[str, Site] = {
    "EG-TEDA": Site(29.66, 32.29, AFRICA),
    "BY-GREATSTONE": Site(53.93, 27.98, EUROPE),
    "DJ-DIFTZ": Site(11.55, 43.12, AFRICA),
    "LK-HAMBANTOTA": Site(6.12, 81.11, ASIA),
    "CN-QIANHAI": Site(22.53, 113.90, ASIA),
    "AE-JAFZA": Site(25.01, 55.06, ASIA),
    "PA-COLON": Site(9.36, -79.90, AMERICAS),
    "KE-NAIVASHA": Site(-0.72, 36.43, AFRICA),
    "NG-LEKKI": Site(6.45, 4.05, AFRICA),
    "KH-SIHANOUKVILLE": Site(10.72, 103.60, ASIA),
    "LA-SAYSETTHA": Site(18.03, 102.78, ASIA),
    "ET-EASTERN": Site(8.79, 38.90, AFRICA),
    "TH-RAYONG": Site(13.05, 101.15, ASIA),
    "HU-CECZ": Site(47.42, 19.07, EUROPE),
    "NG-CALABAR": Site(4.98, 8.33, AFRICA),
    "ET-HAWASSA": Site(7.05, 38.49, AFRICA),
    "PK-GWADAR": Site(25.13, 62.33, ASIA),
    "KZ-KHORGOS": Site(44.21, 80.25, ASIA),
    "ZM-CHAMBISHI": Site(-12.65, 28.05, AFRICA),
    "RS-SMEDEREVO": Site(44.66, 20.93, EUROPE),
    "VN-LONGJIANG": Site(10.42, 106.27, ASIA),
    "TZ-BAGAMOYO": Site(-6.44, 38.90, AFRICA),
    "GR-PIRAEUS": Site(37.94, 23.63, EUROPE),
    "MY-KUANTAN": Site(3.96, 103.37, ASIA),
    "EG-PORTSAID": Site(31.25, 32.40, AFRICA),
    "UZ-NAVOI": Site(40.10, 65.38, ASIA),
    "PL-LODZ": Site(51.76, 19.46, EUROPE),
    "MA-TANGERMED": Site(35.88, -5.50, AFRICA),
    "ID-MOROWALI": Site(-2.83, 122.16, ASIA),
    "ZA-COEGA": Site(-33.77, 25.67, AFRICA),
    "GE-KUTAISI": Site(42.27, 42.70, ASIA),
    "BG-TRAKIA": Site(42.15, 24.75, EUROPE),
    "MU-JINFEI": Site(-20.13, 57.53, AFRICA),
    "MN-ZAMYNUUD": Site(43.72, 111.90, ASIA),
    "RW-KIGALI": Site(-1.95, 30.15, AFRICA),
    "RO-CONSTANTA": Site(44.10, 28.64, EUROPE),
    "OM-DUQM": Site(19.66, 57.70, ASIA),
    "GH-TEMA": Site(5.67, -0.02, AFRICA),
    "UY-ZONAMERICA": Site(-34.85, -56.06, AMERICAS),
    "LT-KLAIPEDA": Site(55.75, 21.17, EUROPE),
    "MM-KYAUKPHYU": Site(19.43, 93.55, ASIA),
    "SN-DIAMNIADIO": Site(14.72, -17.18, AFRICA),
    "IT-TRIESTE": Site(45.63, 13.77, EUROPE),
    "SA-KAEC": Site(22.45, 39.13, ASIA),
    "TG-ADETIKOPE": Site(6.33, 1.20, AFRICA),
    "BR-MANAUS": Site(-3.12, -60.02, AMERICAS),
    "LV-RIGA": Site(56.98, 24.10, EUROPE),
    "BD-ANWARA": Site(22.23, 91.83, ASIA),
    "UG-KAPEEKA": Site(0.55, 32.16, AFRICA),
    "ES-BARCELONA": Site(41.34, 2.14, EUROPE),
    "EG-ALEXANDRIA": Site(31.15, 29.87, AFRICA),
    "KG-BISHKEK": Site(42.87, 74.60, ASIA),
    "AO-LUANDA": Site(-8.98, 13.45, AFRICA),
    "PT-SINES": Site(37.95, -8.85, EUROPE),
    "GA-NKOK": Site(0.40, 9.62, AFRICA),
    "CL-ZOFRI": Site(-20.21, -70.14, AMERICAS),
    "MT-FREEPORT": Site(35.82, 14.54, EUROPE),
    "MK-BUNARDZIK": Site(42.00, 21.55, EUROPE),
}
"""Every zone of ``ALLIANCE_ZONES``, by id."""


def get_site(zone_id: str) -> Site:
    """The zone's site; a ``ValueError`` naming the zone when it has none (e.g. ``XX-ZONE60``)."""
    try:
        return ZONE_SITES[zone_id]
    except KeyError:
        raise ValueError(f"expected a zone with a known site, got {zone_id!r}") from None


def compute_distance_km(a: str, b: str) -> float:
    """Great-circle (haversine) distance between two zones' sites."""
    sa, sb = get_site(a), get_site(b)
    phi1, phi2 = math.radians(sa.lat), math.radians(sb.lat)
    dphi = phi2 - phi1
    dlam = math.radians(sb.lon - sa.lon)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlam / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def compute_latency_ms(a: str, b: str) -> float:
    """One-way delay between two zones (see the module docstring for the formula); 0 to itself."""
    if a == b:
        return 0.0
    return compute_distance_km(a, b) / FIBRE_KM_PER_MS * ROUTING_FACTOR + HOP_MS


def latency_matrix(ids: Sequence[str]) -> dict[tuple[str, str], float]:
    """One-way delay in ms for every ordered pair of distinct zones (symmetric)."""
    return {(a, b): compute_latency_ms(a, b) for a in ids for b in ids if a != b}


def get_zones_on(continents: set[str], ids: Sequence[str]) -> list[str]:
    """The zones of ``ids`` that lie on one of ``continents``, in ``ids`` order."""
    return [z for z in ids if get_site(z).continent in continents]


def compute_summary(ids: Sequence[str]) -> dict[str, float]:
    """Min, median and max one-way delay over distinct pairs, and the pair count."""
    values = sorted({(min(a, b), max(a, b)): v for (a, b), v in latency_matrix(ids).items()}.values())
    if not values:
        return {"pairs": 0, "min_ms": 0.0, "median_ms": 0.0, "max_ms": 0.0}
    return {"pairs": len(values), "min_ms": values[0], "median_ms": statistics.median(values), "max_ms": values[-1]}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.geo", description="the zones' latency matrix")
    parser.add_argument("--zones", type=int, default=len(ALLIANCE_ZONES), help="first N zones (default all)")
    parser.add_argument("--matrix", action="store_true", help="print every pair, not only the summary")
    args = parser.parse_args(argv)
    ids = zone_ids(args.zones)
    summary = compute_summary(ids)
    print(
        f"{len(ids)} zones, {summary['pairs']:.0f} pairs: one-way min {summary['min_ms']:.1f} ms, "
        f"median {summary['median_ms']:.1f} ms, max {summary['max_ms']:.1f} ms "
        f"(great circle / {FIBRE_KM_PER_MS:.0f} km/ms x {ROUTING_FACTOR} + {HOP_MS:.0f} ms)"
    )
    counts = {c: len(get_zones_on({c}, ids)) for c in (AFRICA, AMERICAS, ASIA, EUROPE)}
    print("zones per continent: " + ", ".join(f"{c} {n}" for c, n in counts.items()))
    if args.matrix:
        for (a, b), ms in sorted(latency_matrix(ids).items()):
            if a < b:
                print(f"{a:<17} {b:<17} {compute_distance_km(a, b):8.0f} km {ms:6.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
