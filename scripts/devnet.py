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
import time
from collections.abc import Iterator
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

DEFAULT_PORT = 8600
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
    parser.set_defaults(func=run_devnet)


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
    auditor = SigningKey.generate()
    auditor_path = root / "auditor.pem"
    auditor.save(auditor_path)
    genesis = {
        "chain_id": CHAIN_ID,
        "genesis_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "zones": genesis_zones,
        "auditors": [auditor.public.hex()],
        "consensus": consensus or {"timeout_propose_ms": 1000, "timeout_delta_ms": 500, "max_block_txs": 5000},
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


class Devnet:
    """The running validator processes of a devnet layout."""

    def __init__(self, layout: DevnetLayout) -> None:
        self.layout = layout
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start_zone(self, zone_id: str) -> None:
        zone = next(z for z in self.layout.zones if z.zone_id == zone_id)
        log_path = zone.config.parent / "node.log"
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        with open(log_path, "ab") as log_file:
            if zone_id in os.environ.get("ZONELEDGER_PROFILE_ZONES", "").split(","):
                env["ZONELEDGER_PROFILE"] = str(zone.config.parent / "node.prof")
            self.processes[zone_id] = subprocess.Popen(
                [sys.executable, "-m", "scripts.cli", "node", "run", "--config", str(zone.config)],
                stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=str(REPO_ROOT),
                preexec_fn=_die_with_parent,
            )

    def start(self) -> None:
        for zone in self.layout.zones:
            self.start_zone(zone.zone_id)

    def signal_zone(self, zone_id: str, sig: int) -> None:
        self.processes[zone_id].send_signal(sig)

    def kill_zone(self, zone_id: str) -> None:
        process = self.processes.pop(zone_id)
        process.kill()
        process.wait()

    def stop_zone(self, zone_id: str, timeout: float = 10.0) -> None:
        process = self.processes.pop(zone_id, None)
        if process is None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop(self) -> None:
        for zone_id in list(self.processes):
            self.stop_zone(zone_id)

    def wait_healthy(self, timeout: float = 60.0, zones: list[str] | None = None) -> None:
        deadline = time.monotonic() + timeout
        wanted = [z for z in self.layout.zones if zones is None or z.zone_id in zones]
        with httpx.Client(timeout=2.0, verify=self.layout.http_verify()) as client:
            for zone in wanted:
                while True:
                    process = self.processes.get(zone.zone_id)
                    if process is not None and process.poll() is not None:
                        log_text = (zone.config.parent / "node.log").read_text(errors="replace")[-2000:]
                        raise RuntimeError(f"node {zone.zone_id} exited with {process.returncode}:\n{log_text}")
                    try:
                        if client.get(f"{zone.url}/healthz").status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"node {zone.zone_id} did not become healthy within {timeout} s")
                    time.sleep(0.1)


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


def submit_examples(layout: DevnetLayout, say: Any) -> list[dict[str, Any]]:
    """Issue the example documents through different nodes, then amend one and revoke one."""
    alliance = layout.alliance()
    zones = {z.zone_id: z for z in layout.zones}
    done: list[dict[str, Any]] = []
    from ledger.documents import document_number

    with httpx.Client(timeout=70.0, verify=layout.http_verify()) as client:
        for i, (name, doc_type, zone_id) in enumerate(EXAMPLES):
            if zone_id not in zones:
                continue
            document = json.loads((EXAMPLES_DIR / name).read_text(encoding="utf-8"))
            number = document_number(doc_type, document)
            envelope, _ = alliance.issue(zone_id, doc_type, document, number, attachments=example_attachments(name))
            via = layout.zones[i % len(layout.zones)]
            result = post_transaction(client, via.url, envelope, document, wait=30)
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
        result = post_transaction(client, zones["EG-TEDA"].url, envelope, amended, wait=30)
        say(f"  amended {doc_id}: {result['status']} at height {result.get('height')}")
        amended_path = layout.root / "coo_preferential_amended.json"
        amended_path.write_text(json.dumps(amended, indent=2) + "\n", encoding="utf-8")
        done.append({"doc_id": doc_id, "file": str(amended_path), "doc_type": "certificate_of_origin", "amended": True})
        if "BY-GREATSTONE" in zones:
            revoked = json.loads((EXAMPLES_DIR / "coo_non_preferential.json").read_text(encoding="utf-8"))
            doc_id = f"BY-GREATSTONE/{revoked['iD']}"
            envelope = alliance.revoke("BY-GREATSTONE", doc_id, compute_doc_hash(revoked), "crane not shipped: contract cancelled")
            result = post_transaction(client, zones["BY-GREATSTONE"].url, envelope, None, wait=30)
            say(f"  revoked {doc_id}: {result['status']} at height {result.get('height')}")
    (layout.root / "examples.json").write_text(json.dumps(done, indent=2) + "\n", encoding="utf-8")
    return done


def run_devnet(args: argparse.Namespace) -> int:
    def say(text: str) -> None:
        # The reader may go away (piped into head): keep running and stop cleanly.
        with contextlib.suppress(BrokenPipeError):
            print(text, flush=True)

    root: Path = args.data_dir
    if args.fresh and root.exists():
        import shutil

        shutil.rmtree(root)
    if (root / "devnet.json").exists():
        layout = DevnetLayout.load(root.resolve())
        say(f"reusing the devnet in {root} ({len(layout.zones)} zones); --fresh starts over")
    else:
        if not 1 <= args.zones <= 100:
            from scripts.usage import CliError

            raise CliError(f"--zones: expected 1..100, got {args.zones}")
        layout = create_devnet(root, args.zones, args.port)
        say(f"created a {args.zones}-zone devnet in {root}: keys, genesis.json, one node.toml per zone")
    devnet = Devnet(layout)
    stop = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    try:
        devnet.start()
        say("starting validators ...")
        devnet.wait_healthy()
        if not (layout.root / "examples.json").exists() and not args.no_examples:
            say("submitting example documents (each waits for finality) ...")
            submit_examples(layout, say)
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
        say("")
        say("Ctrl-C stops every validator.")
        started = time.monotonic()
        while not stop:
            time.sleep(0.2)
            if args.exit_after is not None and time.monotonic() - started >= args.exit_after:
                break
            for zone_id, process in devnet.processes.items():
                if process.poll() is not None:
                    say(f"validator {zone_id} exited with code {process.returncode}; see its node.log")
                    stop = True
                    break
    except KeyboardInterrupt:
        pass
    finally:
        say("stopping validators ...")
        devnet.stop()
    return 0
