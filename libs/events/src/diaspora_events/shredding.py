"""Crypto-shredding: the personal fields of events sealed with a data key per person.

Every contract with fields marked :func:`~diaspora_events.contracts.base.personal` names
its *subject* (``contract(..., subject="member_id")``): the person those fields are
about. Before an event leaves its service (when it is written to the outbox), its
personal fields are taken out of the data and replaced by one member::

    "_sealed": {"alg": "A256GCM", "sub": "<subject id or null>",
                "iv": "<base64 96-bit nonce>", "ct": "<base64 ciphertext and tag>"}

``ct`` is AES-256-GCM of the JSON object of the personal fields, under the subject's
data key (DEK: 256 random bits), with associated data ``"{ce_id}|{ce_type}|{version}|
{sub}"``: a ciphertext moved to another event, type or person does not open. The DEKs
live with the registry (the owner of persons), wrapped by a key-encryption key
(:class:`KeyEncryptionKey`: a local file in development, HashiCorp Vault's Transit
engine in production). Erasing a person destroys their DEK: every copy of their
events (topics, dead-letter topics, outbox rows, backups) becomes unreadable at once.

An event whose subject is absent (an erased expert's cancelled mission) or already
erased is sealed with a throwaway key that is never stored: unreadable by construction.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal, Protocol, Self
from uuid import UUID

import httpx
import pydantic_core
import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from diaspora_events.cloudevents import Envelope
from diaspora_events.contracts.base import Event

log = structlog.get_logger(__name__)

SEALED = "_sealed"
ALGORITHM = "A256GCM"
DEK_BYTES = 32
_NONCE_BYTES = 12
# Associated data of a wrapped DEK (local KEK): a wrapped DEK opens only as a DEK.
DEK_WRAP_AAD = b"diaspora-dek"
DEV_TOKEN_URL = "http://127.0.0.1:8090/dev-idp/token"  # noqa: S105 - a URL
DEV_KEYS_URL = "http://127.0.0.1:8101"


class KeyServiceUnavailable(RuntimeError):
    """The key service (or the KEK behind it) did not answer: try again later."""


class SealBroken(ValueError):
    """Sealed data that does not open with its subject's key (tampered or moved)."""


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def associated_data(event_id: str, event_type: str, version: int, subject: str | None) -> bytes:
    return f"{event_id}|{event_type}|{version}|{subject or ''}".encode()


def subject_of(contract: type[Event], data: Mapping[str, Any]) -> UUID | None:
    field = contract.subject_field
    value = data.get(field) if field else None
    if value is None:
        return None
    return value if isinstance(value, UUID) else UUID(str(value))


def needs_sealing(contract: type[Event]) -> bool:
    return bool(contract.personal_fields())


def seal(
    data: dict[str, Any],
    contract: type[Event],
    *,
    event_id: str,
    data_key: bytes | None,
) -> dict[str, Any]:
    """``data`` (the event's JSON object) with its personal fields sealed.

    ``data_key``: the subject's DEK; None (subject absent or erased) seals with a
    throwaway key nobody keeps.
    """
    personal = contract.personal_fields()
    if not personal:
        return data
    clear = {name: value for name, value in data.items() if name not in personal}
    secret = {name: data[name] for name in personal if name in data}
    plaintext = json.dumps(secret, separators=(",", ":"), ensure_ascii=False).encode()
    return seal_parts(
        clear,
        plaintext,
        contract,
        event_id=event_id,
        subject=subject_of(contract, data),
        data_key=data_key,
    )


def seal_event(event: Event, *, event_id: str, data_key: bytes | None) -> dict[str, Any]:
    """:func:`seal` of a model: its personal part serialised by pydantic (in Rust)."""
    contract = type(event)
    personal = contract.personal_fields()
    clear = event.model_dump(mode="json", exclude=set(personal))
    plaintext = event.model_dump_json(include=set(personal)).encode()
    return seal_parts(
        clear,
        plaintext,
        contract,
        event_id=event_id,
        subject=subject_of(contract, event.__dict__),
        data_key=data_key,
    )


def seal_parts(
    clear: dict[str, Any],
    plaintext: bytes,
    contract: type[Event],
    *,
    event_id: str,
    subject: UUID | None,
    data_key: bytes | None,
) -> dict[str, Any]:
    """``clear`` plus the ``_sealed`` member holding ``plaintext`` (the personal fields'
    JSON object) sealed for ``subject``."""
    sub = str(subject) if subject is not None else None
    key = data_key if (data_key is not None and sub is not None) else new_data_key()
    nonce = os.urandom(_NONCE_BYTES)
    ciphertext = AESGCM(key).encrypt(
        nonce,
        plaintext,
        associated_data(event_id, contract.event_type, contract.event_version, sub),
    )
    clear[SEALED] = {
        "alg": ALGORITHM,
        "sub": sub,
        "iv": base64.b64encode(nonce).decode(),
        "ct": base64.b64encode(ciphertext).decode(),
    }
    return clear


def seal_json(
    value: bytes, contract: type[Event], *, event_id: str, data_key: bytes | None
) -> bytes:
    """:func:`seal` on a serialised event (the bulk import's path): parsed and written
    again by pydantic-core (Rust), the personal part as one JSON text."""
    data = pydantic_core.from_json(value)
    personal = contract.personal_fields()
    clear = {name: v for name, v in data.items() if name not in personal}
    secret = {name: data[name] for name in personal if name in data}
    sealed = seal_parts(
        clear,
        pydantic_core.to_json(secret),
        contract,
        event_id=event_id,
        subject=subject_of(contract, data),
        data_key=data_key,
    )
    return pydantic_core.to_json(sealed)


def is_sealed(data: Mapping[str, Any]) -> bool:
    return isinstance(data.get(SEALED), dict)


def sealed_subject(data: Mapping[str, Any]) -> UUID | None:
    """The subject whose key opens the sealed data (None: nobody's, never readable)."""
    sub = data[SEALED].get("sub")
    return UUID(sub) if sub else None


def unseal(
    data: Mapping[str, Any],
    *,
    event_id: str,
    event_type: str,
    version: int,
    data_key: bytes,
) -> dict[str, Any]:
    """The event's data with its personal fields back (raises :class:`SealBroken`)."""
    sealed = data[SEALED]
    try:
        nonce = base64.b64decode(sealed["iv"])
        ciphertext = base64.b64decode(sealed["ct"])
        plaintext = AESGCM(data_key).decrypt(
            nonce, ciphertext, associated_data(event_id, event_type, version, sealed.get("sub"))
        )
        secret = json.loads(plaintext)
    except (InvalidTag, KeyError, ValueError, TypeError) as error:
        raise SealBroken(f"sealed data does not open ({type(error).__name__})") from None
    if not isinstance(secret, dict):
        raise SealBroken("sealed data is not a JSON object")
    opened = {name: value for name, value in data.items() if name != SEALED}
    opened.update(secret)
    return opened


def unseal_envelope(envelope: Envelope, data_key: bytes) -> Envelope:
    """The envelope with its personal fields opened (raises :class:`SealBroken`)."""
    data = unseal(
        envelope.data,
        event_id=str(envelope.id),
        event_type=envelope.type,
        version=envelope.version,
        data_key=data_key,
    )
    return replace(envelope, data=data)


async def open_envelopes(
    envelopes: Sequence[Envelope], keys: DataKeySource | None
) -> list[Envelope | None]:
    """``envelopes`` with their personal fields opened, the keys of the whole batch asked
    for at once (a replay from offset 0: one lookup per batch, not per record); None for
    a sealed one that cannot be read: its person erased, no subject, no ``keys``, or a
    seal that does not open. Raises :class:`KeyServiceUnavailable`."""
    subjects = {
        s for e in envelopes if is_sealed(e.data) and (s := sealed_subject(e.data)) is not None
    }
    found = await keys.data_keys(subjects) if subjects and keys is not None else {}
    opened: list[Envelope | None] = []
    for envelope in envelopes:
        if not is_sealed(envelope.data):
            opened.append(envelope)
            continue
        subject = sealed_subject(envelope.data)
        key = found.get(subject) if subject is not None else None
        try:
            opened.append(unseal_envelope(envelope, key) if key is not None else None)
        except SealBroken:
            log.warning("sealed_event_does_not_open", event_id=str(envelope.id))
            opened.append(None)
    return opened


def personal_texts(data: Any) -> set[str]:
    """Every text of an opened event's personal part (to scrub from error messages)."""
    found: set[str] = set()
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if len(item) >= 3:
                found.add(item)
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return found


def scrub(text: str, secrets: Collection[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


# --- Key-encryption keys -------------------------------------------------------------


class KeyEncryptionKey(Protocol):
    """Wraps and unwraps data keys; the key itself never leaves it (Vault) or its file."""

    @property
    def kek_id(self) -> str: ...

    async def wrap(self, data_keys: Sequence[bytes]) -> list[bytes]: ...

    async def unwrap(self, wrapped: Sequence[bytes]) -> list[bytes]: ...


class LocalFileKek:
    """DEVELOPMENT: a 256-bit key in a file (created with mode 0600 when absent)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._key = self._load_or_create(path)
        import hashlib

        self._id = "local:" + hashlib.sha256(self._key).hexdigest()[:16]

    @staticmethod
    def _load_or_create(path: Path) -> bytes:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            key = path.read_bytes()
            if len(key) != DEK_BYTES:
                raise ValueError(f"{path}: a key-encryption key is {DEK_BYTES} bytes") from None
            return key
        key = new_data_key()
        with os.fdopen(fd, "wb") as file:
            file.write(key)
        return key

    @property
    def kek_id(self) -> str:
        return self._id

    async def wrap(self, data_keys: Sequence[bytes]) -> list[bytes]:
        aead = AESGCM(self._key)
        out = []
        for dek in data_keys:
            nonce = os.urandom(_NONCE_BYTES)
            out.append(nonce + aead.encrypt(nonce, dek, DEK_WRAP_AAD))
        return out

    async def unwrap(self, wrapped: Sequence[bytes]) -> list[bytes]:
        aead = AESGCM(self._key)
        return [aead.decrypt(w[:_NONCE_BYTES], w[_NONCE_BYTES:], DEK_WRAP_AAD) for w in wrapped]


class VaultTransitKek:
    """PRODUCTION: HashiCorp Vault's Transit secrets engine wraps the DEKs
    (``POST /v1/{mount}/encrypt/{key}`` and ``/decrypt/{key}``, ``batch_input``); the KEK
    never leaves Vault. A wrapped DEK is Vault's ciphertext text (``vault:v1:...``)."""

    def __init__(
        self,
        *,
        address: str,
        token: str,
        key_name: str,
        mount: str = "transit",
        client: httpx.AsyncClient | None = None,
        timeout: float = 5.0,
    ) -> None:
        self._base = f"{address.rstrip('/')}/v1/{mount}"
        self._key_name = key_name
        self._id = f"vault-transit:{mount}/{key_name}"
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._headers = {"X-Vault-Token": token}

    @property
    def kek_id(self) -> str:
        return self._id

    async def _batch(self, operation: str, items: list[dict[str, str]]) -> list[dict[str, Any]]:
        url = f"{self._base}/{operation}/{self._key_name}"
        try:
            response = await self._client.post(
                url, json={"batch_input": items}, headers=self._headers
            )
        except httpx.HTTPError as error:
            raise KeyServiceUnavailable(f"vault {operation}: {type(error).__name__}") from None
        if response.status_code != 200:
            raise KeyServiceUnavailable(f"vault {operation}: HTTP {response.status_code}")
        results: list[dict[str, Any]] = response.json()["data"]["batch_results"]
        if len(results) != len(items) or any("error" in r and r["error"] for r in results):
            raise KeyServiceUnavailable(f"vault {operation}: a batch item failed")
        return results

    async def wrap(self, data_keys: Sequence[bytes]) -> list[bytes]:
        if not data_keys:
            return []
        items = [{"plaintext": base64.b64encode(k).decode()} for k in data_keys]
        return [r["ciphertext"].encode() for r in await self._batch("encrypt", items)]

    async def unwrap(self, wrapped: Sequence[bytes]) -> list[bytes]:
        if not wrapped:
            return []
        items = [{"ciphertext": w.decode()} for w in wrapped]
        return [base64.b64decode(r["plaintext"]) for r in await self._batch("decrypt", items)]


# --- Settings -------------------------------------------------------------------------


class EventKeySettings(BaseSettings):
    """Crypto-shredding settings, read with the service's prefix (``REGISTRY_EVENT_KEK``,
    ``MATCHING_EVENT_KEYS_URL``...): ``EventKeySettings(_env_prefix="MATCHING_")``."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    environment: Literal["development", "test", "production"] = "development"
    # Off only to measure what sealing costs (bench/crypto_shredding.py); refused in production.
    event_encryption: bool = True
    # The registry's key-encryption key.
    event_kek: Literal["local", "vault"] = "local"
    event_kek_file: Path = Path(".local/secrets/event-kek.key")
    event_vault_address: str | None = None
    event_vault_token: SecretStr | None = None
    event_vault_transit_mount: str = "transit"
    event_vault_transit_key: str = "diaspora-events"
    # Other services: the registry's internal key endpoint and their client credentials.
    event_keys_url: str = DEV_KEYS_URL
    event_keys_token_url: str = DEV_TOKEN_URL
    event_keys_client_id: str | None = None
    event_keys_client_secret: SecretStr | None = None
    event_keys_cache_ttl_seconds: float = 300.0
    event_keys_cache_size: int = 10_000
    event_keys_timeout_seconds: float = 5.0

    @model_validator(mode="after")
    def _production(self) -> Self:
        if self.environment != "production":
            return self
        if not self.event_encryption:
            raise ValueError("production mode refuses events without crypto-shredding")
        return self

    def kek(self) -> KeyEncryptionKey:
        """The registry's key-encryption key (the only service that holds one)."""
        if self.environment == "production" and self.event_kek == "local":
            raise ValueError("production mode refuses the local key-encryption key file")
        if self.event_kek == "vault":
            if not self.event_vault_address or self.event_vault_token is None:
                raise ValueError("EVENT_VAULT_ADDRESS and EVENT_VAULT_TOKEN are required")
            return VaultTransitKek(
                address=self.event_vault_address,
                token=self.event_vault_token.get_secret_value(),
                key_name=self.event_vault_transit_key,
                mount=self.event_vault_transit_mount,
            )
        return LocalFileKek(self.event_kek_file)

    def client_credentials(self, client: str) -> ClientCredentials:
        client_id = self.event_keys_client_id or client
        if self.event_keys_client_secret is not None:
            secret = self.event_keys_client_secret.get_secret_value()
        elif self.environment == "production":
            raise ValueError("EVENT_KEYS_CLIENT_SECRET is required in production")
        else:
            secret = f"dev-only-{client_id}"  # the development IdP's clients
        return ClientCredentials(
            self.event_keys_token_url,
            client_id,
            secret,
            timeout=self.event_keys_timeout_seconds,
        )

    def resolver(self, client: str, *, ttl: float | None = None) -> KeyResolver | None:
        """The key resolver of a service other than the registry (over HTTP), None when
        event encryption is off; ``ttl`` 0 keeps no live key between calls (writers in
        API processes, which never see ``registry.member.erased``)."""
        if not self.event_encryption:
            return None
        fetch = HttpKeyFetcher(
            self.event_keys_url,
            self.client_credentials(client),
            timeout=self.event_keys_timeout_seconds,
        )
        return KeyResolver(
            fetch,
            ttl=self.event_keys_cache_ttl_seconds if ttl is None else ttl,
            max_entries=self.event_keys_cache_size,
        )


def event_key_settings(prefix: str) -> EventKeySettings:
    return EventKeySettings(_env_prefix=f"{prefix.upper()}_")


# --- Tokens and the key service's client ----------------------------------------------


class ClientCredentials:
    """OAuth2 client-credentials tokens (RFC 6749 4.4), kept until shortly before expiry."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        timeout: float = 5.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._url = token_url
        self._auth = (client_id, client_secret)
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def token(self, *, renew: bool = False) -> str:
        async with self._lock:
            if self._token and not renew and time.monotonic() < self._expires:
                return self._token
            try:
                response = await self._client.post(
                    self._url, data={"grant_type": "client_credentials"}, auth=self._auth
                )
            except httpx.HTTPError as error:
                raise KeyServiceUnavailable(f"token endpoint: {type(error).__name__}") from None
            if response.status_code != 200:
                raise KeyServiceUnavailable(f"token endpoint: HTTP {response.status_code}")
            body = response.json()
            self._token = str(body["access_token"])
            self._expires = time.monotonic() + max(float(body.get("expires_in", 60)) - 30, 5)
            return self._token


Fetch = Callable[[list[UUID]], Awaitable[Mapping[UUID, bytes | None]]]


class HttpKeyFetcher:
    """Asks the registry's ``POST /internal/keys`` (service role only) for data keys."""

    BATCH = 500

    def __init__(
        self,
        base_url: str,
        tokens: ClientCredentials,
        *,
        timeout: float = 5.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._url = base_url.rstrip("/") + "/internal/keys"
        self._tokens = tokens
        self._client = client or httpx.AsyncClient(timeout=timeout)

    async def __call__(self, subjects: list[UUID]) -> dict[UUID, bytes | None]:
        found: dict[UUID, bytes | None] = {}
        for start in range(0, len(subjects), self.BATCH):
            found.update(await self._batch(subjects[start : start + self.BATCH]))
        return found

    async def _batch(self, subjects: list[UUID]) -> dict[UUID, bytes | None]:
        body = {"subject_ids": [str(s) for s in subjects]}
        for renew in (False, True):
            token = await self._tokens.token(renew=renew)
            try:
                response = await self._client.post(
                    self._url, json=body, headers={"Authorization": f"Bearer {token}"}
                )
            except httpx.HTTPError as error:
                raise KeyServiceUnavailable(f"key service: {type(error).__name__}") from None
            if response.status_code == 401 and not renew:
                continue
            if response.status_code != 200:
                raise KeyServiceUnavailable(f"key service: HTTP {response.status_code}")
            return {
                UUID(item["subject_id"]): (
                    base64.b64decode(item["dek"]) if item["status"] == "active" else None
                )
                for item in response.json()["keys"]
            }
        raise KeyServiceUnavailable("key service: token refused")  # pragma: no cover


class DataKeySource(Protocol):
    """Where an outbox writer gets the DEKs of the events' subjects (None: erased)."""

    async def data_keys(
        self, subjects: Collection[UUID], session: Any = None
    ) -> Mapping[UUID, bytes | None]: ...


class KeyResolver:
    """Data keys by subject, with a bounded cache: live keys for ``ttl`` seconds, "gone"
    answers until evicted (an erasure is final). ``forget`` drops a subject at once (on
    ``registry.member.erased``). ``fetch`` raises :class:`KeyServiceUnavailable` when the
    key service is down; :attr:`unavailable_since` then says so to readiness."""

    def __init__(
        self,
        fetch: Fetch,
        *,
        ttl: float = 300.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._cache: OrderedDict[UUID, tuple[float, bytes | None]] = OrderedDict()
        self.unavailable_since: float | None = None
        self.fetches = 0

    def __len__(self) -> int:
        return len(self._cache)

    def cached(self, subject: UUID) -> bytes | None:
        entry = self._cache.get(subject)
        return entry[1] if entry else None

    def forget(self, subject: UUID) -> None:
        """The subject was erased: its key leaves the cache and reads as gone from now on."""
        self._cache.pop(subject, None)
        self._put(subject, None)

    def _put(self, subject: UUID, key: bytes | None) -> None:
        if key is not None and self._ttl <= 0:
            # No cache of live keys (writers in API processes): none stays in memory.
            self._cache.pop(subject, None)
            return
        expires = float("inf") if key is None else self._clock() + self._ttl
        self._cache[subject] = (expires, key)
        self._cache.move_to_end(subject)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)

    async def data_keys(
        self, subjects: Collection[UUID], session: Any = None
    ) -> dict[UUID, bytes | None]:
        now = self._clock()
        found: dict[UUID, bytes | None] = {}
        missing: list[UUID] = []
        for subject in dict.fromkeys(subjects):
            entry = self._cache.get(subject)
            if entry is not None and entry[0] > now:
                self._cache.move_to_end(subject)
                found[subject] = entry[1]
            else:
                missing.append(subject)
        if missing:
            try:
                fetched = await self._fetch(missing)
            except KeyServiceUnavailable:
                if self.unavailable_since is None:
                    self.unavailable_since = self._clock()
                raise
            self.fetches += 1
            self.unavailable_since = None
            for subject in missing:
                key = fetched.get(subject)
                self._put(subject, key)
                found[subject] = key
        return found

    async def available(self) -> bool:
        """Readiness: False while the last fetch failed."""
        return self.unavailable_since is None
