"""Awareness subscribers in plain Python: addresses, the consent text, the secrets of
the confirmation and unsubscribe links."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Literal
from uuid import UUID

import phonenumbers
from email_validator import EmailNotValidError, validate_email

Channel = Literal["email", "sms"]

# The consent text a subscriber accepts, by version (the request names the version it
# showed; only the current one is accepted). Kept with the subscription and its events.
CONSENT_TEXTS: dict[str, dict[str, str]] = {
    "2026-12": {
        "fr": (
            "J'accepte que le Ministère chargé des Togolais de l'extérieur m'envoie, à "
            "l'adresse ou au numéro indiqué, des messages de sensibilisation sur la "
            "migration et les avis aux travailleurs migrants des pays choisis. Je peux me "
            "désinscrire à tout moment par le lien de chaque message (loi n°2019-014)."
        ),
        "en": (
            "I agree that the Ministry for Togolese Abroad sends me, at the address or "
            "number given, migration awareness messages and the advisories for migrant "
            "workers of the countries I chose. I may unsubscribe at any time with the link "
            "in every message (law no. 2019-014)."
        ),
    }
}
CURRENT_CONSENT_VERSION = "2026-12"


class InvalidAddress(ValueError):
    pass


def normalise_address(channel: Channel, address: str) -> str:
    """The address as it is kept: an email in lower case, a phone number in E.164."""
    value = address.strip()
    if channel == "email":
        try:
            checked = validate_email(value, check_deliverability=False)
        except EmailNotValidError as error:
            raise InvalidAddress(f"not an email address: {error}") from None
        return checked.normalized.lower()
    try:
        parsed = phonenumbers.parse(value, "TG")
    except phonenumbers.NumberParseException as error:
        raise InvalidAddress(f"not a phone number: {error}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidAddress("not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def digest(*parts: str) -> str:
    """SHA-256 of the parts (an address, a client address, a token): what is kept of
    what needs no reading back."""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def new_confirm_token() -> str:
    """A single-use confirmation secret (only its digest is stored)."""
    return secrets.token_urlsafe(32)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _mac(key: bytes, subscriber_id: UUID) -> bytes:
    return hmac.new(key, b"unsubscribe|" + subscriber_id.bytes, hashlib.sha256).digest()


def unsubscribe_token(key: bytes, subscriber_id: UUID) -> str:
    """The signed token of the subscriber's one-step unsubscribe link (no login): the
    subscription id and an HMAC-SHA256 of it under the service's key."""
    return f"{_b64(subscriber_id.bytes)}.{_b64(_mac(key, subscriber_id))}"


def verify_unsubscribe_token(key: bytes, token: str) -> UUID | None:
    """The subscription id the token was signed for, or None (forged, damaged)."""
    try:
        raw_id, raw_mac = token.split(".", 1)
        subscriber_id = UUID(bytes=base64.urlsafe_b64decode(raw_id + "=" * (-len(raw_id) % 4)))
        mac = base64.urlsafe_b64decode(raw_mac + "=" * (-len(raw_mac) % 4))
    except (ValueError, TypeError):
        return None
    return subscriber_id if hmac.compare_digest(mac, _mac(key, subscriber_id)) else None
