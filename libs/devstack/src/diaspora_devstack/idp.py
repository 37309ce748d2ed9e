"""The development identity provider of the embedded platform. DEVELOPMENT ONLY.

`devstack idp` publishes the OIDC discovery document and the JWKS of keys kept
under ``.local/idp/keys/`` (generated on first use, never committed);
`devstack token --role ...` mints access tokens signed with the newest key;
`devstack idp --rotate` adds a new key (the previous ones stay published so
that tokens already minted keep working, the oldest beyond three go away).

Everything it publishes is marked ``development_only``: services refuse it in
production mode, production settings refuse its issuer URL, and these
commands refuse to run when any ``*ENVIRONMENT`` variable says production.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from uuid import UUID

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from diaspora_devstack.config import StackConfig
from diaspora_identity.jurisdictions import default_jurisdictions
from diaspora_identity.testing import DEV_SERVICE_CLIENTS, LocalIssuer, SigningKey, persona_for
from diaspora_service.settings import DEV_OIDC_ISSUER

DEFAULT_PORT = 8090
KEEP_KEYS = 3


class ProductionRefused(SystemExit):
    pass


def refuse_production() -> None:
    for name, value in os.environ.items():
        if (name == "ENVIRONMENT" or name.endswith("_ENVIRONMENT")) and value == "production":
            raise ProductionRefused(
                f"devstack: the development identity provider refuses to run when {name}=production"
            )


def issuer_url(port: int = DEFAULT_PORT) -> str:
    return DEV_OIDC_ISSUER if port == DEFAULT_PORT else f"http://127.0.0.1:{port}/dev-idp"


def keys_dir(cfg: StackConfig) -> Path:
    return cfg.state / "idp" / "keys"


def _write_key(folder: Path, number: int, key: SigningKey) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    path = folder / f"{number:04d}-{key.kid}.pem"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key.pem())


def load_keys(cfg: StackConfig) -> list[SigningKey]:
    """The signing keys, oldest first; one is generated on first use."""
    folder = keys_dir(cfg)
    files = sorted(folder.glob("*.pem")) if folder.exists() else []
    if not files:
        _write_key(folder, 1, SigningKey.generate())
        files = sorted(folder.glob("*.pem"))
    return [SigningKey.from_pem(f.read_bytes(), kid=f.stem.split("-", 1)[1]) for f in files]


def rotate(cfg: StackConfig) -> SigningKey:
    folder = keys_dir(cfg)
    load_keys(cfg)
    files = sorted(folder.glob("*.pem"))
    number = int(files[-1].name.split("-", 1)[0]) + 1
    key = SigningKey.generate()
    _write_key(folder, number, key)
    for old in sorted(folder.glob("*.pem"))[:-KEEP_KEYS]:
        old.unlink()
    return key


def local_issuer(cfg: StackConfig, *, port: int = DEFAULT_PORT) -> LocalIssuer:
    return LocalIssuer(issuer_url(port), keys=load_keys(cfg), clients=DEV_SERVICE_CLIENTS)


def asgi_app(cfg: StackConfig, *, port: int = DEFAULT_PORT) -> Starlette:
    """Discovery and JWKS, read from the key folder on each request (rotation needs no restart)."""
    path = "/dev-idp"

    async def discovery(_request: Request) -> JSONResponse:
        return JSONResponse(local_issuer(cfg, port=port).discovery())

    async def jwks(_request: Request) -> JSONResponse:
        return JSONResponse(local_issuer(cfg, port=port).jwks())

    async def token(request: Request) -> JSONResponse:
        return await local_issuer(cfg, port=port).token_endpoint(request)

    return Starlette(
        routes=[
            Route(f"{path}/.well-known/openid-configuration", discovery),
            Route(f"{path}/jwks.json", jwks),
            # OAuth2 client credentials for the services (the registry's key service).
            Route(f"{path}/token", token, methods=["POST"]),
        ]
    )


def serve(cfg: StackConfig, *, port: int = DEFAULT_PORT) -> int:
    import uvicorn

    refuse_production()
    load_keys(cfg)
    print(
        f"DEVELOPMENT ONLY identity provider: issuer {issuer_url(port)}, keys in {keys_dir(cfg)}.\n"
        "Tokens: uv run devstack token --role citizen|embassy_officer|ministry_coordinator|"
        "case_worker|partner_caseworker|analyst|admin|service [--embassy fr-paris]",
        flush=True,
    )
    uvicorn.run(asgi_app(cfg, port=port), host="127.0.0.1", port=port, log_level="warning")
    return 0


def mint(
    cfg: StackConfig,
    *,
    role: str,
    embassies: list[str],
    partner_org: str | None,
    member_id: str | None,
    subject: str | None,
    lifetime: int,
    port: int = DEFAULT_PORT,
) -> str:
    refuse_production()
    known = default_jurisdictions().embassies
    unknown = [e for e in embassies if e not in known]
    if unknown:
        raise SystemExit(f"devstack: unknown embassy ids {unknown}; known: {', '.join(known)}")
    if role == "embassy_officer" and not embassies:
        raise SystemExit("devstack: an embassy_officer needs --embassy (e.g. --embassy fr-paris)")
    if role == "partner_caseworker" and not partner_org:
        raise SystemExit("devstack: a partner_caseworker needs --partner-org")
    try:
        persona = persona_for(
            role,
            subject=subject,
            embassies=embassies,
            partner_org=partner_org,
            member_id=UUID(member_id) if member_id else None,
        )
    except ValueError as error:
        raise SystemExit(f"devstack: {error}") from None
    return local_issuer(cfg, port=port).token(persona, lifetime=lifetime)


def print_token(token: str) -> None:
    sys.stdout.write(token + "\n")
