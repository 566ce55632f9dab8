"""``zoneledger bench``: throughput figures, always beside a baseline from the same run.

The machine this runs on is shared and noisy, so every figure is reported next to raw
Ed25519 verifications per second measured in the same process moments before, and
as a ratio to it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.encoding import H, jcs
from ledger.testkit import EXAMPLES_DIR, Alliance, make_alliance, with_number


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("bench", help="measure throughput against a same-run Ed25519 baseline")
    which = parser.add_subparsers(dest="bench", metavar="SUITE", required=True)
    core = which.add_parser("core", help="ledger core: apply_block, log, state tree, proofs")
    core.add_argument("--docs", type=int, default=4000, help="documents pushed through apply_block")
    core.add_argument("--block-size", type=int, default=500, help="documents per block")
    core.add_argument("--proof-docs", type=int, default=1_000_000, help="ledger size for the proof timing")
    core.add_argument("--json", type=Path, help="also write the figures as JSON here")
    core.set_defaults(func=run_core)
    ingest = which.add_parser("ingest", help="committed docs/s and finality latency on a local devnet")
    ingest.add_argument("--zones", type=int, default=4)
    ingest.add_argument("--docs", type=int, default=5000)
    ingest.add_argument("--rate", type=float, default=1000.0, help="offered documents per second")
    ingest.add_argument("--clients", type=int, default=8, help="concurrent officer clients")
    ingest.add_argument("--batch", type=int, default=25, help="documents per request")
    ingest.add_argument("--json", type=Path, help="also write the figures as JSON here")
    ingest.set_defaults(func=run_ingest)


def measure_verify_rate(seconds: float = 1.5) -> float:
    """Raw Ed25519 verifications per second on ~300-byte messages (the baseline)."""
    from ledger.keys import SigningKey

    key = SigningKey.from_label("bench baseline")
    public = Ed25519PublicKey.from_public_bytes(key.public)
    messages = [os.urandom(300) for _ in range(64)]
    sigs = [key.sign_bytes(m) for m in messages]
    count = 0
    start = time.perf_counter()
    while True:
        for m, s in zip(messages, sigs, strict=True):
            public.verify(s, m)
        count += len(messages)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return count / elapsed


def example_certificate() -> dict[str, Any]:
    path = EXAMPLES_DIR / "coo_preferential.json"
    value: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return value


def _rate(count: int, fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return count / (time.perf_counter() - start)


def bench_apply_block(alliance: Alliance, docs: int, block_size: int, store_dir: Path) -> tuple[float, int]:
    """Documents per second through execute + commit on LevelDB; signing is done beforehand."""
    from ledger.store import LevelDBStore
    from ledger.transition import apply_block

    template = example_certificate()
    doc_size = len(jcs(template))
    # Build the blocks on a scratch chain first (signing and proposing are not what we measure).
    scratch = alliance.chain(LevelDBStore(store_dir / "scratch"))
    blocks = []
    for start in range(0, docs, block_size):
        entries = []
        for i in range(start, min(start + block_size, docs)):
            number = f"BENCH-{i:07d}"
            entries.append(alliance.issue("EG-TEDA", "certificate_of_origin", with_number(template, "certificate_of_origin", number), number))
        block = alliance.commit_next(scratch, entries)
        commit = scratch.get_commit(block.height)
        assert commit is not None
        blocks.append((block, commit))
    scratch.store.close()
    # The canonical commit of h is the one block h+1 carries; use the scratch chain's final set.
    chain = alliance.chain(LevelDBStore(store_dir / "measured"))
    start_time = time.perf_counter()
    for block, commit in blocks:
        apply_block(chain, block, commit)
    elapsed = time.perf_counter() - start_time
    chain.store.close()
    return docs / elapsed, doc_size


def bench_log_appends(count: int, store_dir: Path) -> float:
    from ledger.merkle import MerkleLog
    from ledger.store import LevelDBStore, Overlay, WriteBatch

    store = LevelDBStore(store_dir / "log")
    leaves = [os.urandom(400) for _ in range(1000)]
    per_batch = 1000
    start = time.perf_counter()
    for _ in range(count // per_batch):
        batch = WriteBatch()
        log = MerkleLog(Overlay(store, batch))
        for leaf in leaves:
            log.append(batch, leaf)
        log.root()
        store.write(batch)
    rate = count / (time.perf_counter() - start)
    store.close()
    return rate


def bench_tree_updates(count: int, preload: int, store_dir: Path) -> float:
    from ledger.smt import StateTree
    from ledger.store import LevelDBStore, Overlay, WriteBatch

    store = LevelDBStore(store_dir / "smt")
    rng = random.Random(7)
    per_batch = 1000

    def load(n: int) -> None:
        for _ in range(n // per_batch):
            batch = WriteBatch()
            tree = StateTree(Overlay(store, batch))
            tree.update(batch, {rng.randbytes(32): rng.randbytes(60) for _ in range(per_batch)})
            store.write(batch)

    load(preload)
    rate = _rate(count, lambda: load(count))
    store.close()
    return rate


def bench_proofs(size: int, store_dir: Path, progress: Callable[[str], None]) -> dict[str, float]:
    """Fill a log and a state tree to ``size`` documents, then time inclusion + state proofs."""
    from ledger.merkle import MerkleLog, verify_inclusion_hash
    from ledger.smt import StateTree, verify_state_proof
    from ledger.store import LevelDBStore, Overlay, WriteBatch

    store = LevelDBStore(store_dir / "proofs")
    rng = random.Random(11)
    keys: list[bytes] = []
    per_batch = 10_000
    done = 0
    while done < size:
        n = min(per_batch, size - done)
        batch = WriteBatch()
        overlay = Overlay(store, batch)
        log = MerkleLog(overlay, prefix=b"L/")
        tree = StateTree(overlay, prefix=b"S/")
        items = {}
        for i in range(n):
            leaf = rng.randbytes(300)
            log.append(batch, leaf)
            key = H(f"EG-TEDA/P-{done + i}".encode())
            items[key] = rng.randbytes(60)
            if (done + i) % 997 == 0:
                keys.append(key)
        tree.update(batch, items)
        store.write(batch, sync=False)
        done += n
        if done % 100_000 == 0:
            progress(f"  filled {done:,} / {size:,}")
    log = MerkleLog(store, prefix=b"L/")
    tree = StateTree(store, prefix=b"S/")
    root = log.root()
    state_root = tree.root()
    samples = []
    for key in keys[:200]:
        index = rng.randrange(size)
        t0 = time.perf_counter()
        proof = log.inclusion_proof(index, size)
        state_proof = tree.prove(key)
        samples.append(time.perf_counter() - t0)
        verify_inclusion_hash(log.leaf_hash_at(index), index, size, proof, root)
        value = tree.get(key)
        verify_state_proof(key, value, state_proof, state_root)
    store.close()
    return {
        "median_ms": statistics.median(samples) * 1000,
        "p95_ms": sorted(samples)[int(len(samples) * 0.95) - 1] * 1000,
    }


def run_core(args: argparse.Namespace) -> int:
    def say(text: str) -> None:
        print(text, flush=True)

    alliance = make_alliance(4, label="bench")
    figures: dict[str, Any] = {"cores": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="zoneledger-bench-") as tmp:
        work = Path(tmp)
        say("measuring raw Ed25519 verify/s (baseline) ...")
        baseline = measure_verify_rate()
        figures["ed25519_verify_per_s"] = baseline
        say(f"  baseline: {baseline:,.0f} verify/s")
        say(f"apply_block: {args.docs:,} certificates in blocks of {args.block_size} ...")
        rate, doc_size = bench_apply_block(alliance, args.docs, args.block_size, work)
        figures |= {"apply_block_docs_per_s": rate, "apply_block_ratio": rate / baseline, "document_bytes": doc_size}
        say(f"  apply_block: {rate:,.0f} docs/s ({rate / baseline:.2f} x baseline), {doc_size:,}-byte certificates")
        baseline_again = measure_verify_rate(1.0)
        figures["ed25519_verify_per_s_after"] = baseline_again
        say("log appends ...")
        figures["log_appends_per_s"] = bench_log_appends(100_000, work)
        say(f"  log appends: {figures['log_appends_per_s']:,.0f}/s")
        say("state tree updates (tree of 100,000 keys, batches of 1,000) ...")
        figures["tree_updates_per_s"] = bench_tree_updates(50_000, 100_000, work)
        say(f"  tree updates: {figures['tree_updates_per_s']:,.0f}/s")
        say(f"proofs in a ledger of {args.proof_docs:,} documents (filling it takes a while) ...")
        proofs = bench_proofs(args.proof_docs, work, say)
        figures["proof_docs"] = args.proof_docs
        figures |= {f"proof_{k}": v for k, v in proofs.items()}
        say(f"  inclusion + state proof: median {proofs['median_ms']:.3f} ms, p95 {proofs['p95_ms']:.3f} ms")
    say("")
    say(
        f"baseline {baseline:,.0f} verify/s | apply_block {rate:,.0f} docs/s = {rate / baseline:.2f} x baseline | "
        f"log {figures['log_appends_per_s']:,.0f} appends/s | tree {figures['tree_updates_per_s']:,.0f} updates/s | "
        f"proof {proofs['median_ms']:.3f} ms at {args.proof_docs:,} docs"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


def run_ingest(args: argparse.Namespace) -> int:
    """Offer ``--docs`` certificates at ``--rate`` to a fresh devnet; measure finality."""
    import asyncio

    from ledger.documents import document_number
    from scripts.devnet import Devnet, create_devnet, free_port_block

    def say(text: str) -> None:
        print(text, flush=True)

    say("measuring raw Ed25519 verify/s (baseline) ...")
    baseline = measure_verify_rate()
    say(f"  baseline: {baseline:,.0f} verify/s")
    template = example_certificate()
    with tempfile.TemporaryDirectory(prefix="zoneledger-ingest-") as tmp:
        layout = create_devnet(Path(tmp), args.zones, free_port_block(args.zones), heartbeat_ms=5000)
        alliance = layout.alliance()
        say(f"signing {args.docs:,} certificates ...")
        zones = [z.zone_id for z in layout.zones]
        items = []
        for i in range(args.docs):
            zone = zones[i % len(zones)]
            document = with_number(template, "certificate_of_origin", f"ING-{i:07d}")
            envelope, _ = alliance.issue(zone, "certificate_of_origin", document, document_number("certificate_of_origin", document))
            items.append({"envelope": envelope.encode().hex(), "document": document})
        batches = [items[i:i + args.batch] for i in range(0, len(items), args.batch)]
        devnet = Devnet(layout)
        devnet.start()
        try:
            devnet.wait_healthy()
            say(f"offering {args.docs:,} docs at {args.rate:,.0f}/s from {args.clients} clients in batches of {args.batch} ...")
            latencies, committed, elapsed = asyncio.run(
                _offer(batches, [z.url for z in layout.zones], args.rate, args.batch, args.clients)
            )
        finally:
            devnet.stop()
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else float("nan")

    rate = committed / elapsed if elapsed else 0.0
    figures = {
        "zones": args.zones, "docs": args.docs, "offered_rate": args.rate, "committed": committed,
        "committed_docs_per_s": rate, "latency_p50_s": pct(0.50), "latency_p95_s": pct(0.95),
        "latency_p99_s": pct(0.99), "ed25519_verify_per_s": baseline, "cores": os.cpu_count(),
    }
    say("")
    say(
        f"committed {committed:,}/{args.docs:,} docs in {elapsed:.1f} s = {rate:,.0f} docs/s final | "
        f"finality p50 {pct(0.5):.3f} s, p95 {pct(0.95):.3f} s, p99 {pct(0.99):.3f} s | "
        f"baseline {baseline:,.0f} verify/s | {args.zones} validators on {os.cpu_count()} cores"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


async def _offer(
    batches: list[list[dict[str, Any]]], urls: list[str], rate: float, batch_size: int, clients: int
) -> tuple[list[float], int, float]:
    """Send batches on a fixed schedule (rate), each waiting for finality; return per-doc latencies."""
    import asyncio

    import httpx

    latencies: list[float] = []
    committed = 0
    queue: asyncio.Queue[tuple[int, list[dict[str, Any]]]] = asyncio.Queue()
    start = time.perf_counter()
    interval = batch_size / rate

    async def producer() -> None:
        for i, batch in enumerate(batches):
            due = start + i * interval
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await queue.put((i, batch))
        for _ in range(clients):
            await queue.put((-1, []))

    async def client(k: int) -> None:
        nonlocal committed
        async with httpx.AsyncClient(timeout=120.0) as http:
            while True:
                i, batch = await queue.get()
                if i < 0:
                    return
                sent = time.perf_counter()
                url = urls[i % len(urls)]
                try:
                    response = await http.post(f"{url}/v1/transactions", params={"wait": 60}, json={"transactions": batch})
                    results = response.json().get("results", [])
                except (httpx.HTTPError, ValueError):
                    continue
                took = time.perf_counter() - sent
                for result in results:
                    if result.get("status") == "committed":
                        committed += 1
                        latencies.append(took)

    await asyncio.gather(producer(), *(client(k) for k in range(clients)))
    return latencies, committed, time.perf_counter() - start
