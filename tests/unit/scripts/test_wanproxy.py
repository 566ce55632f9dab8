"""The delaying proxy: delay applied each way, order kept under load, partitions cut and heal."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from scripts.wanproxy import LinkSpec, WanProxy, control, load_links

REPO = Path(__file__).resolve().parents[3]
DELAY_MS = 60.0
SLACK_S = 1.0
"""Upper tolerance on a delay: generous, the shared machine may pause us; the lower bound is exact."""


async def start_echo() -> tuple[asyncio.Server, int, list[tuple[float, bytes]]]:
    """An echo server that also records when each chunk arrived."""
    arrivals: list[tuple[float, bytes]] = []

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                arrivals.append((time.monotonic(), data))
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass  # the proxy reset us (a healed partition)
        finally:
            writer.close()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], arrivals


async def with_proxy(delay_ms: float, body: Callable[[WanProxy, int, list[tuple[float, bytes]]], Awaitable[None]]) -> None:
    server, port, arrivals = await start_echo()
    proxy = WanProxy([LinkSpec("a>b", "127.0.0.1", 0, "127.0.0.1", port, delay_ms)])
    await proxy.start()
    try:
        await body(proxy, proxy.links["a>b"].port, arrivals)
    finally:
        await proxy.close()
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.05)  # let the echo handlers see their connections go


async def round_trip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> float:
    started = time.monotonic()
    writer.write(data)
    await writer.drain()
    got = await asyncio.wait_for(reader.readexactly(len(data)), 10)
    assert got == data
    return time.monotonic() - started


def test_each_direction_is_delayed_by_the_link_delay() -> None:
    d = DELAY_MS / 1000

    async def body(proxy: WanProxy, port: int, arrivals: list[tuple[float, bytes]]) -> None:
        accepted = time.monotonic()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        first = await round_trip(reader, writer, b"hello")
        # A new connection pays the handshake (one round trip), then the bytes cross each way.
        assert first >= 4 * d - 0.002, first
        assert first < 4 * d + SLACK_S, first
        sent = time.monotonic()
        rtt = await round_trip(reader, writer, b"again")
        assert 2 * d - 0.002 <= rtt < 2 * d + SLACK_S, rtt
        # One way only: the echo server saw "again" one delay after it was sent.
        one_way = arrivals[-1][0] - sent
        assert d - 0.002 <= one_way < d + SLACK_S, one_way
        assert arrivals[0][0] - accepted >= 3 * d - 0.002
        writer.close()

    asyncio.run(with_proxy(DELAY_MS, body))


def test_order_is_kept_for_many_small_writes_and_a_big_one() -> None:
    async def body(proxy: WanProxy, port: int, arrivals: list[tuple[float, bytes]]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        expected = bytearray()
        for i in range(3000):
            chunk = f"{i:06d};".encode()
            expected += chunk
            writer.write(chunk)
            if i % 97 == 0:
                await asyncio.sleep(0.001)  # spread over many reads and release times
        big = os.urandom(12 * 1024 * 1024)  # beyond the queue limit: back-pressure, not loss
        expected += big
        writer.write(big)
        got = bytearray()

        async def read_all() -> None:
            while len(got) < len(expected):
                got.extend(await reader.read(1 << 20))

        await asyncio.wait_for(asyncio.gather(writer.drain(), read_all()), 60)
        assert bytes(got) == bytes(expected)
        status = proxy.status()["a>b"]
        assert status["bytes_up"] == status["bytes_down"] == len(expected)
        writer.close()

    asyncio.run(with_proxy(5.0, body))


def test_eof_goes_through_after_the_data() -> None:
    async def body(proxy: WanProxy, port: int, arrivals: list[tuple[float, bytes]]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"x" * 100_000)
        writer.write_eof()
        data = await asyncio.wait_for(reader.read(), 10)  # up to the echo server's close
        assert data == b"x" * 100_000
        writer.close()
        await asyncio.sleep(0.2)
        assert proxy.status()["a>b"]["open"] == 0

    asyncio.run(with_proxy(20.0, body))


def test_cut_drops_everything_silently_and_heal_resets_then_lets_new_connections_through() -> None:
    d = DELAY_MS / 1000

    async def body(proxy: WanProxy, port: int, arrivals: list[tuple[float, bytes]]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await round_trip(reader, writer, b"before")
        proxy.cut(["a>b"])
        seen = len(arrivals)
        writer.write(b"during")
        await writer.drain()
        # Nothing arrives, nothing comes back, and the connection is not closed either.
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(reader.read(1), 6 * d)
        assert len(arrivals) == seen
        r2, w2 = await asyncio.open_connection("127.0.0.1", port)  # accepted, then silence
        w2.write(b"new during cut")
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(r2.read(1), 6 * d)
        assert len(arrivals) == seen
        proxy.heal(["a>b"])
        # The connections that lived through the cut lost bytes: they are reset.
        for r in (reader, r2):
            with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
                await asyncio.wait_for(r.readexactly(1), 5)
        r3, w3 = await asyncio.open_connection("127.0.0.1", port)
        await round_trip(r3, w3, b"after")
        for w in (writer, w2, w3):
            w.close()

    asyncio.run(with_proxy(DELAY_MS, body))


def test_a_target_that_refuses_closes_the_client_connection() -> None:
    async def go() -> None:
        server, port, _ = await start_echo()
        server.close()
        await server.wait_closed()
        proxy = WanProxy([LinkSpec("gone", "127.0.0.1", 0, "127.0.0.1", port, 10.0)])
        await proxy.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.links["gone"].port)
            writer.write(b"anyone?")
            with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
                await asyncio.wait_for(reader.readexactly(1), 5)
            writer.close()
        finally:
            await proxy.close()

    asyncio.run(go())


def test_unknown_link_names_and_duplicates_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        WanProxy([LinkSpec("x", "127.0.0.1", 0, "127.0.0.1", 1, 0), LinkSpec("x", "127.0.0.1", 0, "127.0.0.1", 2, 0)])
    proxy = WanProxy([LinkSpec("x", "127.0.0.1", 0, "127.0.0.1", 1, 0)])
    assert proxy.handle(b'{"op": "cut", "links": ["y"]}') == {"ok": False, "error": "expected known link names, got ['y']"}
    assert proxy.handle(b'{"op": "explode"}')["ok"] is False
    with pytest.raises(ValueError, match="delay_ms"):
        LinkSpec.from_json({"name": "x", "listen": "127.0.0.1:1", "target": "127.0.0.1:2", "delay_ms": -1})


def test_process_is_controlled_over_its_unix_socket(tmp_path: Path) -> None:
    """The form the netns harness uses: a separate process, cut and healed from outside."""

    async def go() -> None:
        server, port, _ = await start_echo()
        links = tmp_path / "links.json"
        spec = LinkSpec("a>b", "127.0.0.1", 0, "127.0.0.1", port, 30.0)
        links.write_text(f"[{__import__('json').dumps(spec.to_json())}]")
        assert load_links(links) == [spec]
        ctl = tmp_path / "ctl.sock"
        process = subprocess.Popen(
            [sys.executable, "-m", "scripts.wanproxy", "serve", "--links", str(links), "--control", str(ctl)], cwd=REPO,
        )
        try:
            deadline = time.monotonic() + 20
            while not ctl.exists():
                assert process.poll() is None and time.monotonic() < deadline
                await asyncio.sleep(0.05)
            answer = await asyncio.to_thread(control, ctl, "cut", ["a>b"])
            assert answer == {"ok": True}
            status = await asyncio.to_thread(control, ctl, "status")
            assert status["links"]["a>b"]["cut"] is True
            await asyncio.to_thread(control, ctl, "heal")
            status = await asyncio.to_thread(control, ctl, "status")
            assert status["links"]["a>b"]["cut"] is False
            with pytest.raises(RuntimeError, match="refused"):
                await asyncio.to_thread(control, ctl, "cut", ["nope"])
        finally:
            process.terminate()
            assert process.wait(10) == 0
            server.close()
        assert not ctl.exists()

    asyncio.run(go())
