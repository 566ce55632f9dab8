"""A real one-validator :class:`node.runtime.Node` (LevelDB in ``tmp_path``) and its app,
called in process: with a single validator a submission needs no peer to be acknowledged."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI

from api.app import create_app
from node.config import NodeConfig
from node.runtime import Node
from scripts.devkit import Alliance
from scripts.devnet import create_devnet

T = TypeVar("T")


@dataclasses.dataclass
class OneNode:
    node: Node
    app: FastAPI
    alliance: Alliance
    zone_id: str

    def call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def go(client: httpx.AsyncClient) -> httpx.Response:
            return await client.request(method, url, **kwargs)

        return self.run(go)

    def run(self, body: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
        """Run ``body(client)`` on a fresh event loop with a client of the app."""

        async def go() -> T:
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as client:
                return await body(client)

        return asyncio.run(go())


def make_one_node(tmp_path: Path, **settings: Any) -> OneNode:
    """A node of a one-zone devnet under ``tmp_path``; ``settings`` override its node.toml."""
    layout = create_devnet(tmp_path / "devnet", 1, 19_700, heartbeat_ms=60_000)
    config = dataclasses.replace(NodeConfig.load(str(layout.zones[0].config)), **settings)
    node = Node(config)
    return OneNode(node, create_app(node), layout.alliance(), layout.zones[0].zone_id)
