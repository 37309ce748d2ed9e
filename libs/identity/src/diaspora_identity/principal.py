"""Who is calling: the principal built from a verified token's claims.

Claims read (Keycloak-compatible; see docs/security.md):

| claim | meaning |
|---|---|
| ``sub`` | the caller's stable subject id at the issuer (required) |
| ``realm_access.roles`` | realm roles; only the platform's roles (:class:`Role`) count |
| ``resource_access.<audience>.roles`` | client roles of this API, same names, also counted |
| ``embassies`` | embassy ids an ``embassy_officer`` is scoped to (list, or one string) |
| ``partner_org`` | the partner organisation a ``partner_caseworker`` belongs to |
| ``member_id`` | for a citizen: the registry member id of the person (once registered) |
| ``azp`` / ``client_id`` | the OAuth client the token was issued to |

Unknown roles (``offline_access``, ``default-roles-*``, ...) are ignored, so a
token can carry the issuer's own roles without granting anything here.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID


class Role(enum.StrEnum):
    CITIZEN = "citizen"
    EMBASSY_OFFICER = "embassy_officer"
    MINISTRY_COORDINATOR = "ministry_coordinator"
    # The ministry's return cell (returnees service): works the returnees' cases assigned
    # to them; partner organisations' case workers are PARTNER_CASEWORKER.
    CASE_WORKER = "case_worker"
    PARTNER_CASEWORKER = "partner_caseworker"
    ANALYST = "analyst"
    ADMIN = "admin"
    # Internal systems (other ministries, the statistics office, partners' systems).
    SERVICE = "service"
    # Anyone, without a token: an endpoint that admits anonymous callers acts as this role
    # (only what the policy grants `public`, e.g. suppressed statistics). Never a staff role.
    PUBLIC = "public"


# Claim names, in one place.
CLAIM_SUBJECT = "sub"
CLAIM_REALM_ACCESS = "realm_access"
CLAIM_RESOURCE_ACCESS = "resource_access"
CLAIM_EMBASSIES = "embassies"
CLAIM_PARTNER_ORG = "partner_org"
CLAIM_MEMBER_ID = "member_id"
CLAIM_AUTHORIZED_PARTY = "azp"
CLAIM_CLIENT_ID = "client_id"


class InvalidClaims(ValueError):
    """The token verified but its claims do not describe a usable principal."""


@dataclass(frozen=True)
class Principal:
    """The verified caller."""

    subject: str
    roles: frozenset[Role]
    embassies: frozenset[str] = frozenset()
    partner_org: str | None = None
    member_id: UUID | None = None
    client_id: str | None = None
    token_id: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_service(self) -> bool:
        return Role.SERVICE in self.roles

    @property
    def is_staff(self) -> bool:
        """Anyone acting on other people's data (everything but a plain citizen)."""
        return bool(self.roles - {Role.CITIZEN, Role.PUBLIC})

    def has(self, role: Role) -> bool:
        return role in self.roles

    @property
    def role_names(self) -> list[str]:
        return sorted(r.value for r in self.roles)


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, Iterable) and not isinstance(value, Mapping):
        return [str(v) for v in value if isinstance(v, str) and v]
    return []


def _roles(claims: Mapping[str, Any], audience: str | None) -> frozenset[Role]:
    names: list[str] = []
    realm = claims.get(CLAIM_REALM_ACCESS)
    if isinstance(realm, Mapping):
        names += _strings(realm.get("roles"))
    resources = claims.get(CLAIM_RESOURCE_ACCESS)
    if audience and isinstance(resources, Mapping):
        client = resources.get(audience)
        if isinstance(client, Mapping):
            names += _strings(client.get("roles"))
    known = {r.value for r in Role}
    return frozenset(Role(n) for n in names if n in known)


def principal_from_claims(claims: Mapping[str, Any], *, audience: str | None = None) -> Principal:
    """The principal described by verified claims (raises InvalidClaims)."""
    subject = claims.get(CLAIM_SUBJECT)
    if not isinstance(subject, str) or not subject:
        raise InvalidClaims("the token has no subject (sub)")
    member_id: UUID | None = None
    raw_member = claims.get(CLAIM_MEMBER_ID)
    if raw_member is not None:
        try:
            member_id = UUID(str(raw_member))
        except ValueError:
            raise InvalidClaims("member_id is not a UUID") from None
    partner = claims.get(CLAIM_PARTNER_ORG)
    client = claims.get(CLAIM_AUTHORIZED_PARTY) or claims.get(CLAIM_CLIENT_ID)
    jti = claims.get("jti")
    return Principal(
        subject=subject,
        roles=_roles(claims, audience),
        embassies=frozenset(_strings(claims.get(CLAIM_EMBASSIES))),
        partner_org=partner if isinstance(partner, str) and partner else None,
        member_id=member_id,
        client_id=client if isinstance(client, str) else None,
        token_id=jti if isinstance(jti, str) else None,
        claims=dict(claims),
    )
