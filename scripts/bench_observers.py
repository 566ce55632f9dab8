"""``zoneledger bench observers``: verify requests/s with 0, 1 and 2 observers beside a devnet.

A fresh devnet of ``--zones`` validators registers one certificate; then, for each of
``--rounds`` rounds, a separate load process runs ``--clients`` concurrent clients,
each posting that certificate to ``POST /v1/verify`` (a full proof bundle built,
checked and returned, gzip as a browser asks) for ``--seconds``, spreading requests
evenly over every serving node: the validators alone, then with one observer added,
then with two. Each answer must be 200 with the verdict ``valid``. Figures are the
requests/s of each phase, its ratio to the same round's validators-alone phase, and
the ratio to raw Ed25519 verifications per second measured moments before (the
baseline of every ``zoneledger bench``), plus the CPU seconds each group of processes
used, since on one machine every process shares the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

PHASES = (0, 1, 2)
"""Observers beside the validators in each phase of a round."""


def register(which: Any) -> None:
    parser = which.add_parser("observers", help="verify requests/s from validators alone, then with 1 and 2 observers")
    parser.add_argument("--zones", type=int, default=4)
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients in the load process")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each phase")
    parser.add_argument("--rounds", type=int, default=2, help="times the three phases are run, in order")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.set_defaults(func=run_observers)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used (Linux ``/proc``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_load(urls: list[str], document: dict[str, Any], clients: int, seconds: float) -> dict[str, Any]:
    """In the load process: ``clients`` loops posting the document for ``seconds``."""
    import httpx

    async def go() -> dict[str, Any]:
        counts = {url: 0 for url in urls}
        errors: dict[str, int] = {}
        body = json.dumps({"document": document}).encode()
        headers = {"content-type": "application/json"}
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(timeout=30.0, limits=limits) as http:
            start = time.perf_counter()
            deadline = start + seconds

            async def client(k: int) -> None:
                i = k
                while time.perf_counter() < deadline:
                    url = urls[i % len(urls)]
                    i += 1
                    try:
                        response = await http.post(f"{url}/v1/verify", content=body, headers=headers)
                        ok = response.status_code == 200 and response.json().get("verdict") == "valid"
                        reason = "ok" if ok else f"{response.status_code}"
                    except (httpx.HTTPError, ValueError) as exc:
                        reason = type(exc).__name__
                    if reason == "ok":
                        counts[url] += 1
                    else:
                        errors[reason] = errors.get(reason, 0) + 1

            await asyncio.gather(*(client(k) for k in range(clients)))
            elapsed = time.perf_counter() - start
        return {"counts": counts, "errors": errors, "elapsed": elapsed}

    return asyncio.run(go())


def measure_phase(
    urls: list[str], document: dict[str, Any], clients: int, seconds: float, groups: dict[str, list[int]],
) -> dict[str, Any]:
    """One phase: the load process against ``urls``, with the CPU each group used."""
    before = {name: sum(cpu_seconds(p) for p in pids) for name, pids in groups.items()}
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        pending = pool.apply_async(run_load, (urls, document, clients, seconds))
        result: dict[str, Any] = pending.get(timeout=seconds + 120)
    cpu = {name: sum(cpu_seconds(p) for p in pids) - before[name] for name, pids in groups.items()}
    served = sum(result["counts"].values())
    return {
        "nodes": len(urls), "requests": served, "requests_per_s": served / result["elapsed"],
        "errors": result["errors"], "per_node": result["counts"], "cpu_s": cpu,
    }


def run_observers(args: argparse.Namespace) -> int:
    from ledger.documents import document_number
    from scripts.bench import example_certificate, measure_verify_rate
    from scripts.devnet import Devnet, create_devnet, free_port_block, post_transaction
    from scripts.observers import Observers, create_observers

    def say(text: str) -> None:
        print(text, flush=True)

    say("measuring raw Ed25519 verify/s (baseline) ...")
    baseline = measure_verify_rate()
    say(f"  baseline: {baseline:,.0f} verify/s")
    rounds: list[dict[int, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="zoneledger-observers-") as tmp:
        layout = create_devnet(Path(tmp), args.zones, free_port_block(args.zones), heartbeat_ms=60_000)
        devnet = Devnet(layout)
        files = create_observers(layout, max(PHASES), free_port_block(max(PHASES)))
        observers = Observers(files)
        devnet.start()
        try:
            devnet.wait_healthy()
            import httpx

            document = example_certificate()
            envelope, _ = layout.alliance().issue(
                layout.zones[0].zone_id, "certificate_of_origin", document,
                document_number("certificate_of_origin", document),
            )
            with httpx.Client(timeout=70.0) as client:
                result = post_transaction(client, layout.zones[0].url, envelope, document, wait=30)
                height = int(client.get(f"{layout.zones[0].url}/healthz").json()["height"])
            say(f"registered one certificate at height {result.get('height')}; {args.clients} clients, "
                f"{args.seconds:.0f} s per phase, {args.rounds} rounds")
            validators = [z.url for z in layout.zones]
            for r in range(args.rounds):
                phases: dict[int, dict[str, Any]] = {}
                for count in PHASES:
                    for f in files[:count]:
                        if f.node_id not in observers.processes:
                            observers.start_one(f.node_id)
                    observers.wait_height(height, timeout=120)
                    groups = {
                        "validators": [p.pid for p in devnet.processes.values()],
                        "observers": [p.pid for p in observers.processes.values()],
                    }
                    urls = validators + [f.url for f in files[:count]]
                    phase = measure_phase(urls, document, args.clients, args.seconds, groups)
                    phases[count] = phase
                    ratio = phase["requests_per_s"] / phases[0]["requests_per_s"] if phases[0]["requests_per_s"] else 0.0
                    say(
                        f"  round {r + 1}, {count} observer(s), {len(urls)} serving nodes: "
                        f"{phase['requests_per_s']:,.0f} verify req/s (x{ratio:.2f} the validators alone), "
                        f"CPU s validators {phase['cpu_s']['validators']:.1f}, observers {phase['cpu_s']['observers']:.1f}, "
                        f"errors {phase['errors'] or 0}"
                    )
                rounds.append(phases)
                observers.stop()
        finally:
            observers.stop()
            devnet.stop()
    summary = summarise(rounds, baseline)
    say("")
    for count in PHASES:
        s = summary[count]
        say(
            f"{count} observer(s): median {s['requests_per_s']:,.0f} verify req/s = x{s['ratio_to_validators_alone']:.2f} "
            f"the validators alone (same round, median) = {s['ratio_to_ed25519']:.4f} x Ed25519 baseline "
            f"({baseline:,.0f}/s) | {args.zones} validators, {os.cpu_count()} cores"
        )
    if args.json:
        args.json.write_text(json.dumps({
            "zones": args.zones, "clients": args.clients, "seconds": args.seconds, "cores": os.cpu_count(),
            "ed25519_verify_per_s": baseline, "rounds": [{str(k): v for k, v in p.items()} for p in rounds],
            "summary": {str(k): v for k, v in summary.items()},
        }, indent=2))
    return 0


def summarise(rounds: list[dict[int, dict[str, Any]]], baseline: float) -> dict[int, dict[str, float]]:
    """Per phase: median requests/s, median same-round ratio to phase 0, ratio to the baseline."""
    out = {}
    for count in PHASES:
        rates = [p[count]["requests_per_s"] for p in rounds]
        ratios = [p[count]["requests_per_s"] / p[0]["requests_per_s"] for p in rounds if p[0]["requests_per_s"]]
        median = statistics.median(rates)
        out[count] = {
            "requests_per_s": median,
            "ratio_to_validators_alone": statistics.median(ratios) if ratios else 0.0,
            "ratio_to_ed25519": median / baseline if baseline else 0.0,
        }
    return out
