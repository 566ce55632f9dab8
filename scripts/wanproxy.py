"""A delaying TCP proxy: the project's own wide-area network, since this kernel has no netem.

Owns links. A :class:`Link` listens on one address and forwards every connection made to
it to one target, delaying the bytes of each direction by the link's one-way delay
(``scripts/geo.py`` gives the figure between two zones). Bytes keep their order: each
direction is one timed queue of chunks whose release times never decrease, flushed by one
``call_at`` timer that writes every chunk that is due at once (no per-byte work, reads
are whole socket buffers; release times fall on 2 ms ticks, so one wake-up of the loop
serves every connection due then). A new connection also pays the TCP handshake: its first bytes
leave no earlier than one round trip after it was accepted.

A link can be **cut** and **healed**. While cut it behaves as a partition does: nothing
passes either way and nobody is told (bytes are dropped, new connections are accepted
and then hear nothing); healing resets the connections that lived through the cut (their
streams lost bytes) and lets new ones through. Back-pressure: a direction holding more
than :data:`QUEUE_HIGH_BYTES`, or whose receiver's socket buffer is full, stops reading
from its sender until it drains.

Run in-process (:class:`WanProxy`) or as a process controlled over a Unix socket, which,
unlike a TCP port, reaches into another network namespace::

    python -m scripts.wanproxy serve --links links.json --control ctl.sock
    python -m scripts.wanproxy ctl ctl.sock cut LINK [LINK ...]     # also: heal, status

``links.json`` is a list of ``{"name", "listen": "HOST:PORT", "target": "HOST:PORT",
"delay_ms"}``. The control protocol is one JSON object per line each way:
``{"op": "cut"|"heal"|"status", "links": [names]}`` -> ``{"ok": true, ...}``.
Only the standard library is imported, so a proxy starts in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import signal
import socket
import sys
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

QUEUE_HIGH_BYTES = 4 * 1024 * 1024
"""A direction holding more than this stops reading from its sender..."""
QUEUE_LOW_BYTES = 1024 * 1024
"""... and reads again once it holds less than this."""
CONNECT_TIMEOUT_S = 10.0
"""How long the proxy tries to reach a link's target before giving the connection up."""
FLUSH_SLACK_S = 0.0005
"""Chunks due within this much of a flush go with it (coalesces writes)."""
TICK_S = 0.002
"""Release times are rounded up to a multiple of this, so that the chunks of many
connections due at about the same time go in one wake-up of the loop (a delay is at
most this much longer than the link's, against wide-area delays of 3 to 150 ms)."""


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """One directed link of the simulated wide-area network."""

    name: str
    """Unique within a proxy, e.g. ``EG-TEDA>CN-QIANHAI``."""
    listen_host: str
    """Where the proxy accepts connections."""
    listen_port: int
    """Its port (0: any free port, see :attr:`Link.port`)."""
    target_host: str
    """Where each accepted connection is forwarded."""
    target_port: int
    """The target's port."""
    delay_ms: float
    """One-way delay applied to each direction."""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "listen": f"{self.listen_host}:{self.listen_port}",
            "target": f"{self.target_host}:{self.target_port}", "delay_ms": self.delay_ms,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> LinkSpec:
        listen_host, _, listen_port = str(raw["listen"]).rpartition(":")
        target_host, _, target_port = str(raw["target"]).rpartition(":")
        delay = float(raw["delay_ms"])
        if delay < 0:
            raise ValueError(f"delay_ms: expected >= 0, got {delay}")
        return cls(str(raw["name"]), listen_host, int(listen_port), target_host, int(target_port), delay)


class _Direction:
    """One direction of one proxied connection: a timed queue of chunks to ``dst``."""

    __slots__ = ("conn", "delay", "ready_at", "queue", "queued", "dst", "timer", "done", "over_high", "dst_full")

    def __init__(self, conn: _Connection, delay: float, ready_at: float) -> None:
        self.conn = conn
        self.delay = delay
        self.ready_at = ready_at
        self.queue: deque[tuple[float, bytes | None]] = deque()
        self.queued = 0
        self.dst: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.done = False
        self.over_high = False
        self.dst_full = False

    def push(self, chunk: bytes | None, now: float) -> None:
        """Queue ``chunk`` (``None``: end of stream) for release ``delay`` from now."""
        self.queue.append((max(now, self.ready_at) + self.delay, chunk))
        if chunk is not None:
            self.queued += len(chunk)
            if self.queued > QUEUE_HIGH_BYTES and not self.over_high:
                self.over_high = True
                self.conn.update_reading()
        if self.timer is None:
            self._arm()

    def _arm(self) -> None:
        if self.queue and self.dst is not None:
            self.timer = self.conn.loop.call_at(math.ceil(self.queue[0][0] / TICK_S) * TICK_S, self.flush)

    def attach(self, dst: asyncio.Transport) -> None:
        self.dst = dst
        if self.timer is None:
            self._arm()

    def flush(self) -> None:
        self.timer = None
        dst = self.dst
        if dst is None:
            return
        if dst.is_closing():  # the receiver went away: what is in flight has nowhere to go
            self.conn.close()
            return
        due = self.conn.loop.time() + FLUSH_SLACK_S
        chunks: list[bytes] = []
        end = False
        while self.queue and self.queue[0][0] <= due:
            _, chunk = self.queue.popleft()
            if chunk is None:
                end = True
                break
            chunks.append(chunk)
        if chunks:
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            self.queued -= len(data)
            self.conn.link.count(self is self.conn.up, len(data))
            dst.write(data)
        if end:
            self.done = True
            self.queue.clear()
            self.queued = 0
            try:
                if dst.can_write_eof():
                    dst.write_eof()
            except OSError:  # reset meanwhile
                self.conn.abort()
                return
            self.conn.on_direction_done()
        if self.over_high and self.queued < QUEUE_LOW_BYTES:
            self.over_high = False
            self.conn.update_reading()
        if not end:
            self._arm()

    def drop(self) -> None:
        """Forget everything queued (the link was cut)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.queue.clear()
        self.queued = 0
        self.over_high = False


class _Side(asyncio.Protocol):
    """The socket of one end of a proxied connection."""

    def __init__(self, conn: _Connection, client: bool) -> None:
        self.conn = conn
        self.client = client
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        with contextlib.suppress(OSError):
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.client:
            self.conn.on_client(self)

    def data_received(self, data: bytes) -> None:
        self.conn.on_data(self.client, data)

    def eof_received(self) -> bool:
        self.conn.on_data(self.client, None)
        return True  # keep the other half open until the peer's end has gone through too

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.on_lost(self.client)

    def pause_writing(self) -> None:
        self.conn.on_receiver_full(self.client, True)

    def resume_writing(self) -> None:
        self.conn.on_receiver_full(self.client, False)


class _Connection:
    """One accepted connection and its upstream twin."""

    def __init__(self, link: Link) -> None:
        self.link = link
        self.loop = asyncio.get_running_loop()
        now = self.loop.time()
        delay = link.spec.delay_ms / 1000.0
        # The handshake: the client's first bytes reach the target after SYN, SYN-ACK and
        # then the bytes themselves have crossed; the answer only ever follows a request.
        self.up = _Direction(self, delay, now + 2 * delay)
        self.down = _Direction(self, delay, now)
        self.client: _Side | None = None
        self.server: _Side | None = None
        self.blackholed = link.cut
        self.closed = False
        self.reading_paused: dict[bool, bool] = {True: False, False: False}
        self.connector: asyncio.Task[None] | None = None

    def on_client(self, side: _Side) -> None:
        self.client = side
        self.link.connections.add(self)
        assert side.transport is not None
        self.down.attach(side.transport)
        if not self.blackholed:
            self.connector = self.loop.create_task(self._connect())

    async def _connect(self) -> None:
        spec = self.link.spec
        try:
            await asyncio.sleep(self.up.delay)  # the SYN crosses before the target hears of us
            _, side = await asyncio.wait_for(
                self.loop.create_connection(lambda: _Side(self, False), spec.target_host, spec.target_port),
                CONNECT_TIMEOUT_S,
            )
        except (TimeoutError, OSError):
            # The refusal (an RST) takes the way back before the client hears of it.
            self.loop.call_later(self.down.delay, self.abort)
            return
        if self.closed or self.blackholed:
            assert side.transport is not None
            side.transport.abort()
            return
        self.server = side
        assert side.transport is not None
        self.up.attach(side.transport)

    def on_data(self, from_client: bool, data: bytes | None) -> None:
        if self.blackholed:
            return
        (self.up if from_client else self.down).push(data, self.loop.time())

    def on_direction_done(self) -> None:
        if self.up.done and self.down.done:
            self.close()

    def on_lost(self, client_side: bool) -> None:
        """A socket closed: what it sent still arrives, in order and late; then the other end closes."""
        if self.closed:
            return
        direction = self.up if client_side else self.down
        if self.blackholed or (client_side and self.server is None) or direction.dst is None:
            self.close()
            return
        if not direction.done:
            if not direction.queue or direction.queue[-1][1] is not None:
                direction.push(None, self.loop.time())
            self.loop.call_at(direction.queue[-1][0] + 0.001, self.close)

    def on_receiver_full(self, receiver_is_client: bool, full: bool) -> None:
        (self.down if receiver_is_client else self.up).dst_full = full
        self.update_reading()

    def update_reading(self) -> None:
        """Pause a sender whose direction is over its limit or whose receiver is full."""
        for from_client, direction, side in ((True, self.up, self.client), (False, self.down, self.server)):
            if side is None or side.transport is None:
                continue
            want_pause = direction.over_high or direction.dst_full
            if want_pause != self.reading_paused[from_client]:
                self.reading_paused[from_client] = want_pause
                with contextlib.suppress(RuntimeError, AttributeError):
                    if want_pause:
                        side.transport.pause_reading()
                    else:
                        side.transport.resume_reading()

    def blackhole(self) -> None:
        """The link was cut: drop what is in flight and everything that comes."""
        self.blackholed = True
        self.up.drop()
        self.down.drop()
        if self.connector is not None:
            self.connector.cancel()

    def close(self) -> None:
        self._finish(abort=False)

    def abort(self) -> None:
        self._finish(abort=True)

    def _finish(self, abort: bool) -> None:
        if self.closed:
            return
        self.closed = True
        self.up.drop()
        self.down.drop()
        if self.connector is not None:
            self.connector.cancel()
        for side in (self.client, self.server):
            if side is not None and side.transport is not None:
                if abort:
                    side.transport.abort()
                else:
                    side.transport.close()
        self.link.connections.discard(self)


class Link:
    """A listening socket whose connections are forwarded to one target with a delay."""

    def __init__(self, spec: LinkSpec) -> None:
        self.spec = spec
        self.cut = False
        self.connections: set[_Connection] = set()
        self.server: asyncio.Server | None = None
        self.accepted = 0
        self.bytes_up = 0
        self.bytes_down = 0

    @property
    def port(self) -> int:
        """The port actually bound (differs from the spec's when that was 0)."""
        assert self.server is not None and self.server.sockets
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        loop = asyncio.get_running_loop()

        def accept() -> _Side:
            self.accepted += 1
            return _Side(_Connection(self), True)

        self.server = await loop.create_server(accept, self.spec.listen_host, self.spec.listen_port, backlog=512)

    def count(self, up: bool, n: int) -> None:
        if up:
            self.bytes_up += n
        else:
            self.bytes_down += n

    def set_cut(self, cut: bool) -> None:
        if cut == self.cut:
            return
        self.cut = cut
        if cut:
            for conn in list(self.connections):
                conn.blackhole()
        else:
            for conn in list(self.connections):
                if conn.blackholed:
                    conn.abort()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections):
            conn.abort()
        if self.server is not None:
            await self.server.wait_closed()

    def status(self) -> dict[str, Any]:
        return {
            "cut": self.cut, "delay_ms": self.spec.delay_ms, "open": len(self.connections),
            "accepted": self.accepted, "bytes_up": self.bytes_up, "bytes_down": self.bytes_down,
        }


class WanProxy:
    """A set of links served by one event loop, with the cut/heal/status operations."""

    def __init__(self, specs: Iterable[LinkSpec]) -> None:
        self.links: dict[str, Link] = {}
        for spec in specs:
            if spec.name in self.links:
                raise ValueError(f"link names: expected unique, got {spec.name!r} twice")
            self.links[spec.name] = Link(spec)
        self._control: asyncio.Server | None = None

    async def start(self) -> None:
        for link in self.links.values():
            await link.start()

    def _named(self, names: Iterable[str] | None) -> list[Link]:
        if names is None:
            return list(self.links.values())
        unknown = [n for n in names if n not in self.links]
        if unknown:
            raise ValueError(f"expected known link names, got {unknown}")
        return [self.links[n] for n in names]

    def cut(self, names: Iterable[str] | None = None) -> None:
        """Partition: the named links (all when ``None``) pass nothing, silently."""
        for link in self._named(names):
            link.set_cut(True)

    def heal(self, names: Iterable[str] | None = None) -> None:
        """End the partition on the named links (all when ``None``)."""
        for link in self._named(names):
            link.set_cut(False)

    def status(self) -> dict[str, dict[str, Any]]:
        return {name: link.status() for name, link in self.links.items()}

    async def serve_control(self, path: Path) -> None:
        """Answer control requests on a Unix socket at ``path``."""
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self._control = await asyncio.start_unix_server(self._on_control, str(path))

    async def _on_control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                writer.write(json.dumps(self.handle(line)).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def handle(self, line: bytes) -> dict[str, Any]:
        """One control request (a JSON line) to its answer."""
        try:
            request = json.loads(line)
            op = request.get("op")
            names = request.get("links")
            if op == "cut":
                self.cut(names)
                return {"ok": True}
            if op == "heal":
                self.heal(names)
                return {"ok": True}
            if op == "status":
                return {"ok": True, "links": self.status()}
            return {"ok": False, "error": f"expected op cut, heal or status, got {op!r}"}
        except (ValueError, AttributeError, TypeError) as exc:
            return {"ok": False, "error": str(exc)}

    async def close(self) -> None:
        if self._control is not None:
            self._control.close()
        for link in self.links.values():
            await link.close()


def control(path: Path, op: str, links: Sequence[str] | None = None, timeout: float = 10.0) -> dict[str, Any]:
    """Send one control request to the proxy serving ``path``; raise if it refuses it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        request: dict[str, Any] = {"op": op}
        if links is not None:
            request["links"] = list(links)
        sock.sendall(json.dumps(request).encode() + b"\n")
        buffer = b""
        while not buffer.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            buffer += chunk
    answer: dict[str, Any] = json.loads(buffer)
    if not answer.get("ok"):
        raise RuntimeError(f"wanproxy {path}: {op} refused: {answer.get('error')}")
    return answer


def load_links(path: Path) -> list[LinkSpec]:
    return [LinkSpec.from_json(raw) for raw in json.loads(path.read_text(encoding="utf-8"))]


async def serve(specs: list[LinkSpec], control_path: Path) -> None:
    """Run the links until SIGTERM or SIGINT."""
    proxy = WanProxy(specs)
    await proxy.start()
    await proxy.serve_control(control_path)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    await stopped.wait()
    await proxy.close()
    with contextlib.suppress(FileNotFoundError):
        control_path.unlink()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.wanproxy", description="delaying TCP proxy")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="serve the links of a links.json")
    run.add_argument("--links", type=Path, required=True)
    run.add_argument("--control", type=Path, required=True, help="Unix socket for cut/heal/status")
    ctl = commands.add_parser("ctl", help="send cut, heal or status to a running proxy")
    ctl.add_argument("socket", type=Path)
    ctl.add_argument("op", choices=("cut", "heal", "status"))
    ctl.add_argument("links", nargs="*", help="link names (default: every link)")
    args = parser.parse_args(argv)
    if args.command == "serve":
        asyncio.run(serve(load_links(args.links), args.control))
        return 0
    answer = control(args.socket, args.op, args.links or None)
    json.dump(answer, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
