"""Fault schedules for the consensus simulator: what goes wrong, when, for one seed.

A :class:`Schedule` is drawn from ``random.Random(seed)`` alone, so a seed printed by a
failing run regenerates the same faults (``zoneledger sim --replay SEED``). Everything
that goes wrong happens before ``gst_ms`` (global stabilisation time): partitions
heal, drops stop, crashed validators restart; after it, liveness is required.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ledger.blocks import compute_max_faulty

BEHAVIORS = ("silent", "twins", "invalid", "forger", "double_vote", "amnesia")
"""Byzantine behaviours: go silent; run two honest copies that each talk to half the
network (double proposals and double votes, the Twins approach); propose and vote for
invalid blocks; forge other validators' signatures; sign a conflicting second vote for
every vote; lose the write-ahead log on every restart (amnesia)."""


@dataclass(frozen=True, slots=True)
class SimParams:
    """What the command line fixes for every schedule of a run."""

    validators: int = 4
    """n."""
    heights: int = 3
    """Heights every honest validator must decide."""
    byzantine: int | None = None
    """Byzantine validators per schedule; ``None``: a random share of f."""
    crash: int | None = None
    """Validators that crash and restart with their WAL; ``None``: the rest of f."""
    behaviors: tuple[str, ...] = BEHAVIORS
    """Byzantine behaviours to draw from."""
    mutations: frozenset[str] = frozenset()
    """Planted bugs switched on in every honest machine (tests only)."""
    long_outage: bool = False
    """Crash all crashing validators together for a long time (the >f halt demonstration)."""


@dataclass(frozen=True, slots=True)
class Crash:
    """One validator down from ``down_ms`` to ``up_ms``."""

    validator: int
    down_ms: int
    up_ms: int


@dataclass(frozen=True, slots=True)
class Partition:
    """Messages between ``group`` and the rest are dropped during [start_ms, end_ms)."""

    start_ms: int
    end_ms: int
    group: frozenset[int]


@dataclass(frozen=True, slots=True)
class Schedule:
    """Every fault of one simulated run."""

    seed: int
    n: int
    heights: int
    behaviors: dict[int, str] = field(default_factory=dict)
    """Byzantine validator -> behaviour."""
    crashes: tuple[Crash, ...] = ()
    partitions: tuple[Partition, ...] = ()
    world_b: frozenset[int] = frozenset()
    """Honest validators the B twins talk to (the rest hear the A twins)."""
    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    delay_ms: tuple[int, int] = (5, 80)
    clock_rate: tuple[float, ...] = ()
    """Per validator: how fast its timers run relative to true time (clock skew)."""
    gst_ms: int = 0

    @property
    def faulty(self) -> frozenset[int]:
        return frozenset(self.behaviors)

    def describe(self) -> str:
        parts = [f"seed={self.seed}", f"n={self.n}", f"heights={self.heights}", f"gst={self.gst_ms}ms"]
        if self.behaviors:
            parts.append("byzantine=" + ",".join(f"{v}:{b}" for v, b in sorted(self.behaviors.items())))
        if self.crashes:
            parts.append("crashes=" + ",".join(f"{c.validator}@{c.down_ms}-{c.up_ms}" for c in self.crashes))
        if self.partitions:
            parts.append("partitions=" + ",".join(f"{sorted(p.group)}@{p.start_ms}-{p.end_ms}" for p in self.partitions))
        parts.append(f"drop={self.drop:.2f} dup={self.duplicate:.2f} reorder={self.reorder:.2f}")
        return " ".join(parts)


def generate_schedule(seed: int, params: SimParams) -> Schedule:
    """The faults of schedule ``seed``: a pure function of (seed, params)."""
    rng = random.Random(seed)
    n, f = params.validators, compute_max_faulty(params.validators)
    order = list(range(n))
    rng.shuffle(order)
    if params.byzantine is None and params.crash is None:
        byzantine = rng.randint(0, f)
        crash = f - byzantine
    else:
        byzantine = params.byzantine or 0
        crash = params.crash or 0
    byz = order[:byzantine]
    crashers = order[byzantine : byzantine + crash]
    behaviors = {v: rng.choice(params.behaviors) for v in byz}
    gst = rng.randint(3_000, 12_000)
    crashes: list[Crash] = []
    if params.long_outage:
        down = rng.randint(50, 300)
        up = down + rng.randint(15_000, 25_000)
        crashes = [Crash(v, down, up) for v in crashers]
        gst = up + 100
    else:
        for v in crashers:
            for _ in range(rng.randint(1, 2)):
                down = rng.randint(0, gst - 1_000)
                crashes.append(Crash(v, down, rng.randint(down + 50, gst)))
        for v, b in behaviors.items():
            if b == "amnesia":
                for _ in range(rng.randint(1, 3)):
                    down = rng.randint(0, gst - 1_000)
                    crashes.append(Crash(v, down, rng.randint(down + 50, gst)))
    partitions: list[Partition] = []
    for _ in range(rng.choice((0, 0, 1, 2))):
        start = rng.randint(0, gst - 500)
        size = rng.randint(1, max(1, n // 2))
        partitions.append(Partition(start, rng.randint(start + 200, gst), frozenset(rng.sample(range(n), size))))
    honest = [v for v in range(n) if v not in behaviors]
    world_b = frozenset(v for v in honest if rng.random() < 0.5)
    return Schedule(
        seed=seed,
        n=n,
        heights=params.heights,
        behaviors=behaviors,
        crashes=tuple(sorted(crashes, key=lambda c: (c.down_ms, c.validator))),
        partitions=tuple(partitions),
        world_b=world_b,
        drop=rng.choice((0.0, 0.05, 0.2, 0.4)),
        duplicate=rng.choice((0.0, 0.1)),
        reorder=rng.choice((0.0, 0.1, 0.3)),
        delay_ms=(rng.randint(1, 20), rng.randint(40, 300)),
        clock_rate=tuple(rng.uniform(0.7, 1.4) for _ in range(n)),
        gst_ms=gst,
    )
