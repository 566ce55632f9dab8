"""Serving an ASGI app from a thread for tests that need a real HTTP server (the CLI
against a stand-in node, the browser against the page, an aborted upload)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


@contextmanager
def serve_app(app: Any, **config: Any) -> Iterator[tuple[str, int]]:
    """Run ``app`` on a free loopback port in a thread; yield (host, port).

    Waits for uvicorn to report itself started, failing if its thread ends first (a
    port it cannot bind, an app that does not load): readiness, with no clock in it.
    """
    settings: dict[str, Any] = {"log_level": "critical", "lifespan": "off", "ws": "none", **config}
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, **settings))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield "127.0.0.1", server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(20)
