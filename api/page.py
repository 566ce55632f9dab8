"""The web verifier page: ``/`` (index.html), ``/static/...`` and ``/config.json``.

The page itself (``api/static/``) is static: plain ES modules and two vendored libraries,
so it works the same from any static host. A node serves it with its own configuration:
``/config.json`` names the chain, pins its genesis hash and carries the genesis file, so
the page verifies proof bundles against genesis in the browser and trusts the node for
nothing else. ``node`` is empty: the page talks to the origin that served it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from ledger.encoding import bounded_repr
from ledger.errors import NotFoundError
from node.runtime import Node

STATIC_DIR = Path(__file__).resolve().parent / "static"

# Explicit types: module scripts need a JavaScript type, whatever the host's mime.types says.
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
}
# Browsers revalidate the page's files every time, so a node upgrade is seen at once.
NO_CACHE = {"Cache-Control": "no-cache"}


def compute_page_config(node: Node) -> dict[str, Any]:
    """What the page needs to verify on its own: the chain, its genesis and its pinned hash."""
    genesis = node.genesis
    return {
        "chain_id": genesis.chain_id,
        "genesis_hash": genesis.genesis_hash.hex(),
        "genesis": genesis.raw,
        "node": "",
    }


def get_static_file(path: str) -> Path:
    """The file under ``api/static`` named by ``path``; refuses anything outside it."""
    try:
        candidate = (STATIC_DIR / path).resolve()
        found = candidate.is_relative_to(STATIC_DIR) and candidate.is_file() and candidate.suffix in MEDIA_TYPES
    except (OSError, ValueError):
        found = False  # a name too long for the file system, or with a NUL: no such file either
    if not found:
        raise NotFoundError(f"expected a file of the verifier page, got {bounded_repr(path)}")
    return candidate


def render_index() -> str:
    """index.html as served at ``/``: its relative links resolve under ``/static/``.

    The file itself has no ``<base>``, so it also works as is from disk or any static host.
    """
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    return html.replace("<head>", '<head>\n<base href="/static/">', 1)


def make_page_router(node: Node) -> APIRouter:
    """The page's routes for ``node``: its genesis pinned in ``/config.json``."""
    return make_static_page_router(compute_page_config(node))


def make_static_page_router(config: dict[str, Any]) -> APIRouter:
    """The page's routes with a given configuration (also used by tests that stand in for a node)."""
    router = APIRouter()

    @router.get("/", tags=["page"], include_in_schema=False)
    async def index() -> HTMLResponse:
        """The verifier page."""
        return HTMLResponse(render_index(), headers=NO_CACHE)

    @router.get("/config.json", tags=["page"])
    async def page_config() -> JSONResponse:
        """The page's configuration: chain id, pinned genesis hash and the genesis itself."""
        return JSONResponse(config, headers=NO_CACHE)

    @router.get("/static/{path:path}", tags=["page"], include_in_schema=False)
    async def static(path: str) -> FileResponse:
        """The page's scripts, styles and vendored libraries."""
        found = get_static_file(path)
        return FileResponse(found, media_type=MEDIA_TYPES[found.suffix], headers=NO_CACHE)

    return router
