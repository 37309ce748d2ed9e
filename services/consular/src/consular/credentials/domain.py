"""Issued credentials in plain Python: what a token says, and how anyone verifies one
offline with nothing but the ministry's published JWKS (and, for revocation, its list).

A credential is a JWS compact token (RFC 7515), EdDSA over Ed25519 (RFC 8037), whose
header names the key (`kid`). Claims::

    iss  the ministry's consular service        jti  the credential id
    iat, nbf, exp  issued / valid from / expires (seconds since the epoch)
    credential_type  consular_card | e_visa      issuing_embassy  e.g. fr-paris
    application_reference  the decision's reference (e.g. CC-2026-3F9A1C07B2)
    holder  {given_name, family_name, date_of_birth} (+ passport_number, nationality
            for an e-visa)

``verify`` says ``valid``, ``revoked``, ``forged`` (not a token, another algorithm, a key
not in the JWKS, a bad signature: a tampered payload or another key) or ``expired``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

import jwt

ALGORITHM = "EdDSA"
CredentialType = Literal["consular_card", "e_visa"]
CREDENTIAL_TYPES: frozenset[str] = frozenset({"consular_card", "e_visa"})
Status = Literal["valid", "revoked", "forged", "expired"]

# Leeway for clocks of offline verifiers (a phone at a border post).
LEEWAY = timedelta(minutes=5)


@dataclass(frozen=True)
class Holder:
    given_name: str
    family_name: str
    date_of_birth: date | None
    passport_number: str | None = None
    nationality: str | None = None

    def claim(self) -> dict[str, str]:
        values = {
            "given_name": self.given_name,
            "family_name": self.family_name,
            "date_of_birth": self.date_of_birth.isoformat() if self.date_of_birth else None,
            "passport_number": self.passport_number,
            "nationality": self.nationality,
        }
        return {k: v for k, v in values.items() if v is not None}


def visitor_of(answers: Mapping[str, Any]) -> Holder:
    """An e-visa's holder: the visitor's own form answers (passport data)."""
    born = answers.get("date_of_birth")
    return Holder(
        given_name=str(answers.get("given_name", "")),
        family_name=str(answers.get("family_name", "")),
        date_of_birth=date.fromisoformat(born) if isinstance(born, str) else None,
        passport_number=str(answers["passport_number"]) if "passport_number" in answers else None,
        nationality=str(answers["nationality"]) if "nationality" in answers else None,
    )


def claims(
    *,
    credential_id: UUID,
    credential_type: str,
    issuer: str,
    holder: Holder,
    embassy_id: str,
    reference: str | None,
    issued_at: datetime,
    expires_at: datetime,
) -> dict[str, Any]:
    issued = int(issued_at.timestamp())
    return {
        "iss": issuer,
        "jti": str(credential_id),
        "iat": issued,
        "nbf": issued,
        "exp": int(expires_at.timestamp()),
        "credential_type": credential_type,
        "issuing_embassy": embassy_id,
        "application_reference": reference,
        "holder": holder.claim(),
    }


@dataclass(frozen=True)
class Verdict:
    status: Status
    reason: str
    # The claims, once the signature holds (also for revoked and expired credentials).
    claims: dict[str, Any] | None = None
    kid: str | None = None

    @property
    def credential_id(self) -> str | None:
        return str(self.claims["jti"]) if self.claims and "jti" in self.claims else None


def _forged(reason: str, kid: str | None = None) -> Verdict:
    return Verdict("forged", reason, None, kid)


def verify(
    token: str,
    jwks: Mapping[str, Any],
    *,
    revoked: Collection[str] = (),
    now: datetime | None = None,
    issuer: str | None = None,
) -> Verdict:
    """Verify ``token`` with the published key set ``jwks`` (its JSON, as served) and a
    revocation list (credential ids): no database, no network."""
    now = now or datetime.now(UTC)
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return _forged("not a signed token")
    kid = header.get("kid")
    if header.get("alg") != ALGORITHM:
        return _forged(f"algorithm {header.get('alg')!r} is not the ministry's ({ALGORITHM})")
    keys = {
        k.get("kid"): k
        for k in jwks.get("keys", [])
        if isinstance(k, Mapping) and k.get("kty") == "OKP" and k.get("crv") == "Ed25519"
    }
    if not isinstance(kid, str) or kid not in keys:
        named = kid if isinstance(kid, str) else None
        return _forged("signed by a key the ministry does not publish", named)
    try:
        key = jwt.PyJWK.from_dict(dict(keys[kid]), algorithm=ALGORITHM)
        found: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[ALGORITHM],
            # Dates are judged below, to tell "expired" from "forged".
            options={
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "require": ["jti", "exp", "iat"],
            },
        )
    except jwt.InvalidSignatureError:
        return _forged("bad signature: the token was altered or signed by another key", kid)
    except jwt.PyJWTError as error:
        return _forged(f"not a valid credential: {error}", kid)
    if issuer is not None and found.get("iss") != issuer:
        return _forged("issued by someone else", kid)
    if found.get("credential_type") not in CREDENTIAL_TYPES:
        return _forged("not a consular credential", kid)
    if str(found["jti"]) in revoked:
        return Verdict("revoked", "revoked by the issuing embassy", found, kid)
    expires = datetime.fromtimestamp(int(found["exp"]), UTC)
    if expires + LEEWAY < now:
        return Verdict("expired", f"expired on {expires.date().isoformat()}", found, kid)
    starts = datetime.fromtimestamp(int(found.get("nbf", found["iat"])), UTC)
    if starts - LEEWAY > now:
        return _forged("not valid yet (dated in the future)", kid)
    return Verdict("valid", "genuine, not revoked, not expired", found, kid)
