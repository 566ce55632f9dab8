"""The one place that maps error codes to HTTP statuses, and RFC 9457 problem responses.

Every error leaves the API as ``application/problem+json``::

    {"type": code, "title": ..., "status": ..., "detail": str(error),
     "instance"?: request path, "path"?: field path, "tx_index"?: int}

``type`` is the error's stable code (:mod:`ledger.errors`), never a stack trace or
exception text. :func:`status_for` looks up the error's class, then its nearest
ancestor, in :data:`STATUS_BY_CODE`; every direct child of ``LedgerError`` has its own
entry so a new family of errors is classified on purpose (a test checks this).

Status mapping (the exact class wins, else the nearest listed ancestor):

==============================================  ======  ==========================================
codes                                           status  why
==============================================  ======  ==========================================
encoding.* , tx.malformed, doc.json,            400     the bytes or JSON cannot be read as the
request.invalid, request.malformed,                     type they claim to be
peer.invalid, peer.malformed
doc.* (schema, codes, type_unknown, ...),       422     well-formed, but breaks a rule: schema,
doc.registration_invalid,                               signature, authority of the signer,
tx.* (signature_invalid, wrong_chain,                   binding between content and transaction
unknown_kind, not_zone_admin, unknown_zone,
officer_revoked), doc.not_officer_of_zone,
doc.id_mismatch, doc.type_mismatch,
doc.hash_mismatch, doc.content_missing,
doc.attachment_invalid, proof.*, block.*,
commit.*, vote.*, audit.*
tx.replayed, tx.duplicate_in_block,             409     valid on its own, but conflicts with the
doc.exists, doc.revoked, doc.stale_supersedes,          ledger's current state (retrying the same
doc.stale_hash, tx.officer_already_active,              request cannot succeed; re-read first)
tx.officer_not_active
doc.too_large, tx.too_large, request.too_large  413     over a size limit
doc.not_found, request.not_found                404     no such document / resource
auth.* (missing, signature_invalid, stale,      401     the request is not (validly) signed
replayed), peer.signature_invalid
auth.not_member, peer.unknown_sender            403     signed, but by a key without access
mempool.full, node.unavailable,                 503     try again later (``Retry-After``)
peer.unavailable
ledger.error, key.*, genesis.*, store.*,        500     the node itself is broken or misconfigured
node.error, config.invalid
==============================================  ======  ==========================================

Two problem types are not error classes: ``node.internal`` (500, any exception that
is not a ``LedgerError``; detail "internal error") is produced here only, and
FastAPI's own errors are folded into ``request.malformed`` (validation, 405) and
``request.not_found`` (unknown route).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from ledger import errors
from ledger.errors import LedgerError

log = logging.getLogger("zoneledger.api")

PROBLEM_MEDIA_TYPE = "application/problem+json"
INTERNAL_TYPE = "node.internal"
RETRY_AFTER_SECONDS = 1
"""``Retry-After`` sent with 503s: mempools drain block by block, about once a second."""

STATUS_BY_CODE: dict[str, int] = {
    # the root and the node's own configuration
    errors.LedgerError.code: 500,
    errors.KeyFileError.code: 500,
    errors.GenesisError.code: 500,
    errors.StoreError.code: 500,
    errors.NodeError.code: 500,
    # unreadable input
    errors.EncodingError.code: 400,
    errors.MalformedTransactionError.code: 400,
    errors.DocumentJsonError.code: 400,
    errors.RequestError.code: 400,
    errors.RequestMalformedError.code: 400,
    errors.PeerError.code: 400,
    # well-formed but against the rules
    errors.DocumentError.code: 422,
    errors.TransactionError.code: 422,
    errors.ProofError.code: 422,
    errors.BlockError.code: 422,
    errors.CommitError.code: 422,
    errors.VoteError.code: 422,
    errors.AuditError.code: 422,
    # conflicts with the current state
    errors.ReplayedTransactionError.code: 409,
    errors.DuplicateInBlockError.code: 409,
    errors.DocumentExistsError.code: 409,
    errors.DocumentRevokedError.code: 409,
    errors.StaleSupersedesError.code: 409,
    errors.StaleRevocationHashError.code: 409,
    errors.OfficerAlreadyActiveError.code: 409,
    errors.OfficerNotActiveError.code: 409,
    errors.GovProposalExpiredError.code: 409,
    errors.GovProposalClosedError.code: 409,
    errors.GovAlreadyApprovedError.code: 409,
    errors.GovZoneExistsError.code: 409,
    errors.GovDuplicateKeyError.code: 409,
    errors.GovAuditorExistsError.code: 409,
    # size limits
    errors.DocumentTooLargeError.code: 413,
    errors.TransactionTooLargeError.code: 413,
    errors.RequestTooLargeError.code: 413,
    # not found
    errors.DocumentNotFoundError.code: 404,
    errors.GovProposalUnknownError.code: 404,
    errors.NotFoundError.code: 404,
    # authentication and authorisation of the HTTP caller
    errors.AuthError.code: 401,
    errors.AuthNotMemberError.code: 403,
    errors.PeerSignatureError.code: 401,
    errors.PeerUnknownSenderError.code: 403,
    # come back later
    errors.MempoolFullError.code: 503,
    errors.NodeUnavailableError.code: 503,
    errors.PeerUnavailableError.code: 503,
}


def status_for(error: LedgerError | type[LedgerError]) -> int:
    """The HTTP status of ``error``: its class's entry, else its nearest ancestor's."""
    cls = error if isinstance(error, type) else type(error)
    for ancestor in cls.__mro__:
        if isinstance(ancestor, type) and issubclass(ancestor, LedgerError):
            # ``vars`` so that a subclass that forgot its own code does not borrow its
            # parent's entry by inheritance before the walk reaches the parent.
            code = vars(ancestor).get("code")
            if isinstance(code, str) and code in STATUS_BY_CODE:
                return STATUS_BY_CODE[code]
    return 500


def _problem_response(
    type_: str, title: str, status: int, detail: str, *, instance: str | None = None,
    extra: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"type": type_, "title": title, "status": status, "detail": detail}
    if instance is not None:
        body["instance"] = instance
    if extra:
        body.update(extra)
    out_headers = dict(headers or {})
    if status == 503:
        out_headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))
    return JSONResponse(body, status_code=status, headers=out_headers, media_type=PROBLEM_MEDIA_TYPE)


def problem(error: LedgerError, instance: str | None = None) -> JSONResponse:
    """The RFC 9457 response for ``error`` (with ``Retry-After`` on 503)."""
    extra: dict[str, Any] = {}
    if error.path is not None:
        extra["path"] = error.path
    if error.tx_index is not None:
        extra["tx_index"] = error.tx_index
    return _problem_response(
        error.code, error.title, status_for(error), str(error), instance=instance, extra=extra
    )


def internal_problem(instance: str | None = None) -> JSONResponse:
    """500 ``node.internal``: says nothing about the failure beyond that it happened."""
    return _problem_response(INTERNAL_TYPE, "Internal error", 500, "internal error", instance=instance)


# --- handlers ---------------------------------------------------------------


def _describe_validation(exc: RequestValidationError) -> str:
    # Name the field and the rule only: pydantic's "input" would echo client data back.
    first = next(iter(exc.errors()), None)
    if not isinstance(first, dict):
        return "expected a well-formed request"
    location = ".".join(str(part) for part in first.get("loc", ()))
    message = str(first.get("msg", "invalid"))
    return f"{location}: {message}" if location else message


async def _on_ledger_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LedgerError)
    return problem(exc, instance=request.url.path)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    error = errors.RequestMalformedError(_describe_validation(exc))
    return problem(error, instance=request.url.path)


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    error_class: type[LedgerError]
    if status == 404:
        error_class = errors.NotFoundError
    elif status == 413:
        error_class = errors.RequestTooLargeError
    elif status == 503:
        error_class = errors.NodeUnavailableError
    elif status >= 500:
        return internal_problem(request.url.path)
    else:
        error_class = errors.RequestMalformedError
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "HTTP error"
    detail = exc.detail if isinstance(exc.detail, str) else phrase
    # Keep the framework's status (405 stays 405) and headers such as Allow.
    return _problem_response(
        error_class.code, error_class.title, status, detail, instance=request.url.path,
        headers=dict(exc.headers or {}),
    )


async def _on_client_disconnect(request: Request, exc: Exception) -> JSONResponse:
    # The client closed its connection before its body had arrived: an ordinary event
    # for a server, not a fault of the node's, so one line in the log and no traceback.
    # The answer is for form's sake; nobody is there to read it.
    assert isinstance(exc, ClientDisconnect)
    scope = request.scope
    if not scope.get(BODY_REFUSED_KEY):  # a body refused with 413 was logged by nobody and needs no line
        log.info(
            "%s %s: client disconnected after %d body bytes; request dropped",
            request.method, scope.get("path"), scope.get(BODY_RECEIVED_KEY, 0),
        )
    return problem(errors.RequestMalformedError("expected a whole body, got a disconnect"), instance=request.url.path)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Starlette's ServerErrorMiddleware calls this, sends the response, then re-raises
    # so the server still logs the traceback: on the node's log, never to the client.
    return internal_problem(request.url.path)


def install_error_handlers(app: FastAPI) -> None:
    """Route every failure of ``app`` through :func:`problem`."""
    app.add_exception_handler(LedgerError, _on_ledger_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(ClientDisconnect, _on_client_disconnect)
    app.add_exception_handler(Exception, _on_unexpected)


# --- body size limit ----------------------------------------------------------

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


BODY_RECEIVED_KEY = "zoneledger.body_received"
"""Scope key: the body bytes that arrived, for the one-line log of an aborted upload."""
BODY_REFUSED_KEY = "zoneledger.body_refused"
"""Scope key: set when this middleware refused the body itself (the app then sees a disconnect)."""

BodyLimitFor = Callable[[Scope], int]
"""The body limit of one request, from its scope (path, method, headers)."""


class BodyLimitMiddleware:
    """Refuse request bodies over their route's limit with 413 ``request.too_large``.

    The limit of a request is ``limit_for(scope)`` (each route's own, sized to its
    largest legitimate body), never above ``max_bytes`` (the operator's cap). A declared
    ``Content-Length`` over the limit is refused before the app runs. A body without
    one (chunked upload) is counted as it streams: once it passes the limit the
    middleware sends the 413 itself, tells the app the client went away
    (``http.disconnect``) and drops whatever the app tries to send afterwards. Raising
    from ``receive`` instead would not work: FastAPI turns any exception met while
    reading a body into its own 400.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, limit_for: BodyLimitFor | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.limit_for = limit_for

    def compute_limit(self, scope: Scope) -> int:
        """The body limit of this request: its route's, capped by the operator's."""
        if self.limit_for is None:
            return self.max_bytes
        return min(self.max_bytes, self.limit_for(scope))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.compute_limit(scope)
        declared = self._declared_length(scope)
        if isinstance(declared, LedgerError):
            await self._refuse(scope, receive, send, declared)
            return
        if declared is not None and declared > limit:
            await self._refuse(scope, receive, send, self._too_large(limit, f"a Content-Length of {declared}"))
            return

        received = 0
        refused = False
        response_started = False
        scope[BODY_RECEIVED_KEY] = 0

        async def limited_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                scope[BODY_RECEIVED_KEY] = received
                if received > limit:
                    refused = True
                    scope[BODY_REFUSED_KEY] = True
                    if not response_started:
                        await self._refuse(scope, receive, send, self._too_large(limit, f"more than {received} bytes"))
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if refused:
                return  # the 413 has been sent; the app's answer has no one to go to
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        await self.app(scope, limited_receive, guarded_send)

    @staticmethod
    def _too_large(limit: int, got: str) -> errors.RequestTooLargeError:
        return errors.RequestTooLargeError(f"expected a body of at most {limit} bytes, got {got}")

    @staticmethod
    def _declared_length(scope: Scope) -> int | LedgerError | None:
        for name, value in scope.get("headers", ()):
            if name.lower() == b"content-length":
                text = value.decode("latin-1").strip()
                if not text.isdigit():
                    return errors.RequestMalformedError(f"Content-Length: expected an integer, got {text[:32]!r}")
                return int(text)
        return None

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, error: LedgerError) -> None:
        path = scope.get("path")
        response = problem(error, instance=path if isinstance(path, str) else None)
        # Ask the client to close: the rest of its body would otherwise be read to no end.
        response.headers["Connection"] = "close"
        await response(scope, receive, send)
