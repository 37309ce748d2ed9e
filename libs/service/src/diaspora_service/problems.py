"""RFC 9457 problem details for every error a service returns."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from diaspora_events.shredding import KeyServiceUnavailable
from diaspora_service.db import UNAVAILABLE_ERRORS

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://diaspora.gouv.tg/problems/"

log = structlog.get_logger(__name__)


class Problem(Exception):
    """An error the client can act on; rendered as problem details."""

    def __init__(
        self,
        status: int,
        title: str,
        *,
        detail: str | None = None,
        type_: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type_
        self.headers = headers
        self.extensions = extensions


def problem_response(
    status: int,
    title: str,
    *,
    detail: str | None = None,
    type_: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": type_ or (TYPE_BASE + HTTPStatus(status).phrase.lower().replace(" ", "-")),
        "title": title,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_errors(error: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for item in error.errors():
        location = [str(part) for part in item.get("loc", ()) if part != "body"]
        errors.append(
            {
                "field": ".".join(location) or None,
                "message": item.get("msg", "invalid"),
                "code": item.get("type", "invalid"),
            }
        )
    return errors


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError) -> JSONResponse:
        return problem_response(
            422,
            "The request is not valid",
            detail="One or more fields are missing or invalid; see `errors`.",
            type_=TYPE_BASE + "validation",
            instance=request.url.path,
            errors=_field_errors(error),
        )

    @app.exception_handler(Problem)
    async def _problem(request: Request, error: Problem) -> JSONResponse:
        return problem_response(
            error.status,
            error.title,
            detail=error.detail,
            type_=error.type,
            instance=request.url.path,
            headers=error.headers,
            **error.extensions,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        phrase = HTTPStatus(error.status_code).phrase
        detail = error.detail if isinstance(error.detail, str) and error.detail != phrase else None
        return problem_response(
            error.status_code,
            phrase,
            detail=detail,
            instance=request.url.path,
            headers=dict(error.headers or {}),
        )

    # The database is unreachable, overloaded (no connection free in the pool in time) or
    # dropped the connection: the request did nothing, and a retry may well succeed.
    async def _unavailable(request: Request, error: Exception) -> JSONResponse:
        log.warning("database_unavailable", path=request.url.path, error=type(error).__name__)
        return problem_response(
            503,
            "Service unavailable",
            detail="The service cannot reach its database right now; nothing was changed. "
            "Retry in a few seconds.",
            instance=request.url.path,
            headers={"Retry-After": "5"},
        )

    for error_class in UNAVAILABLE_ERRORS:
        app.add_exception_handler(error_class, _unavailable)

    # Sealing an event needs the person's data key (crypto-shredding): the registry's key
    # service, the identity provider or Vault did not answer; the transaction rolled back.
    async def _keys_unavailable(request: Request, error: Exception) -> JSONResponse:
        log.warning("event_keys_unavailable", path=request.url.path, error=str(error))
        return problem_response(
            503,
            "Service unavailable",
            detail="The key service cannot be reached right now; nothing was changed. "
            "Retry in a few seconds.",
            instance=request.url.path,
            headers={"Retry-After": "5"},
        )

    app.add_exception_handler(KeyServiceUnavailable, _keys_unavailable)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled_error", path=request.url.path)
        return problem_response(
            500,
            "Internal error",
            detail="The error was logged; nothing you sent was lost if you got no 2xx.",
            instance=request.url.path,
        )
