"""``zoneledger devnet``: a local alliance of validator processes, with example documents.

``create_devnet`` writes fresh keys (PEM, 0600), a genesis and one ``node.toml`` per zone
under the data directory, plus ``devnet.json`` describing them. ``Devnet`` starts one
``zoneledger node run`` process per zone on consecutive ports and stops them. The same
functions serve the command, the multi-process tests and ``zoneledger bench ingest``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ledger.encoding import H, compute_doc_hash
from ledger.genesis import Genesis
from ledger.keys import SigningKey
from ledger.transactions import Attachment, Envelope
from node.config import NodeConfig, TlsSettings, render_config
from scripts.devkit import ALLIANCE_ZONES, EXAMPLES_DIR, Alliance, zone_ids
from scripts.devnet_supervisor import admit_next, describe_exit, log_tail, startup_deadline

DEFAULT_PORT = 8600
DEFAULT_START_WINDOW = 0
HEALTH_PROBE_TIMEOUT_S = 10.0
"""How long one ``/healthz`` probe waits: a validator starting beside 57 others may be slow to answer."""
CHAIN_ID = "sez-alliance-devnet"
REPO_ROOT = Path(__file__).resolve().parent.parent

# (file, doc_type, zone) submitted on a fresh devnet; zones beyond --zones are skipped.
EXAMPLES: tuple[tuple[str, str, str], ...] = (
    ("coo_preferential.json", "certificate_of_origin", "EG-TEDA"),
    ("coo_non_preferential.json", "certificate_of_origin", "BY-GREATSTONE"),
    ("invoice.json", "commercial_invoice", "EG-TEDA"),
    ("bill_of_lading.json", "bill_of_lading", "EG-TEDA"),
    ("decl_export.json", "customs_declaration", "EG-TEDA"),
    ("decl_free_zone_entry.json", "customs_declaration", "DJ-DIFTZ"),
    ("certificate_of_non_manipulation.json", "certificate_of_non_manipulation", "DJ-DIFTZ"),
    ("decl_free_zone_exit.json", "customs_declaration", "DJ-DIFTZ"),
    ("decl_re_export.json", "customs_declaration", "LK-HAMBANTOTA"),
    ("decl_transfer.json", "customs_declaration", "BY-GREATSTONE"),
    ("decl_import.json", "customs_declaration", "CN-QIANHAI"),
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("devnet", help="run a local multi-zone network with example documents")
    parser.add_argument("--zones", type=int, default=4, help="number of member zones / validators (default 4)")
    parser.add_argument("--data-dir", type=Path, default=Path("devnet-data"), help="where keys, genesis and data live")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="first port; zone i listens on PORT+i")
    parser.add_argument("--fresh", action="store_true", help="discard an existing devnet in --data-dir first")
    parser.add_argument("--no-examples", action="store_true", help="do not submit the example documents")
    parser.add_argument("--exit-after", type=float, default=None, help="stop after this many seconds (for scripts)")
    parser.add_argument(
        "--netns", action="store_true",
        help="each zone in its own network namespace, with wide-area delays between zones (root, Linux; always fresh)",
    )
    parser.add_argument(
        "--start-window", type=int, default=DEFAULT_START_WINDOW, metavar="N",
        help="start at most N validators that do not answer yet at once; 0: all at once (the default: on 2 cores "
        "all 20 at once answered in 43 s, 4 or 2 at a time took over 100 s, the running ones starving the starting)",
    )
    parser.add_argument(
        "--startup-timeout", type=float, default=None, metavar="S",
        help="give up when the validators do not all answer within S seconds (default grows with --zones)",
    )
    parser.add_argument(
        "--status-every", type=float, default=0.0, metavar="S",
        help="print a one-line status (heights, who is down) every S seconds (default 0: on changes only)",
    )
    parser.set_defaults(func=run_devnet)
    which = parser.add_subparsers(dest="devnet_command", metavar="ctl", required=False)
    ctl = which.add_parser(
        "ctl", help="send a command to the running devnet: status, stop|start|kill|restart ZONE..., help, quit",
    )
    from scripts.devnet_supervisor import ACTIONS

    ctl.add_argument("action", choices=list(ACTIONS), help="what to do")
    ctl.add_argument("zone", nargs="*", help="zone id(s), or an unambiguous prefix (stop, start, kill, restart)")
    ctl.add_argument("--data-dir", dest="ctl_data_dir", type=Path, default=None, help="the running devnet's data directory")
    ctl.set_defaults(func=run_devnet)


@dataclass
class ZoneFiles:
    """Where one zone's keys and config live."""

    zone_id: str
    url: str
    config: Path
    validator_key: Path
    admin_key: Path
    officer_key: Path
    data_dir: Path


@dataclass
class DevnetLayout:
    """Everything ``create_devnet`` wrote; loaded back from ``devnet.json``."""

    root: Path
    genesis: Path
    auditor_key: Path
    zones: list[ZoneFiles]
    ca: Path | None = None
    """The throwaway CA's certificate when the devnet runs over TLS."""

    def http_verify(self) -> ssl.SSLContext | bool:
        """What an HTTP client passes as ``verify=`` to trust this devnet's nodes (and only them)."""
        return ssl.create_default_context(cafile=str(self.ca)) if self.ca else True

    def to_json(self) -> dict[str, Any]:
        return {
            "genesis": str(self.genesis),
            "auditor_key": str(self.auditor_key),
            "ca": str(self.ca) if self.ca else None,
            "zones": [
                {
                    "zone_id": z.zone_id, "url": z.url, "config": str(z.config), "officer_key": str(z.officer_key),
                    "admin_key": str(z.admin_key), "validator_key": str(z.validator_key), "data_dir": str(z.data_dir),
                    "genesis": str(self.genesis),
                }
                for z in self.zones
            ],
        }

    @classmethod
    def load(cls, root: Path) -> DevnetLayout:
        raw = json.loads((root / "devnet.json").read_text(encoding="utf-8"))
        zones = [
            ZoneFiles(
                z["zone_id"], z["url"], Path(z["config"]), Path(z["validator_key"]), Path(z["admin_key"]),
                Path(z["officer_key"]), Path(z["data_dir"]),
            )
            for z in raw["zones"]
        ]
        ca = Path(raw["ca"]) if raw.get("ca") else None
        return cls(root, Path(raw["genesis"]), Path(raw["auditor_key"]), zones, ca)

    def alliance(self) -> Alliance:
        """The devnet's keys as an :class:`Alliance`, for building signed transactions."""
        genesis = Genesis.load(self.genesis)
        return Alliance(
            genesis,
            [SigningKey.load(z.validator_key) for z in self.zones],
            {z.zone_id: SigningKey.load(z.admin_key) for z in self.zones},
            {z.zone_id: SigningKey.load(z.officer_key) for z in self.zones},
            [SigningKey.load(self.auditor_key)],
            nonce=int(time.time() * 1000),
        )


def compute_devnet_timing(zones: int) -> tuple[dict[str, int], int]:
    """Consensus timeouts (for the genesis) and the re-broadcast period (for node.toml)
    for a devnet of ``zones`` validators that all share this one machine.

    A height costs the alliance about n² messages, so on one machine a round's messages take
    longer to process the more zones there are; a timeout that expires first wastes the
    round, and the next one costs n² messages more (at 58 zones with the 4-zone timeouts
    the alliance spent its time in rounds it could not finish). Up to 16 zones the
    defaults stand; beyond, they grow with n. Separate hosts need less; an alliance sets
    its own in its genesis (``docs/PROTOCOL.md``, consensus parameters).
    """
    consensus = {
        "timeout_propose_ms": max(1000, 60 * zones),
        "timeout_delta_ms": max(500, 30 * zones),
        "max_block_txs": 5000,
    }
    return consensus, max(2000, 100 * zones)


def create_devnet(
    root: Path, zones: int, port: int, *, heartbeat_ms: int = 10_000, consensus: dict[str, int] | None = None,
    host: str = "127.0.0.1", tls: bool = False,
) -> DevnetLayout:
    """Fresh keys, genesis and node configs for ``zones`` validators under ``root``.

    With ``tls``, a throwaway CA signs one certificate per node and every API and peer
    connection is HTTPS, verified against that CA only.
    """
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    scheme = "https" if tls else "http"
    authority = None
    if tls:
        from node.tlsutil import make_test_ca

        authority = make_test_ca(root / "tls")
    names = {z[0]: (z[1], z[2]) for z in ALLIANCE_ZONES}
    ids = zone_ids(zones)
    files: list[ZoneFiles] = []
    genesis_zones = []
    for i, zone_id in enumerate(ids):
        zone_dir = root / zone_id
        keys: dict[str, SigningKey] = {}
        paths: dict[str, Path] = {}
        for role in ("validator", "admin", "officer"):
            keys[role] = SigningKey.generate()
            paths[role] = zone_dir / "keys" / f"{role}.pem"
            keys[role].save(paths[role])
        name, country = names.get(zone_id, (zone_id, "SG"))
        genesis_zones.append({
            "zone_id": zone_id, "name": name, "country": country,
            "admin_key": keys["admin"].public.hex(), "validator_key": keys["validator"].public.hex(),
            "officers": [keys["officer"].public.hex()],
        })
        files.append(ZoneFiles(
            zone_id, f"{scheme}://{host}:{port + i}", zone_dir / "node.toml", paths["validator"], paths["admin"],
            paths["officer"], zone_dir / "data",
        ))
    default_consensus, rebroadcast_ms = compute_devnet_timing(zones)
    auditor = SigningKey.generate()
    auditor_path = root / "auditor.pem"
    auditor.save(auditor_path)
    genesis = {
        "chain_id": CHAIN_ID,
        "genesis_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "zones": genesis_zones,
        "auditors": [auditor.public.hex()],
        "consensus": consensus or default_consensus,
    }
    Genesis.from_json(genesis)  # refuse to write a genesis that would not load
    genesis_path = root / "genesis.json"
    genesis_path.write_text(json.dumps(genesis, indent=2) + "\n", encoding="utf-8")
    peers = {i: z.url for i, z in enumerate(files)}
    for i, z in enumerate(files):
        tls_settings = None
        if authority is not None:
            from node.tlsutil import issue_cert

            cert, key = issue_cert(authority, z.config.parent / "tls", [host], name="node")
            tls_settings = TlsSettings(cert, key, authority.cert_path)
        config = NodeConfig(
            data_dir=z.data_dir, genesis=genesis_path, validator_key=z.validator_key, listen_host=host,
            listen_port=port + i, peers=peers, heartbeat_ms=heartbeat_ms, tls=tls_settings,
            rebroadcast_ms=rebroadcast_ms,
        )
        z.config.write_text(render_config(config), encoding="utf-8")
    layout = DevnetLayout(root, genesis_path, auditor_path, files, authority.cert_path if authority else None)
    (root / "devnet.json").write_text(json.dumps(layout.to_json(), indent=2) + "\n", encoding="utf-8")
    return layout


def _ephemeral_port_floor() -> int:
    """The lowest port the kernel hands to outgoing connections (Linux; 32768 by default)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port_block(count: int, host: str = "127.0.0.1") -> int:
    """A base port with ``count`` consecutive free ports (for tests and benchmarks).

    Chosen below the kernel's ephemeral range: a port that is free when probed there can
    be taken by any outgoing connection's source port before the node binds it (seen as
    "address already in use" when the suite runs many HTTP clients).
    """
    import random
    import socket

    ceiling = max(_ephemeral_port_floor(), 20000 + count + 1)
    for _ in range(200):
        base = random.randrange(10000, ceiling - count)
        sockets = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                sockets.append(s)
                s.bind((host, port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no block of free ports found")


def _die_with_parent() -> None:
    """Linux: the validator gets SIGTERM if the devnet process dies without stopping it."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _listening(url: str) -> bool:
    """Whether something accepts TCP connections at ``url``'s host and port (cheaper than an HTTP request)."""
    import socket

    parsed = httpx.URL(url)
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((parsed.host, parsed.port or 80)) == 0


def ports_in_use(layout: DevnetLayout) -> list[tuple[str, int]]:
    """The zones whose listening port something else already holds."""
    import socket

    busy = []
    for zone in layout.zones:
        parsed = httpx.URL(zone.url)
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((parsed.host, parsed.port or 80))
            except OSError:
                busy.append((zone.zone_id, parsed.port or 80))
    return busy


class ValidatorStartError(RuntimeError):
    """A validator of the devnet could not be started: which one, why, and where its log is."""

    def __init__(self, zone_id: str, reason: str, log: Path) -> None:
        super().__init__(f"validator {zone_id} {reason} (log: {log})")
        self.zone_id = zone_id
        self.reason = reason
        self.log = log


@dataclass(frozen=True)
class StopReport:
    """How stopping a devnet's validators went."""

    stopped: int
    killed: list[str]
    """Zones that did not stop within the grace time and got SIGKILL."""
    seconds: float


def stop_process(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGINT, then SIGKILL if the process has not exited within ``timeout`` seconds."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Devnet:
    """The running validator processes of a devnet layout."""

    def __init__(self, layout: DevnetLayout) -> None:
        self.layout = layout
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def log_path(self, zone_id: str) -> Path:
        return self._zone(zone_id).config.parent / "node.log"

    def _zone(self, zone_id: str) -> ZoneFiles:
        return next(z for z in self.layout.zones if z.zone_id == zone_id)

    def command_prefix(self, zone_id: str) -> list[str]:
        """What runs a zone's validator command (nothing here; a namespace in scripts/netns.py)."""
        return []

    def start_zone(self, zone_id: str) -> None:
        zone = self._zone(zone_id)
        log_path = self.log_path(zone_id)
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        with open(log_path, "ab") as log_file:
            if zone_id in os.environ.get("ZONELEDGER_PROFILE_ZONES", "").split(","):
                env["ZONELEDGER_PROFILE"] = str(zone.config.parent / "node.prof")
            # Its own session: Ctrl-C on the devnet's terminal reaches the devnet, which
            # stops every validator itself (and reports how that went).
            self.processes[zone_id] = subprocess.Popen(
                [*self.command_prefix(zone_id), sys.executable, "-m", "scripts.cli", "node", "run",
                 "--config", str(zone.config)],
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=str(REPO_ROOT),
                preexec_fn=_die_with_parent, start_new_session=True,
            )

    def start(self) -> None:
        for zone in self.layout.zones:
            self.start_zone(zone.zone_id)

    def launch(
        self, window: int = 0, timeout: float | None = None, progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """Start every validator, at most ``window`` not yet answering at once (0: all at once), and wait for all.

        Raises :class:`ValidatorStartError` naming the first validator that exits, or those
        still silent at the deadline (default :func:`startup_deadline` of the zone count).
        """
        waiting = [z.zone_id for z in self.layout.zones if z.zone_id not in self.processes]
        self._wait(waiting, timeout, progress, window)

    def signal_zone(self, zone_id: str, sig: int) -> None:
        self.processes[zone_id].send_signal(sig)

    def kill_zone(self, zone_id: str) -> None:
        process = self.processes.pop(zone_id)
        process.kill()
        process.wait()

    def stop_zone(self, zone_id: str, timeout: float = 10.0) -> None:
        process = self.processes.pop(zone_id, None)
        if process is not None:
            stop_process(process, timeout)

    def stop(self, timeout: float = 15.0) -> StopReport:
        """SIGINT to every validator at once, one ``timeout`` for all of them, then SIGKILL to the rest."""
        started = time.monotonic()
        processes = dict(self.processes)
        self.processes.clear()
        for process in processes.values():
            with contextlib.suppress(ProcessLookupError):
                if process.poll() is None:
                    process.send_signal(signal.SIGINT)
        deadline = started + timeout
        while time.monotonic() < deadline and any(p.poll() is None for p in processes.values()):
            time.sleep(0.05)
        killed = [zone_id for zone_id, p in processes.items() if p.poll() is None]
        for zone_id in killed:
            with contextlib.suppress(ProcessLookupError):
                processes[zone_id].kill()
        for process in processes.values():
            process.wait()
        return StopReport(len(processes), killed, time.monotonic() - started)

    def wait_healthy(
        self, timeout: float | None = None, zones: list[str] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """Wait until every started validator (or those of ``zones``) answers ``/healthz``.

        ``timeout`` defaults to :func:`startup_deadline` of the count; ``progress`` hears
        ``(answering, wanted)`` whenever the count changes. Raises :class:`ValidatorStartError`.
        """
        wanted = [z.zone_id for z in self.layout.zones if zones is None or z.zone_id in zones]
        self._wait(wanted, timeout, progress, window=0, start=False)

    def _wait(
        self, wanted: list[str], timeout: float | None, progress: Callable[[int, int], None] | None, window: int,
        start: bool = True,
    ) -> None:
        timeout = startup_deadline(len(wanted)) if timeout is None else timeout
        deadline = time.monotonic() + timeout
        waiting = list(wanted) if start else []
        pending = [] if start else list(wanted)
        answering = 0
        # Probes run beside each other: on a loaded machine one validator may take
        # seconds to answer, and the others (and the deadline) must not wait for it.
        client = httpx.Client(timeout=HEALTH_PROBE_TIMEOUT_S, verify=self.layout.http_verify())
        pool = ThreadPoolExecutor(max(1, min(16, len(wanted))), thread_name_prefix="healthz")
        probes: dict[str, Future[bool]] = {}

        def probe(url: str) -> bool:
            try:
                return _listening(url) and client.get(f"{url}/healthz").status_code == 200
            except httpx.HTTPError:
                return False

        try:
            while waiting or pending:
                for zone_id in admit_next(waiting, len(pending), window):
                    self.start_zone(zone_id)
                    waiting.remove(zone_id)
                    pending.append(zone_id)
                for zone_id in list(pending):
                    process = self.processes.get(zone_id)
                    if process is not None and process.poll() is not None:
                        tail = log_tail(self.log_path(zone_id), lines=1)
                        last = f": {tail[-1].strip()[:300]}" if tail else ""
                        raise ValidatorStartError(
                            zone_id, f"exited while starting: {describe_exit(process.returncode)}{last}",
                            self.log_path(zone_id),
                        )
                    running = probes.get(zone_id)
                    if running is None:
                        probes[zone_id] = pool.submit(probe, self._zone(zone_id).url)
                    elif running.done():
                        del probes[zone_id]
                        if running.result():
                            pending.remove(zone_id)
                            answering += 1
                            if progress is not None:
                                progress(answering, len(wanted))
                if not (waiting or pending):
                    break
                if time.monotonic() > deadline:
                    silent = pending + waiting
                    others = f" (and {len(silent) - 1} more)" if len(silent) > 1 else ""
                    raise ValidatorStartError(
                        silent[0], f"did not answer /healthz within {timeout:.0f} s{others}; "
                        f"{answering}/{len(wanted)} validators up", self.log_path(silent[0]),
                    )
                time.sleep(0.2)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            client.close()


@contextmanager
def running_devnet(layout: DevnetLayout) -> Iterator[Devnet]:
    devnet = Devnet(layout)
    try:
        devnet.start()
        devnet.wait_healthy()
        yield devnet
    finally:
        devnet.stop()


def post_transaction(client: httpx.Client, url: str, envelope: Envelope, document: Any, wait: float) -> dict[str, Any]:
    response = client.post(
        f"{url}/v1/transactions", params={"wait": wait} if wait else None,
        json={"envelope": envelope.encode().hex(), "document": document},
    )
    body: dict[str, Any] = response.json()
    if response.status_code >= 400:
        raise RuntimeError(f"{body.get('type')}: {body.get('detail')}")
    return body


def example_attachments(name: str) -> tuple[Attachment, ...]:
    """The PDF registered beside an example document, if ``scripts/examples`` has one (``X.json`` -> ``X.pdf``)."""
    pdf = EXAMPLES_DIR / name.replace(".json", ".pdf")
    if not pdf.is_file():
        return ()
    data = pdf.read_bytes()
    return (Attachment(pdf.name, "application/pdf", H(data), len(data)),)


UNAVAILABLE_RETRY_S = 180.0
"""How long an example is re-sent while its node cannot yet reach enough peers."""


class ExamplesNotFinalError(RuntimeError):
    """An example document was not final in time, or its node did not answer."""


def _submit_example(
    client: httpx.Client, url: str, via: str, what: str, envelope: Envelope, document: Any, wait: float,
) -> dict[str, Any]:
    # Right after a large alliance starts, its validators are still opening streams to each
    # other: a refusal for too few peers reached is worth retrying for a while.
    deadline = time.monotonic() + UNAVAILABLE_RETRY_S
    while True:
        try:
            result = post_transaction(client, url, envelope, document, wait=wait)
            break
        except httpx.HTTPError as exc:
            raise ExamplesNotFinalError(f"{what}: {via} ({url}) did not answer: {type(exc).__name__} {exc}") from exc
        except RuntimeError as exc:
            if str(exc).startswith("node.unavailable") and time.monotonic() < deadline:
                time.sleep(5.0)
                continue
            raise ExamplesNotFinalError(f"{what}: refused by {via}: {exc}") from exc
    if result.get("status") != "committed":
        raise ExamplesNotFinalError(
            f"{what}: still {result.get('status')} after {wait:.0f} s at {via} "
            "(the validators have not committed it: type 'status' to see the heights)"
        )
    return result


def submit_examples(layout: DevnetLayout, say: Any, *, wait: float = 30.0) -> list[dict[str, Any]]:
    """Issue the example documents through different nodes, then amend one and revoke one.

    Each waits up to ``wait`` seconds for finality; one that is not final by then (or
    whose node does not answer) raises :class:`ExamplesNotFinalError` saying which and why.
    """
    alliance = layout.alliance()
    zones = {z.zone_id: z for z in layout.zones}
    done: list[dict[str, Any]] = []
    from ledger.documents import document_number

    with httpx.Client(timeout=wait + 40.0, verify=layout.http_verify()) as client:
        for i, (name, doc_type, zone_id) in enumerate(EXAMPLES):
            if zone_id not in zones:
                continue
            document = json.loads((EXAMPLES_DIR / name).read_text(encoding="utf-8"))
            number = document_number(doc_type, document)
            envelope, _ = alliance.issue(zone_id, doc_type, document, number, attachments=example_attachments(name))
            via = layout.zones[i % len(layout.zones)]
            what = f"issuing {zone_id}/{number}"
            result = _submit_example(client, via.url, via.zone_id, what, envelope, document, wait)
            say(f"  issued {zone_id}/{number} ({doc_type}) via {via.zone_id}: {result['status']} at height {result.get('height')}")
            done.append({"doc_id": f"{zone_id}/{number}", "file": str(EXAMPLES_DIR / name), "doc_type": doc_type})
        original = json.loads((EXAMPLES_DIR / "coo_preferential.json").read_text(encoding="utf-8"))
        amended = json.loads(json.dumps(original))
        amended["firstSignatoryAuthentication"]["statement"] = (
            "The undersigned certifies that the goods described above meet the origin requirements; "
            "gross weight of item 2 corrected to 11,840 kg."
        )
        doc_id = f"EG-TEDA/{original['iD']}"
        envelope, _ = alliance.amend(
            "EG-TEDA", doc_id, amended, compute_doc_hash(original), "gross weight of item 2 corrected",
            attachments=example_attachments("coo_preferential.json"),  # the PDF stays with the current version
        )
        result = _submit_example(client, zones["EG-TEDA"].url, "EG-TEDA", f"amending {doc_id}", envelope, amended, wait)
        say(f"  amended {doc_id}: {result['status']} at height {result.get('height')}")
        amended_path = layout.root / "coo_preferential_amended.json"
        amended_path.write_text(json.dumps(amended, indent=2) + "\n", encoding="utf-8")
        done.append({"doc_id": doc_id, "file": str(amended_path), "doc_type": "certificate_of_origin", "amended": True})
        if "BY-GREATSTONE" in zones:
            revoked = json.loads((EXAMPLES_DIR / "coo_non_preferential.json").read_text(encoding="utf-8"))
            doc_id = f"BY-GREATSTONE/{revoked['iD']}"
            envelope = alliance.revoke("BY-GREATSTONE", doc_id, compute_doc_hash(revoked), "crane not shipped: contract cancelled")
            result = _submit_example(
                client, zones["BY-GREATSTONE"].url, "BY-GREATSTONE", f"revoking {doc_id}", envelope, None, wait,
            )
            say(f"  revoked {doc_id}: {result['status']} at height {result.get('height')}")
    (layout.root / "examples.json").write_text(json.dumps(done, indent=2) + "\n", encoding="utf-8")
    return done


def run_devnet(args: argparse.Namespace) -> int:
    if getattr(args, "devnet_command", None) == "ctl":
        return run_ctl(args)
    from scripts.devnet_supervisor import Supervisor, control_socket_path
    from scripts.usage import CliError

    lock = threading.Lock()

    def say(text: str) -> None:
        # The reader may go away (piped into head): keep running and stop cleanly.
        with lock, contextlib.suppress(BrokenPipeError):
            print(text, flush=True)

    root: Path = args.data_dir
    if not 1 <= args.zones <= 100:
        raise CliError(f"--zones: expected 1..100, got {args.zones}")
    if args.start_window < 0:
        raise CliError(f"--start-window: expected 0 (all at once) or more, got {args.start_window}")
    if args.status_every < 0 or (args.exit_after is not None and args.exit_after < 0):
        raise CliError("--status-every and --exit-after: expected seconds >= 0")
    if _devnet_answers(control_socket_path(root)):
        raise CliError(
            f"a devnet is already running in {root}: stop it first (zoneledger devnet ctl quit --data-dir {root}) "
            "or use another --data-dir"
        )
    if args.fresh and root.exists():
        import shutil

        shutil.rmtree(root)
    if args.netns:
        from scripts.netns import run_netns_alliance

        if (root / "devnet.json").exists():
            raise CliError(f"--netns: expected a new --data-dir (it builds a fresh alliance), got {root}: add --fresh")
        return run_netns_alliance(
            root, args.zones, examples=not args.no_examples, exit_after=args.exit_after, say=say,
        )
    if (root / "devnet.json").exists():
        layout = DevnetLayout.load(root.resolve())
        say(f"reusing the devnet in {root} ({len(layout.zones)} zones, ports from devnet.json); --fresh starts over")
    else:
        layout = create_devnet(root, args.zones, args.port)
        say(f"created a {args.zones}-zone devnet in {root}: keys, genesis.json, one node.toml per zone")
    busy = ports_in_use(layout)
    if busy:
        zone_id, port = busy[0]
        more = f" (and {len(busy) - 1} more ports)" if len(busy) > 1 else ""
        raise CliError(
            f"port {port} of validator {zone_id} is already in use{more}: another devnet or program holds it; "
            "stop it, or start a fresh devnet on other ports (--fresh --port P)"
        )
    devnet = Devnet(layout)
    terminated = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal terminated
        terminated = True

    signal.signal(signal.SIGTERM, on_signal)
    count = len(layout.zones)
    deadline = args.startup_timeout if args.startup_timeout is not None else startup_deadline(count)
    window = args.start_window
    reason = "the devnet ended"
    failure: ValidatorStartError | None = None
    supervisor: Supervisor | None = None
    began = time.monotonic()
    last_progress = began

    def progress(up: int, total: int) -> None:
        nonlocal last_progress
        now = time.monotonic()
        if up < total and now - last_progress >= 5.0:
            last_progress = now
            say(f"  {up}/{total} validators up ({now - began:.0f} s)")

    try:
        at_once = "all at once" if window == 0 or window >= count else f"at most {window} starting at once"
        say(f"starting {count} validators ({at_once}; giving up after {deadline:.0f} s) ...")
        devnet.launch(window, deadline, progress)
        say(f"{count}/{count} validators up in {time.monotonic() - began:.1f} s")
        supervisor = Supervisor(devnet, say, status_every=args.status_every)
        socket_path = supervisor.serve_control_socket()
        _print_welcome(layout, root, say)
        interactive = sys.stdin is not None and sys.stdin.isatty()
        say("")
        say("the devnet watches its validators: one that dies is reported and the others go on.")
        if interactive:
            say("type a command and Enter: status, stop ZONE, start ZONE, kill ZONE, restart ZONE, help, quit")
        say(f"from another shell: zoneledger devnet ctl status|stop|start|kill|restart [ZONE] --data-dir {root}"
            f"   (socket {socket_path})")
        say("Ctrl-C stops every validator.")
        if not (layout.root / "examples.json").exists() and not args.no_examples:
            threading.Thread(target=_submit_examples_beside, args=(layout, say), name="examples", daemon=True).start()
        supervisor.read_stdin()
        started = time.monotonic()

        def should_stop() -> str | None:
            if terminated:
                return "SIGTERM"
            if args.exit_after is not None and time.monotonic() - started >= args.exit_after:
                return f"--exit-after {args.exit_after:g} s elapsed"
            return None

        reason = supervisor.run(should_stop)
    except ValidatorStartError as exc:
        failure = exc
        reason = f"validator {exc.zone_id} failed to start"
    except KeyboardInterrupt:
        reason = "Ctrl-C"
    except BaseException as exc:
        reason = f"unexpected error: {type(exc).__name__}: {exc}"
        raise
    finally:
        say(f"stopping validators ({reason}) ...")
        report = devnet.stop()
        killed = f"; {len(report.killed)} did not stop in time and got SIGKILL: {', '.join(report.killed)}" if report.killed else ""
        say(f"stopped {report.stopped} validators in {report.seconds:.1f} s{killed}")
        if supervisor is not None:
            supervisor.close()
    if failure is not None:
        raise CliError(f"devnet: {failure}")
    return 0


def _submit_examples_beside(layout: DevnetLayout, say: Callable[[str], None]) -> None:
    """Submit the examples on a thread: a slow or silent alliance is reported, never fatal."""
    say("submitting example documents (each waits up to 30 s for finality) ...")
    try:
        submit_examples(layout, say)
    except ExamplesNotFinalError as exc:
        say(f"example documents stopped: {exc}; the devnet keeps running "
            "(restart it later to submit the rest, or --fresh to start over)")
    except Exception as exc:  # noqa: BLE001 - reported, and the devnet goes on
        say(f"example documents stopped: {type(exc).__name__}: {exc}; the devnet keeps running")
    else:
        say("example documents submitted")


def _print_welcome(layout: DevnetLayout, root: Path, say: Callable[[str], None]) -> None:
    say("")
    say("the alliance is running:")
    for zone in layout.zones:
        say(f"  {zone.zone_id:<15} {zone.url}   (API docs: {zone.url}/docs)")
    first = layout.zones[0]
    say("")
    say("try next:")
    say(f"  zoneledger status --node {first.url}")
    say(f"  zoneledger doc get EG-TEDA/CO-2026-000123 --key {first.officer_key} --node {first.url}")
    say(f"  zoneledger submit scripts/examples/invoice.json --type commercial_invoice --key {first.officer_key} "
        f"--node {first.url} --wait   (then change its \"id\" and submit again)")
    say(f"  curl {first.url}/v1/status")
    say(f"  zoneledger audit --node {first.url} --key {layout.auditor_key} --genesis {layout.genesis}"
        "   (replays the chain from genesis, checking every rule)")
    say(f"  layout, keys and configs: {root / 'devnet.json'}")


def _devnet_answers(path: Path) -> bool:
    """Whether a running devnet listens on its control socket ``path``."""
    import socket

    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


def run_ctl(args: argparse.Namespace) -> int:
    """``zoneledger devnet ctl ACTION [ZONE ...]``: one command to the running devnet; its answer."""
    from scripts.devnet_supervisor import ZONE_ACTIONS, send_command, startup_deadline
    from scripts.usage import CliError

    root: Path = args.ctl_data_dir or args.data_dir
    if args.action in ZONE_ACTIONS and not args.zone:
        raise CliError(f"devnet ctl {args.action}: name the zone(s), e.g. devnet ctl {args.action} DJ-DIFTZ")
    if args.action not in ZONE_ACTIONS and args.zone:
        raise CliError(f"devnet ctl {args.action} takes no zone, got {' '.join(args.zone)}")
    ok, lines = send_command(root, " ".join([args.action, *args.zone]), timeout=startup_deadline(1) + 60.0)
    errors = [line for line in lines if line.startswith("error: ")]
    if errors:
        raise CliError(f"devnet ctl: {errors[0][len('error: '):]}")
    for line in lines:
        print(line, flush=True)
    return 0 if ok else 1
