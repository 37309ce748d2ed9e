"""The hand-over package of a passport or national identity card preparation, in plain
Python: its document, the authority's answers and their order, the download references
and the verification of a package with the published key set alone.

Format: docs/consular.md "Hand-over package" and
docs/schemas/consular-handover-package.schema.json.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

import jwt

ALGORITHM = "EdDSA"
FORMAT = "tg.diaspora.consular.handover-package"
FORMAT_VERSION = 1
# The JWS header's `typ` of a package and of a download reference.
PACKAGE_TYP = "handover-package+jwt"
DOWNLOAD_TYP = "handover-download+jwt"

# The national documentation authority's OAuth client: the audience of packages and
# download references; the policy (resource consular_handover) names the same client.
AUTHORITY_CLIENT = "national-documentation-authority"
# How long a document's download reference is valid.
DOWNLOAD_LIFETIME = timedelta(days=7)

# The service types whose approval sends a package to the national documentation authority.
HANDOVER_TYPES: frozenset[str] = frozenset({"passport_preparation", "national_id_preparation"})

Status = Literal["sent", "accepted", "rejected", "produced"]
Answer = Literal["accepted", "rejected", "produced"]

# The authority's answers possible from each hand-over status, in order: a package is
# accepted (or rejected), then produced (or rejected); rejected and produced are final.
NEXT: dict[str, tuple[Answer, ...]] = {
    "sent": ("accepted", "rejected"),
    "accepted": ("produced", "rejected"),
    "rejected": (),
    "produced": (),
}


class AnswerOutOfOrder(Exception):
    def __init__(self, status: str, answer: str) -> None:
        allowed = list(NEXT.get(status, ()))
        listed = ", ".join(allowed) if allowed else "none"
        super().__init__(f"{answer} is not possible after {status}; allowed now: {listed}")
        self.status = status
        self.answer = answer
        self.allowed = allowed


def check_answer(
    status: str,
    answer: str,
    *,
    reason: str | None,
    document_number: str | None,
    kept_reason: str | None,
    kept_number: str | None,
) -> bool:
    """Whether ``answer`` moves the hand-over (True) or repeats the one that brought it
    where it is (False: idempotent, nothing to do). Anything else: AnswerOutOfOrder."""
    if answer == status and reason == kept_reason and document_number == kept_number:
        return False
    if answer not in NEXT.get(status, ()):
        raise AnswerOutOfOrder(status, answer)
    return True


@dataclass(frozen=True)
class DocumentRef:
    """A document of the application, as the uploads keep it (id, kind, sha256)."""

    id: UUID
    kind: str
    content_type: str
    size: int
    sha256: str


def download_claims(
    *,
    issuer: str,
    audience: str,
    handover_id: UUID,
    document: DocumentRef,
    now: datetime,
    lifetime: timedelta,
) -> dict[str, Any]:
    """The claims of a signed, expiring reference to one document of a package: the
    authority presents it to fetch the document (and checks the sha256 it names)."""
    return {
        "iss": issuer,
        "aud": audience,
        "sub": str(document.id),
        "handover_id": str(handover_id),
        "sha256": document.sha256,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
    }


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def package_document(
    *,
    handover_id: UUID,
    issuer: str,
    audience: str,
    now: datetime,
    application: Mapping[str, Any],
    applicant: Mapping[str, Any] | None,
    required_documents: Sequence[str],
    documents: Sequence[tuple[DocumentRef, str, datetime]],
    answer_path: str,
) -> dict[str, Any]:
    """The package's JSON document (the JWS payload). ``documents``: each document with its
    signed download reference and the reference's expiry."""
    identity = None
    if applicant is not None and applicant.get("identity_level") is not None:
        identity = {
            "level": applicant["identity_level"],
            "method": applicant.get("identity_method"),
            "verified_at": _iso(applicant.get("identity_verified_at")),
            "verifying_embassy": applicant.get("identity_embassy_id"),
            "document_expires_on": _iso(applicant.get("identity_expires_on")),
        }
    return {
        "iss": issuer,
        "aud": audience,
        "jti": str(handover_id),
        "iat": int(now.timestamp()),
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "application": {
            "id": str(application["id"]),
            "reference": application.get("reference"),
            "service_type": application["service_type"],
            "catalogue_version": application["catalogue_version"],
            "embassy_id": application["embassy_id"],
            "submitted_at": _iso(application.get("submitted_at")),
            "approved_at": _iso(application.get("decided_at")),
            "answers": dict(application.get("answers") or {}),
        },
        "applicant": {
            "member_id": str(application["applicant_id"]) if application["applicant_id"] else None,
            "given_name": applicant["given_name"] if applicant else None,
            "family_name": applicant["family_name"] if applicant else None,
            "date_of_birth": _iso(applicant.get("date_of_birth")) if applicant else None,
            "country_of_residence": applicant["country_of_residence"] if applicant else None,
            "identity_verification": identity,
        },
        "required_documents": list(required_documents),
        "documents": [
            {
                "id": str(ref.id),
                "kind": ref.kind,
                "content_type": ref.content_type,
                "size": ref.size,
                "sha256": ref.sha256,
                "download": {"reference": token, "expires_at": _iso(expires)},
            }
            for ref, token, expires in documents
        ],
        "answer_to": answer_path,
    }


class PackageInvalid(Exception):
    pass


def verify_package(token: str, jwks: Mapping[str, Any], *, audience: str) -> dict[str, Any]:
    """The package's document if ``token`` is signed by a key of ``jwks`` (the published key
    set's JSON, as served) for ``audience``; PackageInvalid otherwise. No database, no
    network: what the authority does on receipt."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise PackageInvalid(f"not a signed package: {error}") from None
    if header.get("alg") != ALGORITHM:
        raise PackageInvalid(f"algorithm {header.get('alg')!r} is not {ALGORITHM}")
    keys = {k.get("kid"): k for k in jwks.get("keys", []) if isinstance(k, Mapping)}
    kid = header.get("kid")
    if not isinstance(kid, str) or kid not in keys:
        raise PackageInvalid("signed by a key that is not published")
    try:
        key = jwt.PyJWK.from_dict(dict(keys[kid]), algorithm=ALGORITHM)
        found: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[ALGORITHM],
            audience=audience,
            options={"require": ["jti", "iat", "iss", "aud"]},
        )
    except jwt.PyJWTError as error:
        raise PackageInvalid(f"not a valid package: {error}") from None
    if found.get("format") != FORMAT:
        raise PackageInvalid("not a hand-over package")
    return found
