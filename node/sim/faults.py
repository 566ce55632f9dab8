"""Fault schedules for the consensus simulator: what goes wrong, when, for one seed.

A :class:`Schedule` is drawn from ``random.Random(seed)`` alone, so a seed printed by a
failing run regenerates the same faults (``zoneledger sim --replay SEED``). Everything
that goes wrong happens before ``gst_ms`` (global stabilisation time): partitions
heal, drops stop, crashed validators restart (slow status peers stay slow: a node
must not depend on them); after GST, liveness is required.

Besides network faults, clock skew and Byzantine behaviours (:mod:`node.sim.adversaries`),
a schedule may hold:

* **restarts mid-height**: a crash-restart validator goes down right after it persists
  its k-th message (before or after sending it), or right after sync applied its k-th
  block, and comes back with its write-ahead log (triggers reached after GST are
  ignored);
* **catch-up races**: one validator cut off alone (2-10 s) long enough for the others
  to decide a few heights (it comes back through sync while the next height is
  starting) or to go a few rounds ahead (it comes back by the round skip);
* **slow status peers**: validators whose answer to a sync's status request takes
  seconds, or never comes (the requester gives up after 5 s);
* **load**: ``busy`` (every mempool has work from the start), ``one`` (only one
  validator's has) or ``idle`` (none: heights start by heartbeat or because a peer
  started them).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ledger.blocks import compute_max_faulty

BEHAVIORS = (
    "silent", "twins", "invalid", "forger", "double_vote", "amnesia",
    "fake_pol", "equivocator", "far_future", "withholder", "defector",
)
"""Byzantine behaviours (see :mod:`node.sim.adversaries`)."""
LOADS = ("busy", "one", "idle")
HEARTBEATS_MS = (1_500, 3_000, 6_000)
"""Heartbeat intervals drawn for a schedule (the node setting ``heartbeat_ms``)."""
TIMEOUTS_MS = ((1_000, 500), (500, 250), (300, 100))
"""(timeout_propose_ms, timeout_delta_ms) drawn for a schedule (chain constants from genesis):
short ones put validators in different rounds far more often before GST."""
STATUS_NEVER = -1
"""A slow status peer whose reply never comes."""


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
    long_outage: bool = False
    """Crash all crashing validators together for a long time (the >f halt demonstration)."""
    loads: tuple[str, ...] = LOADS
    """Loads to draw from."""
    membership: tuple[tuple[int, int], ...] = ()
    """Changes of the validator set (DESIGN §12): (from height, n) pairs, oldest first;
    the set of a height is the first n of the ``validators`` (a join appends, a removal
    of the latest admitted shrinks it), e.g. ((1, 4), (3, 7), (5, 4)). Empty: all of
    ``validators`` at every height."""


def compute_set_size(membership: tuple[tuple[int, int], ...], n: int, height: int) -> int:
    """How many validators (the first ones) form the set of ``height``."""
    size = n
    for from_height, count in membership:
        if from_height <= height:
            size = count
    return size


@dataclass(frozen=True, slots=True)
class Crash:
    """One validator down from ``down_ms`` to ``up_ms``."""

    validator: int
    down_ms: int
    up_ms: int


@dataclass(frozen=True, slots=True)
class MidCrash:
    """A crash triggered by what the validator does rather than by the clock."""

    validator: int
    trigger: str
    """``signed``: after persisting its ``count``-th message; ``synced``: after sync
    applied its ``count``-th block."""
    count: int
    down_for_ms: int
    before_send: bool = False
    """``signed`` only: go down after the WAL append, before the message leaves."""


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
    mid_crashes: tuple[MidCrash, ...] = ()
    partitions: tuple[Partition, ...] = ()
    world_b: frozenset[int] = frozenset()
    """Honest validators the B twins talk to (the rest hear the A twins)."""
    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    delay_ms: tuple[int, int] = (5, 80)
    clock_rate: tuple[float, ...] = ()
    """Per validator: true milliseconds per millisecond of its clock (timers, skew)."""
    clock_offset: tuple[int, ...] = ()
    """Per validator: what its clock reads at true time 0."""
    slow_status: dict[int, int] = field(default_factory=dict)
    """Validator -> extra ms before its status replies leave (:data:`STATUS_NEVER`: never)."""
    load: str = "busy"
    heartbeat_ms: int = 3_000
    timeouts_ms: tuple[int, int] = (1_000, 500)
    """(timeout_propose_ms, timeout_delta_ms)."""
    gst_ms: int = 0
    membership: tuple[tuple[int, int], ...] = ()
    """:attr:`SimParams.membership`."""

    @property
    def faulty(self) -> frozenset[int]:
        return frozenset(self.behaviors)

    def set_size(self, height: int) -> int:
        return compute_set_size(self.membership, self.n, height)

    def describe(self) -> str:
        parts = [f"seed={self.seed}", f"n={self.n}", f"heights={self.heights}", f"gst={self.gst_ms}ms",
                 f"load={self.load}", f"heartbeat={self.heartbeat_ms}ms",
                 f"timeouts={self.timeouts_ms[0]}+{self.timeouts_ms[1]}ms"]
        if self.behaviors:
            parts.append("byzantine=" + ",".join(f"{v}:{b}" for v, b in sorted(self.behaviors.items())))
        if self.crashes:
            parts.append("crashes=" + ",".join(f"{c.validator}@{c.down_ms}-{c.up_ms}" for c in self.crashes))
        if self.mid_crashes:
            parts.append("mid-crashes=" + ",".join(
                f"{c.validator}@{c.trigger}#{c.count}{'-unsent' if c.before_send else ''}+{c.down_for_ms}"
                for c in self.mid_crashes
            ))
        if self.partitions:
            parts.append("partitions=" + ",".join(f"{sorted(p.group)}@{p.start_ms}-{p.end_ms}" for p in self.partitions))
        if self.slow_status:
            parts.append("slow-status=" + ",".join(
                f"{v}:{'never' if d == STATUS_NEVER else f'{d}ms'}" for v, d in sorted(self.slow_status.items())
            ))
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
    if params.membership:
        order, limit = compute_fault_order(order, n, params.membership)
        byzantine = min(byzantine, limit)
        crash = min(crash, limit - byzantine)
    byz = order[:byzantine]
    crashers = order[byzantine : byzantine + crash]
    behaviors = {v: rng.choice(params.behaviors) for v in byz}
    gst = rng.randint(3_000, 12_000)
    crashes: list[Crash] = []
    mid_crashes: list[MidCrash] = []
    if params.long_outage:
        down = rng.randint(50, 300)
        up = down + rng.randint(15_000, 25_000)
        crashes = [Crash(v, down, up) for v in crashers]
        gst = up + 100
    else:
        for v in crashers:
            for _ in range(rng.randint(0, 2)):
                down = rng.randint(0, gst - 1_000)
                crashes.append(Crash(v, down, rng.randint(down + 50, gst)))
            for _ in range(rng.randint(1, 2)):
                mid_crashes.append(draw_mid_crash(rng, v))
        for v, b in behaviors.items():
            if b == "amnesia":
                for _ in range(rng.randint(1, 3)):
                    down = rng.randint(0, gst - 1_000)
                    crashes.append(Crash(v, down, rng.randint(down + 50, gst)))
                mid_crashes.append(draw_mid_crash(rng, v))
    partitions: list[Partition] = []
    for _ in range(rng.choice((0, 0, 1, 2))):
        start = rng.randint(0, gst - 500)
        size = rng.randint(1, max(1, n // 2))
        partitions.append(Partition(start, rng.randint(start + 200, gst), frozenset(rng.sample(range(n), size))))
    if rng.random() < 0.75:  # a catch-up race: one validator alone long enough to fall behind
        start = rng.randint(0, max(0, gst - 2_500))
        partitions.append(Partition(start, min(gst, start + rng.randint(2_000, 10_000)), frozenset({rng.randrange(n)})))
    slow_status: dict[int, int] = {}
    for v in rng.sample(range(n), rng.randint(0, max(1, f))):
        slow_status[v] = rng.choice((STATUS_NEVER, rng.randint(500, 3_000), rng.randint(3_000, 8_000)))
    honest = [v for v in range(n) if v not in behaviors]
    world_b = frozenset(v for v in honest if rng.random() < 0.5)
    return Schedule(
        seed=seed,
        n=n,
        heights=params.heights,
        behaviors=behaviors,
        crashes=tuple(sorted(crashes, key=lambda c: (c.down_ms, c.validator))),
        mid_crashes=tuple(mid_crashes),
        partitions=tuple(partitions),
        world_b=world_b,
        drop=rng.choice((0.0, 0.05, 0.2, 0.4)),
        duplicate=rng.choice((0.0, 0.1)),
        reorder=rng.choice((0.0, 0.1, 0.3)),
        delay_ms=(rng.randint(1, 20), rng.randint(40, 300)),
        clock_rate=tuple(rng.uniform(0.7, 1.4) for _ in range(n)),
        clock_offset=tuple(rng.randint(0, 2_000) for _ in range(n)),
        slow_status=slow_status,
        load=rng.choice(params.loads),
        heartbeat_ms=rng.choice(HEARTBEATS_MS),
        timeouts_ms=rng.choice(TIMEOUTS_MS),
        gst_ms=gst,
        membership=params.membership,
    )


def compute_fault_order(
    order: list[int], n: int, membership: tuple[tuple[int, int], ...],
) -> tuple[list[int], int]:
    """``order`` with the validators that may be faulty together first (taken in order
    while every set holding them keeps at most f faulty members, f of that set), and
    how many those are: the faults a schedule may have at every height."""
    sizes = sorted({n, *(count for _, count in membership)})
    chosen: list[int] = []
    for v in order:
        if all(sum(1 for c in (*chosen, v) if c < size) <= compute_max_faulty(size) for size in sizes):
            chosen.append(v)
    return chosen + [v for v in order if v not in chosen], len(chosen)


def draw_mid_crash(rng: random.Random, validator: int) -> MidCrash:
    """A crash right after the validator signs (or syncs) something, for a short while."""
    if rng.random() < 0.25:
        return MidCrash(validator, "synced", rng.randint(1, 3), rng.randint(50, 2_000))
    return MidCrash(validator, "signed", rng.randint(1, 12), rng.randint(50, 2_000), before_send=rng.random() < 0.5)
