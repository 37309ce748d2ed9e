"""The development IdP's OAuth2 client-credentials endpoint: the services' own tokens
for the registry's key service (``service`` role), refused for unknown clients."""

from __future__ import annotations

from pathlib import Path

import httpx
import jwt
import pytest

from diaspora_devstack import idp
from diaspora_devstack.config import StackConfig
from diaspora_identity.testing import DEV_SERVICE_CLIENTS


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StackConfig:
    monkeypatch.setenv("DIASPORA_STATE_DIR", str(tmp_path))
    return StackConfig.from_env()


async def test_a_known_client_gets_a_service_token_and_others_are_refused(
    cfg: StackConfig,
) -> None:
    app = idp.asgi_app(cfg, port=8090)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8090"
    ) as client:
        answer = await client.post(
            "/dev-idp/token",
            data={"grant_type": "client_credentials"},
            auth=("matching", DEV_SERVICE_CLIENTS["matching"]),
        )
        assert answer.status_code == 200, answer.text
        token = answer.json()["access_token"]
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["realm_access"]["roles"] == ["service"]
        assert claims["client_id"] == "matching"
        assert answer.json()["expires_in"] > 0
        # Verified with the IdP's published keys (what the registry does).
        jwks = (await client.get("/dev-idp/jwks.json")).json()
        key = jwt.PyJWK(jwks["keys"][-1])
        jwt.decode(token, key.key, algorithms=[key.algorithm_name], audience="diaspora-api")

        wrong = await client.post(
            "/dev-idp/token",
            data={"grant_type": "client_credentials"},
            auth=("matching", "not-the-secret"),
        )
        assert wrong.status_code == 401
        unknown = await client.post(
            "/dev-idp/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "intruder",
                "client_secret": "x",
            },
        )
        assert unknown.status_code == 401
        password = await client.post(
            "/dev-idp/token",
            data={"grant_type": "password"},
            auth=("matching", DEV_SERVICE_CLIENTS["matching"]),
        )
        assert password.status_code == 400
