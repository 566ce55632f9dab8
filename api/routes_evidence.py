"""``GET /v1/evidence``: the equivocation evidence this node has recorded, page by page.

Public, like headers and certificates: evidence convicts a validator with nothing but
its own signatures, so anyone may fetch it and check it (``node.evidence.validate_evidence``
against the genesis validator set). Each item is an entry of the node's
:class:`~node.evidence.EvidenceLog` with both signed messages as hex of their canonical
bytes. Paging is by ``seq``, the entry's stable position in the log: ``?since=`` the
last ``seq`` seen plus one; a full page carries a ``Link: <...>; rel="next"`` header.
"""

from __future__ import annotations

from typing import Any, Protocol

from fastapi import APIRouter, Request, Response

from ledger.errors import RequestMalformedError
from node.evidence import EvidenceLog

DEFAULT_PAGE = 100
MAX_PAGE = 1000


class HasEvidenceLog(Protocol):
    """What the router needs of a node: its evidence log."""

    evidence_log: EvidenceLog


def validate_page(since: int, limit: int) -> None:
    if since < 0:
        raise RequestMalformedError(f"since: expected a seq >= 0, got {since}")
    if not 1 <= limit <= MAX_PAGE:
        raise RequestMalformedError(f"limit: expected 1..{MAX_PAGE}, got {limit}")


def make_evidence_router(node: HasEvidenceLog) -> APIRouter:
    router = APIRouter(tags=["public"])

    @router.get("/v1/evidence")
    async def evidence(
        request: Request, response: Response, since: int = 0, limit: int = DEFAULT_PAGE
    ) -> list[dict[str, Any]]:
        """Equivocation evidence, oldest first: each entry's validator, height, round,
        type, when this node saw it, and both signed messages (hex canonical bytes)."""
        validate_page(since, limit)
        entries = node.evidence_log.entries(since=since, limit=limit)
        if len(entries) == limit:
            following = request.url.include_query_params(since=entries[-1].seq + 1, limit=limit)
            response.headers["Link"] = f'<{following}>; rel="next"'
        return [entry.to_json() for entry in entries]

    return router
