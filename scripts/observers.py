"""Observers beside a devnet: configs for a :class:`scripts.devnet.DevnetLayout` and their processes.

``create_observers`` writes one ``node.toml`` with ``role = "observer"`` per observer
under ``<devnet>/observers/``, each following every validator of the layout with the
devnet's auditor key; ``Observers`` starts them as ``zoneledger node run`` processes on
consecutive ports and stops them. ``zoneledger bench observers`` and the multi-process
tests use both (``docs/decisions/0016-observer-nodes.md``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from node.config import ObserverConfig, render_observer_config
from scripts.devnet import DevnetLayout, stop_process

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class ObserverFiles:
    """Where one observer's config and data live, and where it listens."""

    node_id: str
    url: str
    config: Path
    data_dir: Path

    @property
    def log(self) -> Path:
        return self.config.parent / "node.log"


def create_observers(
    layout: DevnetLayout, count: int, port: int, *, member_key: Path | None = None, host: str = "127.0.0.1",
) -> list[ObserverFiles]:
    """Configs for ``count`` observers of ``layout`` on ports ``port``, ``port + 1``, ...

    Each follows every validator, in the layout's order (an observer starts asking at an
    offset of its own); blocks are fetched with ``member_key``, the auditor's by default.
    """
    if layout.ca is not None:
        raise ValueError("observers beside a TLS devnet are not supported here: the layout's CA key is not kept")
    root = layout.root / "observers"
    files = []
    for i in range(count):
        node_id = f"observer-{i + 1}"
        directory = root / node_id
        directory.mkdir(parents=True, exist_ok=True)
        config = ObserverConfig(
            data_dir=directory / "data", genesis=layout.genesis, member_key=member_key or layout.auditor_key,
            follow=tuple(z.url for z in layout.zones), node_id=node_id, listen_host=host, listen_port=port + i,
        )
        path = directory / "node.toml"
        path.write_text(render_observer_config(config), encoding="utf-8")
        files.append(ObserverFiles(node_id, f"http://{host}:{port + i}", path, config.data_dir))
    (root / "observers.json").write_text(
        json.dumps([{"node_id": f.node_id, "url": f.url, "config": str(f.config)} for f in files], indent=2) + "\n",
        encoding="utf-8",
    )
    return files


def _die_with_parent() -> None:
    """Linux: the observer gets SIGTERM if the process that started it dies first."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Observers:
    """Running observer processes."""

    def __init__(self, files: list[ObserverFiles]) -> None:
        self.files = {f.node_id: f for f in files}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start_one(self, node_id: str) -> None:
        files = self.files[node_id]
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        with open(files.log, "ab") as log_file:
            self.processes[node_id] = subprocess.Popen(
                [sys.executable, "-m", "scripts.cli", "node", "run", "--config", str(files.config)],
                stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=str(REPO_ROOT), preexec_fn=_die_with_parent,
            )

    def start(self) -> None:
        for node_id in self.files:
            self.start_one(node_id)

    def stop_one(self, node_id: str, timeout: float = 10.0) -> None:
        process = self.processes.pop(node_id, None)
        if process is not None:
            stop_process(process, timeout)

    def stop(self) -> None:
        for node_id in list(self.processes):
            self.stop_one(node_id)

    def wait_height(self, height: int, timeout: float = 60.0, only: list[str] | None = None) -> None:
        """Until each running observer (or those in ``only``) serves ``height`` or more."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            for node_id in only or list(self.processes):
                files = self.files[node_id]
                while True:
                    process = self.processes.get(node_id)
                    if process is not None and process.poll() is not None:
                        tail = files.log.read_text(errors="replace")[-2000:]
                        raise RuntimeError(f"observer {node_id} exited with {process.returncode}:\n{tail}")
                    try:
                        answer = client.get(f"{files.url}/healthz")
                        if answer.status_code == 200 and answer.json().get("height", -1) >= height:
                            break
                    except (httpx.HTTPError, ValueError):
                        pass
                    if time.monotonic() > deadline:
                        tail = files.log.read_text(errors="replace")[-2000:] if files.log.exists() else ""
                        raise RuntimeError(f"observer {node_id} did not reach height {height} within {timeout} s:\n{tail}")
                    time.sleep(0.1)
