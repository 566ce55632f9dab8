"""The running ``zoneledger devnet``: it watches its validators, reports a death and
keeps the others running, and stops, starts, kills or restarts a zone on request.

Requests come as command lines (``stop DJ-DIFTZ``, ``start DJ-DIFTZ``, ``status``,
``help``, ``quit``) typed on the devnet's terminal or piped into its stdin, or from
another shell through ``zoneledger devnet ctl ACTION [ZONE ...] --data-dir D``, which
talks to the devnet over a UNIX socket in its data directory (:func:`control_socket_path`).

The pieces that decide something (how an exit code reads, how a command line parses,
how the status reads, how many validators start at once, how long startup may take)
are pure functions at the top, tested on their own. Every change to a validator
process happens on the devnet's main thread; the terminal and socket threads only
queue commands and wait for their answer.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import signal
import socket
import socketserver
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from scripts.devnet import Devnet

# ---------------------------------------------------------------------------------------
# Pure pieces


def describe_exit(returncode: int) -> str:
    """How a validator process ended, in words: ``killed by SIGKILL``, ``exited with code 1``."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    if returncode == 0:
        return "exited normally (code 0)"
    return f"exited with code {returncode}"


def log_tail(path: Path, lines: int = 5, max_bytes: int = 16_384) -> list[str]:
    """The last ``lines`` non-blank lines of a log file (none if it cannot be read)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    kept = [line.rstrip() for line in text.splitlines() if line.strip()]
    return kept[-lines:] if lines > 0 else []


def startup_deadline(zones: int) -> float:
    """Seconds the devnet waits for ``zones`` validators to answer before it gives up.

    Every validator imports its libraries and opens its peer links at the same time on
    the machine's cores, so the wait grows with the count: 70 s at 4 zones, 205 s at 58.
    Measured on the shared 2-core machine, all started at once: 4 zones answered in
    12 s, 20 in 43 s, 58 in 100 s (the first of them after 71 s), with other work running.
    """
    return 60.0 + 2.5 * max(1, zones)


def admit_next(waiting: Sequence[str], starting: int, window: int) -> list[str]:
    """Which waiting zones to start now, when ``starting`` have been started but do not answer yet.

    At most ``window`` validators are between "started" and "answering" at once (a
    sliding window over the zones in order); ``window`` <= 0 starts everyone at once.
    """
    if window <= 0:
        return list(waiting)
    room = max(0, window - starting)
    return list(waiting[:room])


ACTIONS: dict[str, str] = {
    "status": "heights of every zone and who is down",
    "stop": "stop ZONE... gracefully (SIGINT, SIGKILL after 10 s)",
    "start": "start ZONE... again; it syncs from its peers",
    "restart": "stop, then start ZONE...",
    "kill": "SIGKILL ZONE... (a crash, to watch the others go on)",
    "help": "this list",
    "quit": "stop every validator and the devnet",
}
ZONE_ACTIONS = frozenset({"stop", "start", "restart", "kill"})


class CommandError(ValueError):
    """A command line the devnet cannot act on; the message is one line for the user."""


@dataclass(frozen=True)
class Command:
    action: str
    zones: tuple[str, ...] = ()


def resolve_zone(token: str, zones: Sequence[str]) -> str:
    """A zone named exactly (any case) or by a prefix that names only one zone."""
    wanted = token.upper()
    for zone in zones:
        if zone.upper() == wanted:
            return zone
    matches = [zone for zone in zones if zone.upper().startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        shown = ", ".join(matches[:5]) + (" ..." if len(matches) > 5 else "")
        raise CommandError(f"{token!r} names {len(matches)} zones ({shown}): give more of the name")
    raise CommandError(f"no zone {token!r} in this devnet (zones: {zones[0]} ... {zones[-1]}; 'status' lists them)")


def parse_command(line: str, zones: Sequence[str]) -> Command | None:
    """A command line as typed (``stop dj-diftz``); ``None`` for a blank line."""
    words = line.split()
    if not words:
        return None
    action = words[0].lower()
    if action not in ACTIONS:
        raise CommandError(f"unknown command {words[0]!r}: expected one of {', '.join(ACTIONS)}")
    if action in ZONE_ACTIONS:
        if len(words) < 2:
            raise CommandError(f"{action}: name the zone, e.g. '{action} {zones[0] if zones else 'EG-TEDA'}'")
        resolved = tuple(dict.fromkeys(resolve_zone(word, zones) for word in words[1:]))
        return Command(action, resolved)
    if len(words) > 1:
        raise CommandError(f"{action} takes no zone, got {' '.join(words[1:])!r}")
    return Command(action)


def help_lines() -> list[str]:
    return [f"  {name:<8} {text}" for name, text in ACTIONS.items()]


@dataclass(frozen=True)
class ZoneStatus:
    """One zone as the status shows it."""

    zone_id: str
    state: str
    """``up``, ``starting``, ``stopping``, ``stopped`` or ``down``."""
    height: int | None = None
    """Committed height from ``/v1/status``; ``None`` when the zone did not answer."""
    detail: str = ""
    pid: int | None = None


def format_status_line(rows: Sequence[ZoneStatus]) -> str:
    """One compact line for any number of zones: who answers, at which heights, who is not up."""
    total = len(rows)
    answering = [r for r in rows if r.state == "up" and r.height is not None]
    parts = [f"{len(answering)}/{total} up"]
    if answering:
        counts = Counter(r.height for r in answering)
        groups = sorted(counts.items(), key=lambda item: -(item[0] or 0))
        if len(groups) == 1:
            parts.append(f"height {groups[0][0]}")
        else:
            shown = ", ".join(f"{height} on {count}" for height, count in groups[:4])
            parts.append("heights " + shown + (f", {len(groups) - 4} more" if len(groups) > 4 else ""))
    silent = [r.zone_id for r in rows if r.state == "up" and r.height is None]
    by_state: dict[str, list[str]] = {}
    for r in rows:
        if r.state != "up":
            by_state.setdefault(r.state, []).append(r.zone_id + (f" ({r.detail})" if r.detail and r.state == "down" else ""))
    if silent:
        by_state["not answering"] = silent
    for state in ("down", "stopped", "stopping", "starting", "not answering"):
        names = by_state.get(state)
        if names:
            shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
            parts.append(f"{state}: {shown}")
    return "; ".join(parts)


def format_status_table(rows: Sequence[ZoneStatus]) -> list[str]:
    """One line per zone: zone, state, height, pid, detail."""
    lines = [f"  {'zone':<15} {'state':<9} {'height':>6}  {'pid':>7}  detail"]
    for r in rows:
        height = "-" if r.height is None else str(r.height)
        pid = "-" if r.pid is None else str(r.pid)
        lines.append(f"  {r.zone_id:<15} {r.state:<9} {height:>6}  {pid:>7}  {r.detail}".rstrip())
    return lines


def control_socket_path(root: Path) -> Path:
    """Where the running devnet of data directory ``root`` listens for ``devnet ctl``.

    ``root/devnet.sock``, unless that path is longer than a UNIX socket name may be;
    then a name in the temporary directory derived from ``root``.
    """
    root = root.resolve()
    path = root / "devnet.sock"
    if len(os.fsencode(str(path))) < 100:
        return path
    digest = hashlib.sha256(os.fsencode(str(root))).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"zoneledger-devnet-{digest}.sock"


def restart_hint(zone_id: str, root: Path) -> str:
    return f"zoneledger devnet ctl start {zone_id} --data-dir {root}   (or type: start {zone_id})"


# ---------------------------------------------------------------------------------------
# The running devnet

Reply = Callable[[bool, list[str]], None]
"""Answers a command: whether it did what was asked, and the lines to show."""

STOP_GRACE_S = 10.0
PROBE_EVERY_S = 0.5
CATCH_UP_EVERY_S = 1.0
STATUS_PROBE_TIMEOUT_S = 5.0


@dataclass
class _Zone:
    zone_id: str
    state: str = "starting"
    detail: str = ""
    since: float = field(default_factory=time.monotonic)
    deadline: float | None = None
    then_start: bool = False
    requested: bool = False
    """The current stop or kill was asked for (not a death)."""
    catch_up_to: int | None = None
    next_probe: float = 0.0
    probe: Future[Any] | None = None
    """A probe of this zone running beside the loop (its answer is read on a later tick)."""
    waiters: list[Reply] = field(default_factory=list)


class Supervisor:
    """Watches a started :class:`Devnet` and acts on commands until asked to stop."""

    def __init__(
        self, devnet: Devnet, say: Callable[[str], None], *, status_every: float = 0.0, zone_deadline: float | None = None,
    ) -> None:
        self.devnet = devnet
        self.layout = devnet.layout
        self.say = say
        self.status_every = status_every
        self.zone_deadline = zone_deadline if zone_deadline is not None else startup_deadline(1)
        self.zone_ids = [z.zone_id for z in self.layout.zones]
        self.zones = {z: _Zone(z, state="up" if z in devnet.processes else "stopped") for z in self.zone_ids}
        self.commands: queue.Queue[tuple[Command, Reply]] = queue.Queue()
        self.stop_reason: str | None = None
        self._client = httpx.Client(timeout=STATUS_PROBE_TIMEOUT_S, verify=self.layout.http_verify())
        # HTTP never runs on the loop: an overloaded validator may take seconds to answer.
        self._probes = ThreadPoolExecutor(8, thread_name_prefix="devnet-probe")
        self._heights_pool = ThreadPoolExecutor(32, thread_name_prefix="devnet-height")
        self._closing = False
        self._server: socketserver.UnixStreamServer | None = None
        self._socket_path: Path | None = None

    # -- inputs ------------------------------------------------------------------------

    def submit(self, line: str, reply: Reply) -> None:
        """Parse ``line`` and queue it for the main loop; a bad line is answered at once."""
        if self._closing:
            reply(False, [f"error: the devnet is stopping ({self.stop_reason})"])
            return
        try:
            command = parse_command(line, self.zone_ids)
        except CommandError as exc:
            reply(False, [f"error: {exc}"])
            return
        if command is None:
            reply(True, [])
            return
        self.commands.put((command, reply))

    def serve_control_socket(self) -> Path:
        """Listen for ``devnet ctl`` on :func:`control_socket_path`; returns the path."""
        path = control_socket_path(self.layout.root)
        if path.exists():
            with contextlib.suppress(OSError):
                probe = socket.socket(socket.AF_UNIX)
                probe.settimeout(1.0)
                try:
                    probe.connect(str(path))
                    raise RuntimeError(f"another devnet is already running in {self.layout.root} (control socket {path})")
                except (ConnectionRefusedError, FileNotFoundError):
                    pass
                finally:
                    probe.close()
            path.unlink(missing_ok=True)
        supervisor = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                line = self.rfile.readline(4096).decode("utf-8", errors="replace").strip()
                done = threading.Event()
                answer: dict[str, Any] = {"ok": False, "lines": ["error: the devnet is stopping"]}

                def reply(ok: bool, lines: list[str]) -> None:
                    answer.update(ok=ok, lines=lines)
                    done.set()

                supervisor.submit(line, reply)
                done.wait(supervisor.zone_deadline + 2 * STOP_GRACE_S)
                with contextlib.suppress(OSError):
                    self.wfile.write(json.dumps(answer).encode() + b"\n")

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self._server = Server(str(path), Handler)
        os.chmod(path, 0o600)
        self._socket_path = path
        threading.Thread(target=self._server.serve_forever, name="devnet-ctl", daemon=True).start()
        return path

    def read_stdin(self) -> None:
        """Read command lines from stdin on a thread (a terminal or a pipe); EOF ends only the reading."""
        stream = sys.stdin
        if stream is None or stream.closed:
            return
        # In the background of an interactive shell a read would stop the whole devnet
        # (SIGTTIN); ignored, the read fails instead and is retried until it is foreground.
        with contextlib.suppress(ValueError, OSError):
            signal.signal(signal.SIGTTIN, signal.SIG_IGN)

        def loop() -> None:
            while True:
                try:
                    line = stream.readline()
                except OSError:
                    time.sleep(1.0)
                    continue
                except ValueError:
                    return
                if not line:
                    return
                # What a zone command or quit does is said as it happens; only a refusal needs echoing.
                words = line.split()
                quiet = bool(words) and (words[0].lower() in ZONE_ACTIONS or words[0].lower() == "quit")
                self.submit(line, self._say_errors if quiet else self._say_lines)

        threading.Thread(target=loop, name="devnet-stdin", daemon=True).start()

    def _say_lines(self, ok: bool, lines: list[str]) -> None:
        for text in lines:
            self.say(text)

    def _say_errors(self, ok: bool, lines: list[str]) -> None:
        for text in lines:
            if text.startswith("error: "):
                self.say(text)

    def close(self) -> None:
        self._closing = True
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._socket_path is not None:
            self._socket_path.unlink(missing_ok=True)
            self._socket_path = None
        self._probes.shutdown(wait=True, cancel_futures=True)
        self._heights_pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()

    # -- the loop ----------------------------------------------------------------------

    def run(self, should_stop: Callable[[], str | None]) -> str:
        """Supervise until ``should_stop`` gives a reason (or ``quit`` does); return the reason."""
        next_status = time.monotonic() + self.status_every if self.status_every > 0 else None
        while self.stop_reason is None:
            reason = should_stop()
            if reason is not None:
                self.stop_reason = reason
                break
            try:
                command, reply = self.commands.get(timeout=0.2)
            except queue.Empty:
                pass
            else:
                self.execute(command, reply)
            self.tick()
            if next_status is not None and time.monotonic() >= next_status:
                self._status_beside(lambda ok, lines: self.say(lines[0]), table=False)
                next_status = time.monotonic() + self.status_every
        self._closing = True
        # Anyone still waiting for an answer hears why there will be none.
        for zone in self.zones.values():
            for reply in zone.waiters:
                reply(False, [f"the devnet is stopping ({self.stop_reason})"])
            zone.waiters.clear()
        while True:
            try:
                _, reply = self.commands.get_nowait()
            except queue.Empty:
                break
            reply(False, [f"the devnet is stopping ({self.stop_reason})"])
        return self.stop_reason

    def execute(self, command: Command, reply: Reply) -> None:
        if command.action == "help":
            reply(True, ["commands (type them here, or: zoneledger devnet ctl ACTION [ZONE ...] --data-dir DIR):"]
                  + help_lines())
        elif command.action == "status":
            self._status_beside(reply, table=True)
        elif command.action == "quit":
            self.stop_reason = "quit was requested"
            reply(True, ["stopping the devnet"])
        else:
            self._zone_command(command, reply)

    def _zone_command(self, command: Command, reply: Reply) -> None:
        results: dict[str, tuple[bool, list[str]]] = {}
        expected = len(command.zones)

        def part(zone_id: str) -> Reply:
            def done(ok: bool, lines: list[str]) -> None:
                results[zone_id] = (ok, lines)
                if len(results) == expected:
                    reply(all(ok for ok, _ in results.values()), [line for z in command.zones for line in results[z][1]])
            return done

        for zone_id in command.zones:
            getattr(self, f"_do_{command.action}")(self.zones[zone_id], part(zone_id))

    def _do_start(self, zone: _Zone, reply: Reply) -> None:
        if zone.state in ("up", "starting"):
            reply(True, [f"{zone.zone_id} is already {zone.state}"])
            return
        if zone.state == "stopping":
            zone.then_start = True
            zone.waiters.append(reply)
            return
        self._spawn(zone)
        zone.waiters.append(reply)

    def _do_stop(self, zone: _Zone, reply: Reply) -> None:
        if zone.state in ("stopped", "down"):
            reply(True, [f"{zone.zone_id} is not running ({zone.state}{': ' + zone.detail if zone.detail else ''})"])
            return
        zone.then_start = False
        zone.waiters.append(reply)
        if zone.state != "stopping":
            process = self.devnet.processes[zone.zone_id]
            process.send_signal(signal.SIGINT)
            zone.state, zone.requested, zone.since = "stopping", True, time.monotonic()
            zone.deadline = zone.since + STOP_GRACE_S
            self.say(f"stopping {zone.zone_id} (pid {process.pid}) on request ...")

    def _do_restart(self, zone: _Zone, reply: Reply) -> None:
        if zone.state in ("stopped", "down"):
            self._do_start(zone, reply)
            return
        self._do_stop(zone, lambda ok, lines: None)
        zone.then_start = True
        zone.waiters.append(reply)

    def _do_kill(self, zone: _Zone, reply: Reply) -> None:
        if zone.state in ("stopped", "down"):
            reply(True, [f"{zone.zone_id} is not running ({zone.state})"])
            return
        process = self.devnet.processes[zone.zone_id]
        process.kill()
        zone.state, zone.requested, zone.then_start, zone.since = "stopping", True, False, time.monotonic()
        zone.waiters.append(reply)
        self.say(f"killing {zone.zone_id} (pid {process.pid}) with SIGKILL on request")

    def _spawn(self, zone: _Zone) -> None:
        self.devnet.start_zone(zone.zone_id)
        zone.state, zone.detail, zone.requested, zone.then_start = "starting", "", False, False
        zone.probe, zone.catch_up_to = None, None  # an answer of the previous process means nothing now
        zone.since = time.monotonic()
        zone.deadline = zone.since + self.zone_deadline
        zone.next_probe = zone.since + PROBE_EVERY_S
        self.say(f"starting {zone.zone_id} (pid {self.devnet.processes[zone.zone_id].pid}) ...")

    def _finish(self, zone: _Zone, ok: bool, lines: list[str]) -> None:
        waiters, zone.waiters = zone.waiters, []
        for reply in waiters:
            reply(ok, lines)

    def tick(self) -> None:
        """Notice exits, escalate slow stops, and follow starting and catching-up zones."""
        now = time.monotonic()
        for zone in self.zones.values():
            process = self.devnet.processes.get(zone.zone_id)
            if process is not None and process.poll() is not None:
                self.devnet.processes.pop(zone.zone_id, None)
                self._exited(zone, process.returncode, process.pid, now)
                continue
            if process is None:
                continue
            if zone.state == "stopping" and zone.deadline is not None and now > zone.deadline:
                self.say(f"{zone.zone_id} did not stop within {STOP_GRACE_S:.0f} s: SIGKILL")
                process.kill()
                zone.deadline = None
            elif zone.probe is not None:
                if zone.probe.done():
                    probe, zone.probe = zone.probe, None
                    if zone.state == "starting":
                        self._started(zone, now, probe.result())
                    elif zone.catch_up_to is not None:
                        self._caught_up(zone, now, probe.result())
            elif zone.state == "starting" and now >= zone.next_probe:
                zone.next_probe = now + PROBE_EVERY_S
                zone.probe = self._probes.submit(self._probe_up, zone.zone_id)
            elif zone.catch_up_to is not None and now >= zone.next_probe:
                zone.next_probe = now + CATCH_UP_EVERY_S
                zone.probe = self._probes.submit(self._height, zone.zone_id)

    def _exited(self, zone: _Zone, returncode: int, pid: int, now: float) -> None:
        how = describe_exit(returncode)
        log = self._log(zone.zone_id)
        if zone.requested:
            zone.state, zone.detail, zone.requested = "stopped", f"{how} on request", False
            took = now - zone.since
            self.say(f"{zone.zone_id} stopped: {how} after {took:.1f} s")
            if zone.then_start:
                self._spawn(zone)
                return
            self._finish(zone, True, [f"{zone.zone_id} stopped: {how} after {took:.1f} s"])
            return
        was = zone.state
        zone.state, zone.detail, zone.catch_up_to, zone.probe = "down", how, None, None
        tail = log_tail(log)
        self.say(f"validator {zone.zone_id} (pid {pid}) died: {how}; the other validators keep running")
        self.say(f"  last lines of {log}:")
        for line in tail or ["(empty)"]:
            self.say(f"    {line}")
        self.say(f"  restart it: {restart_hint(zone.zone_id, self.layout.root)}")
        self._status_beside(lambda ok, lines: self.say(lines[0]), table=False)
        if was == "starting":
            self._finish(zone, False, [f"{zone.zone_id} failed to start: {how} (log: {log})"])
        else:
            self._finish(zone, False, [f"{zone.zone_id} died: {how} (log: {log})"])

    def _probe_up(self, zone_id: str) -> tuple[bool, int | None, int]:
        """(answers /healthz, its height, the highest height of up to three other running zones)."""
        try:
            if self._client.get(f"{self._url(zone_id)}/healthz").status_code != 200:
                return False, None, 0
        except httpx.HTTPError:
            return False, None, 0
        others = [z for z in self.zone_ids if z != zone_id and self.zones[z].state == "up"][:3]
        heights = [h for h in (self._height(z) for z in others) if h is not None]
        return True, self._height(zone_id), max(heights, default=0)

    def _started(self, zone: _Zone, now: float, probed: tuple[bool, int | None, int]) -> None:
        answered, height, top = probed
        if not answered:
            if zone.deadline is not None and now > zone.deadline:
                zone.deadline = None
                message = (f"{zone.zone_id} does not answer {now - zone.since:.0f} s after it was started; "
                           f"still waiting (log: {self._log(zone.zone_id)})")
                self.say(message)
                self._finish(zone, False, [message])
            return
        zone.state = "up"
        message = f"{zone.zone_id} is up again after {now - zone.since:.1f} s at height {height}"
        if height is not None and top > height:
            zone.catch_up_to = top
            zone.next_probe = now + CATCH_UP_EVERY_S
            message += f"; the others are at {top}: it syncs from its peers"
        self.say(message)
        self._finish(zone, True, [message])

    def _caught_up(self, zone: _Zone, now: float, height: int | None) -> None:
        if height is not None and zone.catch_up_to is not None and height >= zone.catch_up_to:
            self.say(f"{zone.zone_id} caught up: height {height} ({now - zone.since:.1f} s after it was started)")
            zone.catch_up_to = None

    # -- status ------------------------------------------------------------------------

    def _url(self, zone_id: str) -> str:
        return next(z.url for z in self.layout.zones if z.zone_id == zone_id)

    def _log(self, zone_id: str) -> Path:
        return next(z.config.parent / "node.log" for z in self.layout.zones if z.zone_id == zone_id)

    def _height(self, zone_id: str) -> int | None:
        try:
            response = self._client.get(f"{self._url(zone_id)}/v1/status")
            height = response.json().get("height") if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None
        return height if isinstance(height, int) else None

    def _heights(self, zone_ids: Sequence[str]) -> list[int | None]:
        return list(self._heights_pool.map(self._height, zone_ids))

    def _snapshot(self) -> list[ZoneStatus]:
        """Every zone's state as the loop knows it (no height yet)."""
        rows = []
        for zone_id in self.zone_ids:
            zone = self.zones[zone_id]
            process = self.devnet.processes.get(zone_id)
            detail = f"catching up to {zone.catch_up_to}" if zone.catch_up_to is not None else zone.detail
            rows.append(ZoneStatus(zone_id, zone.state, None, detail, process.pid if process else None))
        return rows

    def _with_heights(self, rows: list[ZoneStatus]) -> list[ZoneStatus]:
        """``rows`` with the height each running zone reports (asked of them all at once)."""
        running = [r.zone_id for r in rows if r.state == "up"]
        heights = dict(zip(running, self._heights(running), strict=True))
        return [ZoneStatus(r.zone_id, r.state, heights.get(r.zone_id), r.detail, r.pid) for r in rows]

    def _status_beside(self, reply: Reply, table: bool) -> None:
        """Answer with the status, its heights fetched on a thread while the loop goes on."""
        rows = self._snapshot()

        def work() -> None:
            try:
                full = self._with_heights(rows)
            except RuntimeError:  # the pool is shut down: the devnet is stopping
                full = rows
            lines = ["status: " + format_status_line(full)]
            reply(True, lines + format_status_table(full) if table else lines)

        threading.Thread(target=work, name="devnet-status", daemon=True).start()

    def statuses(self) -> list[ZoneStatus]:
        """Every zone's state, with the height each running zone reports."""
        return self._with_heights(self._snapshot())


# ---------------------------------------------------------------------------------------
# The other side: ``zoneledger devnet ctl``


def send_command(root: Path, line: str, timeout: float) -> tuple[bool, list[str]]:
    """Send one command line to the devnet running in ``root``; its answer."""
    from scripts.usage import CliError

    path = control_socket_path(root)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise CliError(
                f"devnet ctl: no devnet is running in {root} (nothing listens on {path}); "
                f"start one with: zoneledger devnet --data-dir {root}"
            ) from exc
        sock.sendall(line.encode() + b"\n")
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except TimeoutError as exc:
            raise CliError(f"devnet ctl: no answer from the devnet in {root} within {timeout:.0f} s") from exc
    try:
        answer = json.loads(b"".join(chunks))
        return bool(answer["ok"]), [str(text) for text in answer["lines"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise CliError(f"devnet ctl: the devnet in {root} closed the connection without an answer") from exc
