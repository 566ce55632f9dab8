"""Browser tests: Debian's Chromium driven by Playwright, against a real devnet.

Fixtures: one headless Chromium for the session; one 4-zone devnet with the example
documents (issued, one amended with its PDF, one revoked); a helper that runs a small
ASGI app (a page host, a doctored node) on a loopback port in a thread. Screenshots go
to ``test-output/screenshots/`` at the repository root (gitignored).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from netutil import make_layout  # noqa: E402
from serving import serve_app  # noqa: E402

from scripts.devnet import Devnet, DevnetLayout, submit_examples  # noqa: E402

CHROMIUM = os.environ.get("ZONELEDGER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOTS = REPO / "test-output" / "screenshots"


def _require(condition: bool, reason: str) -> None:
    """Missing browser tooling fails on CI (where .ci/run installs it) and skips elsewhere."""
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Module scope, not session: Playwright's sync API keeps an event loop running in
    # this thread while it lives, and every later test that calls asyncio.run() would
    # then fail with "cannot be called from a running event loop".
    _require(Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is not None,
             f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _require(False, "the playwright package is not installed (pip install -e '.[test]')")
        raise
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots of the verifier page: {SCREENSHOTS}")
    return SCREENSHOTS


@pytest.fixture(scope="session")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevnetLayout]:
    layout = make_layout(tmp_path_factory.mktemp("browser"), heartbeat_ms=1000)
    net = Devnet(layout)
    try:
        net.start()
        net.wait_healthy()
        submit_examples(layout, lambda text: None)
        yield layout
    finally:
        net.stop()


@contextmanager
def serve_url(app: Any) -> Iterator[str]:
    """Run an ASGI app on a free loopback port in a thread; yield its base URL."""
    with serve_app(app, log_level="warning", ws="auto") as (host, port):
        yield f"http://{host}:{port}"


@pytest.fixture(scope="session")
def app_server() -> Callable[[Any], Any]:
    return serve_url
