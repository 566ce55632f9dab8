"""The alliance on separate hosts: one network namespace per zone, over a simulated wide-area network.

Owns the namespace harness used by the netns integration tests and by
``zoneledger devnet --netns``. Each zone gets:

- its own network namespace ``zln<tag>-<ZONE>`` with its own address ``10.58.<k>.<i+2>``
  on a veth pair whose other end sits on the bridge ``zln<tag>br`` (address
  ``10.58.<k>.1``) in the root namespace, where the tests and the user's tools are;
- its validator, started inside the namespace (``ip netns exec``) and listening on its
  own address at :data:`NODE_PORT`;
- its share of the wide-area network: a delaying proxy (``scripts/wanproxy.py``) inside
  the namespace, listening on ``127.0.0.1:PROXY_BASE_PORT + j`` for every other validator
  ``j`` and forwarding to ``j``'s address with the one-way delay of the latency matrix
  (``scripts/geo.py``) each way. The node's ``[peers]`` table points at those ports, so
  every byte between two validators crosses exactly one delaying link.

A **partition** is real at two levels: the proxies on both sides cut the crossing links
(silently: nothing passes, nobody is told) and each namespace gets a ``blackhole`` route
to every address on the other side. Healing removes both; connections that lived
through the cut are reset. There is no iptables and no netem on this kernel, hence the
routes and the proxy.

Every name carries the prefix :data:`PREFIX` and a random tag, so two harnesses do not
collide, and :func:`cleanup_stale` removes whatever a crashed harness left behind
(namespaces with their processes, the bridge, the control-socket directory). Needs root
and ``ip`` (:func:`get_unavailable_reason` says why not otherwise).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from node.config import NodeConfig, render_config
from scripts.devnet import REPO_ROOT, Devnet, DevnetLayout, create_devnet, submit_examples
from scripts.geo import compute_latency_ms
from scripts.wanproxy import LinkSpec, control

PREFIX = "zln"
"""Every namespace, interface and run directory this module creates starts with this."""
NODE_PORT = 8600
"""Each validator's API and peer port, on its own address (namespaces do not share ports)."""
PROXY_BASE_PORT = 9700
"""Inside each namespace, the link to validator ``j`` listens on ``127.0.0.1:PROXY_BASE_PORT + j``."""
SUBNET_PREFIX = "10.58"
"""Harness ``k`` uses ``10.58.k.0/24``: the bridge is ``.1``, zone ``i`` is ``.i+2``."""
MAX_ZONES = 250


def get_unavailable_reason() -> str | None:
    """Why namespaces cannot be made here, or ``None`` when they can."""
    if sys.platform != "linux":
        return f"network namespaces need Linux, this is {sys.platform}"
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    return None


def _ip(*args: str, stdin: str | None = None, check: bool = True) -> str:
    result = subprocess.run(["ip", *args], input=stdin, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: expected success, got {result.returncode}: {result.stderr.strip()}")
    return result.stdout


NEIGHBOUR_THRESHOLDS = Path("/proc/sys/net/ipv4/neigh/default")


def compute_neighbour_entries(zones: int) -> int:
    """ARP entries the harness needs: every namespace learns every other zone's address
    and the bridge's, and the root namespace learns every zone's."""
    return zones * zones + zones


def ensure_neighbour_table(entries: int, thresholds: Path = NEIGHBOUR_THRESHOLDS) -> bool:
    """Raise the kernel's neighbour-table limits so that ``entries`` fit; True if raised.

    The ARP table is one table for every network namespace, with a hard limit of
    ``gc_thresh3`` entries (1,024 by default). At 58 zones the harness needs 3,422, and
    past the limit new neighbours are refused ("neighbor table overflow" in the kernel
    log): connections to zones not yet in the table hang in SYN, so the alliance looked
    saturated, never committed, and even the root namespace lost its way to the zones.
    """
    hard = thresholds / "gc_thresh3"
    if int(hard.read_text()) >= 2 * entries:
        return False
    # Garbage collection starts at gc_thresh2 and is forced at gc_thresh3: keep both well above need.
    hard.write_text(f"{4 * entries}\n")
    (thresholds / "gc_thresh2").write_text(f"{2 * entries}\n")
    (thresholds / "gc_thresh1").write_text(f"{entries}\n")
    print(f"raised the kernel's neighbour (ARP) table to {4 * entries} entries for {entries} needed "
          f"(net.ipv4.neigh.default.gc_thresh1-3)", file=sys.stderr)
    return True


def _die_with_parent() -> None:
    """Linux: a validator or proxy gets SIGTERM if the harness dies without stopping it."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _kill_namespace_processes(namespace: str) -> None:
    """SIGKILL every process left inside one of our namespaces (all of them ours)."""
    for pid in _ip("netns", "pids", namespace, check=False).split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def cleanup_stale(tag: str = "") -> list[str]:
    """Remove the namespaces (and their processes), bridges and run directories named
    ``PREFIX + tag`` ...; with no tag, every harness's. Returns what was removed."""
    start = PREFIX + tag
    removed: list[str] = []
    for line in _ip("netns", "list", check=False).splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(start):
            _kill_namespace_processes(name)
            _ip("netns", "del", name, check=False)
            removed.append(name)
    for line in _ip("-o", "link", "show", check=False).splitlines():
        parts = line.split(":")
        if len(parts) > 1:
            name = parts[1].strip().split("@")[0]
            if name.startswith(start):
                _ip("link", "del", name, check=False)
                removed.append(name)
    for run_dir in Path(tempfile.gettempdir()).glob(f"{start}*"):
        if run_dir.is_dir() and run_dir.name.startswith(PREFIX):
            shutil.rmtree(run_dir, ignore_errors=True)
            removed.append(str(run_dir))
    return removed


def _free_subnet() -> int:
    """A ``k`` whose ``10.58.k.0/24`` no interface uses (picked at random: two harnesses
    starting at once rarely pick the same)."""
    used = _ip("-4", "-o", "addr", "show", check=False)
    free = [k for k in range(256) if f" {SUBNET_PREFIX}.{k}." not in used]
    if not free:
        raise RuntimeError(f"no free {SUBNET_PREFIX}.k.0/24 subnet")
    return secrets.choice(free)


@dataclass(frozen=True)
class NetnsPlan:
    """The names and addresses of one harness (written to ``netns.json`` beside ``devnet.json``)."""

    tag: str
    """Random hex, part of every name."""
    subnet: int
    """``k`` of ``10.58.k.0/24``."""
    zones: tuple[str, ...]
    """Zone ids in validator order."""
    run_dir: Path
    """Short path for the proxies' control sockets (a Unix socket path has at most 107 bytes)."""

    @property
    def bridge(self) -> str:
        return f"{PREFIX}{self.tag}br"

    @property
    def bridge_address(self) -> str:
        return f"{SUBNET_PREFIX}.{self.subnet}.1"

    def namespace(self, i: int) -> str:
        return f"{PREFIX}{self.tag}-{self.zones[i]}"

    def address(self, i: int) -> str:
        return f"{SUBNET_PREFIX}.{self.subnet}.{i + 2}"

    def veth(self, i: int) -> tuple[str, str]:
        """Host end and namespace end of zone ``i``'s cable."""
        return f"{PREFIX}{self.tag}h{i}", f"{PREFIX}{self.tag}n{i}"

    def control_socket(self, i: int) -> Path:
        return self.run_dir / f"{i}.sock"

    def link_name(self, i: int, j: int) -> str:
        return f"{self.zones[i]}>{self.zones[j]}"

    def to_json(self) -> dict[str, Any]:
        return {
            "tag": self.tag, "subnet": f"{SUBNET_PREFIX}.{self.subnet}.0/24", "bridge": self.bridge,
            "run_dir": str(self.run_dir),
            "zones": [
                {"zone_id": z, "namespace": self.namespace(i), "address": self.address(i), "port": NODE_PORT,
                 "control": str(self.control_socket(i))}
                for i, z in enumerate(self.zones)
            ],
        }


def compute_links(plan: NetnsPlan, i: int, latency_scale: float = 1.0) -> list[LinkSpec]:
    """Zone ``i``'s outgoing links: one local port per other validator, delayed by the matrix."""
    return [
        LinkSpec(
            plan.link_name(i, j), "127.0.0.1", PROXY_BASE_PORT + j, plan.address(j), NODE_PORT,
            round(compute_latency_ms(plan.zones[i], plan.zones[j]) * latency_scale, 3),
        )
        for j in range(len(plan.zones)) if j != i
    ]


def write_netns_configs(layout: DevnetLayout, plan: NetnsPlan) -> None:
    """Point each node at its own address and at its namespace's proxy ports (``create_devnet`` wrote loopback)."""
    for i, zone in enumerate(layout.zones):
        config = NodeConfig.load(zone.config)
        peers = {j: f"http://127.0.0.1:{PROXY_BASE_PORT + j}" for j in range(len(layout.zones)) if j != i}
        peers[i] = f"http://{plan.address(i)}:{NODE_PORT}"
        config = dataclasses.replace(config, listen_host=plan.address(i), listen_port=NODE_PORT, peers=peers)
        zone.config.write_text(render_config(config), encoding="utf-8")
        zone.url = f"http://{plan.address(i)}:{NODE_PORT}"
    (layout.root / "devnet.json").write_text(json.dumps(layout.to_json(), indent=2) + "\n", encoding="utf-8")
    (layout.root / "netns.json").write_text(json.dumps(plan.to_json(), indent=2) + "\n", encoding="utf-8")


class NetnsDevnet(Devnet):
    """:class:`~scripts.devnet.Devnet` whose validators each run inside their zone's namespace."""

    def __init__(self, layout: DevnetLayout, plan: NetnsPlan) -> None:
        super().__init__(layout)
        self.plan = plan

    def command_prefix(self, zone_id: str) -> list[str]:
        return ["ip", "netns", "exec", self.plan.namespace(self.plan.zones.index(zone_id))]


class NetnsAlliance:
    """An alliance of validators, one namespace each, with the latency matrix between them.

    ``with NetnsAlliance(root, 7) as alliance: alliance.start(); ...`` builds the
    network on entry and removes every process, namespace and interface on exit, also
    after an exception. The zone operations the fault tests need are methods.
    """

    def __init__(
        self, root: Path, zones: int, *, heartbeat_ms: int = 1000, consensus: dict[str, int] | None = None,
        latency_scale: float = 1.0,
    ) -> None:
        if not 1 <= zones <= MAX_ZONES:
            raise ValueError(f"zones: expected 1..{MAX_ZONES}, got {zones}")
        reason = get_unavailable_reason()
        if reason is not None:
            raise RuntimeError(reason)
        self.root = root.resolve()
        self.latency_scale = latency_scale
        tag = secrets.token_hex(2)
        run_dir = Path(tempfile.gettempdir()) / f"{PREFIX}{tag}"
        self.layout = create_devnet(
            self.root, zones, NODE_PORT, heartbeat_ms=heartbeat_ms,
            consensus=consensus or {"timeout_propose_ms": 1000, "timeout_delta_ms": 500, "max_block_txs": 5000},
        )
        self.plan = NetnsPlan(tag, _free_subnet(), tuple(z.zone_id for z in self.layout.zones), run_dir)
        write_netns_configs(self.layout, self.plan)
        self.devnet = NetnsDevnet(self.layout, self.plan)
        self.proxies: dict[str, subprocess.Popen[bytes]] = {}
        self.partitioned: list[tuple[int, list[int]]] = []
        self._built = False

    # --- the network ------------------------------------------------------------------

    def __enter__(self) -> NetnsAlliance:
        try:
            self.build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def build(self) -> None:
        """Namespaces, cables, the bridge and one proxy per namespace."""
        plan = self.plan
        ensure_neighbour_table(compute_neighbour_entries(len(plan.zones)))
        self._built = True
        plan.run_dir.mkdir(mode=0o700)
        lines = [f"link add {plan.bridge} type bridge", f"link set {plan.bridge} up",
                 f"addr add {plan.bridge_address}/24 dev {plan.bridge}"]
        for i in range(len(plan.zones)):
            host, inner = plan.veth(i)
            lines += [
                f"netns add {plan.namespace(i)}",
                f"link add {host} type veth peer name {inner}",
                f"link set {inner} netns {plan.namespace(i)}",
                f"link set {host} master {plan.bridge}",
                f"link set {host} up",
            ]
        _ip("-batch", "-", stdin="\n".join(lines) + "\n")
        for i in range(len(plan.zones)):
            _, inner = plan.veth(i)
            _ip("-n", plan.namespace(i), "-batch", "-", stdin=(
                f"link set lo up\naddr add {plan.address(i)}/24 dev {inner}\nlink set {inner} up\n"
            ))
        for i in range(len(plan.zones)):
            self._start_proxy(i)
        self._wait_proxies()

    def _start_proxy(self, i: int) -> None:
        links = self.root / self.plan.zones[i] / "wan-links.json"
        links.write_text(json.dumps([s.to_json() for s in compute_links(self.plan, i, self.latency_scale)]) + "\n")
        with open(self.root / self.plan.zones[i] / "wanproxy.log", "ab") as log_file:
            self.proxies[self.plan.zones[i]] = subprocess.Popen(
                ["ip", "netns", "exec", self.plan.namespace(i), sys.executable, "-m", "scripts.wanproxy", "serve",
                 "--links", str(links), "--control", str(self.plan.control_socket(i))],
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, cwd=str(REPO_ROOT),
                preexec_fn=_die_with_parent, start_new_session=True,
            )

    def _wait_proxies(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        for i, zone_id in enumerate(self.plan.zones):
            while True:
                process = self.proxies[zone_id]
                if process.poll() is not None:
                    log = (self.root / zone_id / "wanproxy.log").read_text(errors="replace")[-1000:]
                    raise RuntimeError(f"wanproxy of {zone_id} exited with {process.returncode}: {log}")
                try:
                    control(self.plan.control_socket(i), "status")
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"wanproxy of {zone_id} did not answer within {timeout} s") from None
                    time.sleep(0.05)

    def close(self) -> None:
        """Stop every validator and proxy, remove the namespaces, cables, bridge and run directory."""
        with contextlib.suppress(Exception):
            self.devnet.stop(timeout=10.0)
        for process in self.proxies.values():
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        for process in self.proxies.values():
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.proxies.clear()
        if self._built:
            cleanup_stale(self.plan.tag)
            self._built = False

    # --- validators -------------------------------------------------------------------

    def index(self, zone_id: str) -> int:
        return self.plan.zones.index(zone_id)

    def url(self, zone_id: str) -> str:
        return self.layout.zones[self.index(zone_id)].url

    def urls(self, skip: Iterable[str] = ()) -> list[str]:
        skipped = set(skip)
        return [z.url for z in self.layout.zones if z.zone_id not in skipped]

    def start(self, timeout: float | None = None, progress: Callable[[int, int], None] | None = None) -> None:
        """Start every validator not running and wait until each answers ``/healthz``."""
        self.devnet.launch(timeout=timeout, progress=progress)

    def start_zone(self, zone_id: str, *, empty: bool = False, timeout: float = 120.0) -> None:
        """Start one validator (``empty``: after deleting its data directory, a fresh disk)."""
        if empty:
            shutil.rmtree(self.layout.zones[self.index(zone_id)].data_dir, ignore_errors=True)
        self.devnet.start_zone(zone_id)
        self.devnet.wait_healthy(timeout=timeout, zones=[zone_id])

    def stop_zone(self, zone_id: str) -> None:
        """SIGINT, then SIGKILL after 10 s."""
        self.devnet.stop_zone(zone_id)

    def kill_zone(self, zone_id: str) -> None:
        """``kill -9``."""
        self.devnet.kill_zone(zone_id)

    def pause_zone(self, zone_id: str) -> None:
        """SIGSTOP: the process holds its sockets and says nothing."""
        self.devnet.signal_zone(zone_id, signal.SIGSTOP)

    def resume_zone(self, zone_id: str) -> None:
        self.devnet.signal_zone(zone_id, signal.SIGCONT)

    def running(self) -> list[str]:
        return [z for z, p in self.devnet.processes.items() if p.poll() is None]

    def status(self, zone_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """The zone's ``GET /v1/status``, from the root namespace over the bridge."""
        with httpx.Client(timeout=timeout) as client:
            body: dict[str, Any] = client.get(f"{self.url(zone_id)}/v1/status").json()
        return body

    # --- partitions -------------------------------------------------------------------

    def partition(self, group: Iterable[str]) -> None:
        """Cut ``group`` from every other zone: proxies on both sides and blackhole routes."""
        side = sorted({self.index(z) for z in group})
        others = [j for j in range(len(self.plan.zones)) if j not in side]
        for i in side:
            self._cut(i, others)
        for j in others:
            self._cut(j, side)

    def _cut(self, i: int, far: list[int]) -> None:
        if not far:
            return
        routes = "".join(f"route replace blackhole {self.plan.address(j)}/32\n" for j in far)
        _ip("-n", self.plan.namespace(i), "-batch", "-", stdin=routes)
        control(self.plan.control_socket(i), "cut", [self.plan.link_name(i, j) for j in far])
        self.partitioned.append((i, far))

    def heal(self) -> None:
        """End every partition: routes first, then the proxies (which reset the cut connections)."""
        for i, far in self.partitioned:
            routes = "".join(f"route del blackhole {self.plan.address(j)}/32\n" for j in far)
            _ip("-force", "-n", self.plan.namespace(i), "-batch", "-", stdin=routes, check=False)  # overlaps: gone already
        for i, far in self.partitioned:
            control(self.plan.control_socket(i), "heal", [self.plan.link_name(i, j) for j in far])
        self.partitioned.clear()

    def link_status(self, zone_id: str) -> dict[str, Any]:
        """The zone's proxy's per-link counters (cut, open connections, bytes each way)."""
        links: dict[str, Any] = control(self.plan.control_socket(self.index(zone_id)), "status")["links"]
        return links


@contextlib.contextmanager
def netns_alliance(root: Path, zones: int, **kwargs: Any) -> Iterator[NetnsAlliance]:
    """A built and started :class:`NetnsAlliance`, torn down on exit."""
    with NetnsAlliance(root, zones, **kwargs) as alliance:
        alliance.start()
        yield alliance


def run_netns_alliance(
    root: Path, zones: int, *, examples: bool = True, exit_after: float | None = None,
    say: Callable[[str], None] = print, latency_scale: float = 1.0,
) -> int:
    """``zoneledger devnet --zones N --netns``: build, start, submit the examples, run until
    Ctrl-C, SIGTERM or ``exit_after`` seconds, then remove everything. Returns an exit code.

    ``root`` must not hold a devnet yet (a namespace devnet is built fresh each run).
    """
    reason = get_unavailable_reason()
    if reason is not None:
        say(f"cannot run the namespace devnet: {reason}")
        return 2
    if (root / "devnet.json").exists():
        say(f"{root} already holds a devnet; choose another --data-dir or pass --fresh")
        return 2
    stop = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stop
        stop = True

    previous = signal.signal(signal.SIGTERM, on_signal)
    started = time.monotonic()
    try:
        with NetnsAlliance(root, zones, heartbeat_ms=10_000, latency_scale=latency_scale) as alliance:
            plan = alliance.plan
            say(f"{zones} zones in network namespaces {PREFIX}{plan.tag}-*, bridge {plan.bridge} "
                f"({plan.bridge_address}/24), wide-area delays from scripts/geo.py")
            say("starting validators ...")
            alliance.start(progress=lambda up, total: say(f"  {up}/{total} validators answering") if up % 10 == 0
                           or up == total else None)
            say(f"all {zones} validators up after {time.monotonic() - started:.1f} s")
            if examples:
                say("submitting example documents (each waits for finality) ...")
                submit_examples(alliance.layout, say)
            say("")
            for i, zone in enumerate(alliance.layout.zones):
                say(f"  {zone.zone_id:<17} {zone.url}   namespace {plan.namespace(i)}")
            say("")
            say(f"layout, keys and configs: {root / 'devnet.json'}; namespaces and proxies: {root / 'netns.json'}")
            say(f"cut a link: python -m scripts.wanproxy ctl {plan.control_socket(0)} cut "
                f"{plan.link_name(0, 1) if zones > 1 else 'LINK'}")
            say("Ctrl-C stops every validator and removes the namespaces.")
            loop_started = time.monotonic()
            while not stop:
                time.sleep(0.5)
                if exit_after is not None and time.monotonic() - loop_started >= exit_after:
                    break
                for zone_id, process in list(alliance.devnet.processes.items()):
                    if process.poll() is not None:
                        say(f"validator {zone_id} exited with code {process.returncode}; see {alliance.devnet.log_path(zone_id)}")
                        alliance.devnet.processes.pop(zone_id)
            say("stopping validators and removing the namespaces ...")
    except KeyboardInterrupt:
        say("stopped; namespaces removed")
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.netns", description="the alliance in network namespaces")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="build, start and run until Ctrl-C")
    run.add_argument("--zones", type=int, default=7)
    run.add_argument("--data-dir", type=Path, default=Path("devnet-netns"))
    run.add_argument("--no-examples", action="store_true")
    run.add_argument("--exit-after", type=float, default=None)
    commands.add_parser("cleanup", help=f"remove namespaces, bridges and run dirs named {PREFIX}* left by a crash")
    args = parser.parse_args(argv)
    if args.command == "cleanup":
        for name in cleanup_stale():
            print(f"removed {name}")
        return 0
    return run_netns_alliance(args.data_dir, args.zones, examples=not args.no_examples, exit_after=args.exit_after)


if __name__ == "__main__":
    raise SystemExit(main())
