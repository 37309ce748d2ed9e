"""FastAPI side: the bearer-token dependency and the 401/403 problem details.

identity = Identity.from_settings(settings)      # once, at start-up
app.state.identity = identity
install_identity(app)                            # 403 handler

@router.get("/things/{id}")
async def read(principal: CurrentPrincipal, ...) -> ...:
    decision = identity.policy.decide(principal, "thing", "read")   # 403 if no grant
    ... query.where(decision.where(columns)) ...                    # 404 if out of scope
    return decision.project(row, FIELDS)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from opentelemetry import trace

from diaspora_identity.jurisdictions import Jurisdictions
from diaspora_identity.jwks import DevelopmentIssuerRefused, JwksCache, JwksUnavailable
from diaspora_identity.policy import Forbidden, Policy, default_policy
from diaspora_identity.principal import Principal
from diaspora_identity.tokens import TokenMissing, TokenRejected, TokenVerifier, VerifierConfig
from diaspora_service.problems import TYPE_BASE, Problem, problem_response
from diaspora_service.settings import ServiceSettings

log = structlog.get_logger(__name__)

REALM = "diaspora"
UNAUTHORIZED_TYPE = TYPE_BASE + "unauthorized"
FORBIDDEN_TYPE = TYPE_BASE + "forbidden"

# The answers every authenticated route may give, for its OpenAPI ``responses``.
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid bearer token (problem details)"},
    403: {"description": "Your roles do not allow this function (problem details)"},
}


@dataclass
class Identity:
    """What a service needs to know who calls and what they may see."""

    verifier: TokenVerifier
    keys: JwksCache
    policy: Policy
    jurisdictions: Jurisdictions

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> Identity:
        keys = JwksCache(
            issuer=settings.oidc_issuer,
            jwks_url=settings.oidc_jwks_url,
            max_age=settings.oidc_jwks_max_age_seconds,
            min_refresh_interval=settings.oidc_jwks_min_refresh_seconds,
            production=settings.environment == "production",
        )
        config = VerifierConfig(
            issuer=settings.oidc_issuer,
            audience=settings.oidc_audience,
            leeway_seconds=settings.oidc_leeway_seconds,
        )
        return cls(
            verifier=TokenVerifier(config, keys),
            keys=keys,
            policy=default_policy(),
            jurisdictions=Jurisdictions.load(settings.jurisdictions_file),
        )

    async def aclose(self) -> None:
        await self.keys.aclose()


def _challenge(error: TokenRejected) -> str:
    if error.code is None:
        return f'Bearer realm="{REALM}"'
    description = error.reason.replace('"', "'")
    return f'Bearer realm="{REALM}", error="{error.code}", error_description="{description}"'


def unauthorized(error: TokenRejected) -> Problem:
    return Problem(
        401,
        "Authentication required" if isinstance(error, TokenMissing) else "Invalid token",
        detail=error.reason,
        type_=UNAUTHORIZED_TYPE,
        headers={"WWW-Authenticate": _challenge(error)},
    )


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise TokenMissing()
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenRejected(
            "the Authorization header must be `Bearer <token>`", code="invalid_request"
        )
    return token.strip()


async def authenticate(request: Request) -> Principal:
    """FastAPI dependency: the verified caller, or a 401 problem."""
    identity: Identity = request.app.state.identity
    try:
        principal = await identity.verifier.verify(bearer_token(request))
    except TokenRejected as error:
        raise unauthorized(error) from None
    except DevelopmentIssuerRefused as error:
        log.error("development_issuer_refused", error=str(error))
        raise Problem(503, "Identity provider refused", detail=str(error)) from None
    except JwksUnavailable:
        log.error("identity_provider_unreachable")
        raise Problem(
            503,
            "Identity provider unreachable",
            detail="Tokens cannot be verified right now; try again shortly.",
            headers={"Retry-After": "5"},
        ) from None
    request.state.principal = principal
    span = trace.get_current_span()
    span.set_attribute("enduser.roles", ",".join(principal.role_names))
    return principal


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]


def forbidden(error: Forbidden) -> Problem:
    return Problem(
        403,
        "Forbidden",
        detail=str(error),
        type_=FORBIDDEN_TYPE,
        headers={"WWW-Authenticate": f'Bearer realm="{REALM}", error="insufficient_scope"'},
    )


def upload_authorizer(resource: str, action: str) -> Callable[[Request], Awaitable[None]]:
    """The ``authorize`` hook of an upload route (``diaspora_service.uploads.UploadRoute``):
    the bearer token verified (401) and the policy's function-level decision (403), from
    the request's headers only, before the service reads any of the body. The route
    decides again as usual (scope, fields) once it runs."""

    async def authorize(request: Request) -> None:
        principal = await authenticate(request)
        identity: Identity = request.app.state.identity
        try:
            identity.policy.decide(principal, resource, action)
        except Forbidden as error:
            raise forbidden(error) from None

    return authorize


def install_identity(app: FastAPI) -> None:
    """Function-level denials as 403 problem details."""

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, error: Forbidden) -> JSONResponse:
        return problem_response(
            403,
            "Forbidden",
            detail=str(error),
            type_=FORBIDDEN_TYPE,
            instance=request.url.path,
            headers={"WWW-Authenticate": f'Bearer realm="{REALM}", error="insufficient_scope"'},
        )
