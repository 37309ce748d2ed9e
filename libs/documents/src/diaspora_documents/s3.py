"""The object store on an S3-compatible server (production: any S3 API; tests: SeaweedFS).

aiobotocore (botocore's signing, retries and error model over aiohttp) keeps the event
loop free while bytes move. Objects are ``<key_prefix><key>`` in one bucket, with
their content type and ``x-amz-meta-sha256``.

A put streams: up to ``part_size`` bytes are held in memory at a time. An object that
fits in one part is one ``PutObject``; a larger one is a multipart upload, completed
only once every byte has arrived and the checksum is right (aborted otherwise, so no
object appears). S3 sets an object's metadata when the upload starts, before the
SHA-256 of a stream is known: when the caller passes it (a checked upload knows it,
:mod:`diaspora_documents.checks`), the upload goes straight to the key; when not, it
goes to a temporary key, then is copied server-side onto the key with its checksum (one
atomic replacement) and the temporary object is deleted.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterable, AsyncIterator
from typing import TYPE_CHECKING, Any

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from diaspora_documents.settings import S3Settings
from diaspora_documents.store import (
    READ_CHUNK,
    ChecksumMismatch,
    Digest,
    ObjectNotFound,
    ObjectStream,
    StoredObject,
    StoreUnavailable,
    check_key,
    check_sha256,
)

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_INCOMING = ".incoming/"


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _not_found(error: ClientError) -> bool:
    return _code(error) in _NOT_FOUND


class S3ObjectStore:
    """:class:`diaspora_documents.store.ObjectStore` on S3 (see the module). Create it with
    :meth:`open` and :meth:`close` it."""

    def __init__(self, client: S3Client, settings: S3Settings, stack: contextlib.AsyncExitStack):
        self._client = client
        self.settings = settings
        self.bucket = settings.bucket
        self._stack = stack

    @classmethod
    async def open(cls, settings: S3Settings) -> S3ObjectStore:
        stack = contextlib.AsyncExitStack()
        config = AioConfig(
            signature_version="s3v4",
            s3={"addressing_style": settings.addressing_style},
            retries={"max_attempts": settings.max_attempts, "mode": "standard"},
            connect_timeout=settings.connect_timeout_seconds,
            read_timeout=settings.read_timeout_seconds,
            # botocore's default CRC32 on every PutObject and UploadPart is a newer S3
            # feature some compatible servers refuse; the SHA-256 here is the checksum.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        client = await stack.enter_async_context(
            get_session().create_client(
                "s3",
                endpoint_url=settings.endpoint_url,
                region_name=settings.region,
                aws_access_key_id=settings.access_key_id,
                aws_secret_access_key=(
                    settings.secret_access_key.get_secret_value()
                    if settings.secret_access_key is not None
                    else None
                ),
                config=config,
            )
        )
        return cls(client, settings, stack)

    async def close(self) -> None:
        await self._stack.aclose()

    def _name(self, key: str) -> str:
        return self.settings.key_prefix + check_key(key)

    async def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist (development and tests; in production the
        bucket, its encryption and its access policy are the operators')."""
        try:
            try:
                await self._client.head_bucket(Bucket=self.bucket)
                return
            except ClientError as error:
                if not _not_found(error) and _code(error) != "NoSuchBucket":
                    raise
            try:
                await self._client.create_bucket(Bucket=self.bucket)
            except ClientError as error:
                if _code(error) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                    raise
        except (ClientError, BotoCoreError) as error:
            raise StoreUnavailable(f"bucket {self.bucket!r}: {error}") from error

    async def put(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str,
        sha256: str | None = None,
    ) -> StoredObject:
        name = self._name(key)
        expected = check_sha256(sha256)
        part_size = self.settings.part_size
        digest = Digest()
        buffer = bytearray()
        stream = aiter(chunks)
        try:
            # The first part decides: everything fits in it (one PutObject) or not.
            while len(buffer) < part_size:
                chunk = await anext(stream, None)
                if chunk is None:
                    break
                digest.update(chunk)
                buffer += chunk
            else:
                return await self._put_multipart(
                    key, name, stream, buffer, digest, content_type, expected
                )
            actual = digest.hexdigest()
            if expected is not None and actual != expected:
                raise ChecksumMismatch(key, expected, actual)
            await self._client.put_object(
                Bucket=self.bucket,
                Key=name,
                Body=bytes(buffer),
                ContentType=content_type,
                Metadata={"sha256": actual},
            )
            return StoredObject(key, digest.size, content_type, actual)
        except (ClientError, BotoCoreError) as error:
            raise StoreUnavailable(f"put {key!r}: {error}") from error

    async def _put_multipart(
        self,
        key: str,
        name: str,
        stream: AsyncIterator[bytes],
        buffer: bytearray,
        digest: Digest,
        content_type: str,
        expected: str | None,
    ) -> StoredObject:
        part_size = self.settings.part_size
        target = name if expected is not None else self._incoming()
        metadata = {"sha256": expected} if expected is not None else {}
        upload = await self._client.create_multipart_upload(
            Bucket=self.bucket, Key=target, ContentType=content_type, Metadata=metadata
        )
        upload_id = upload["UploadId"]
        parts: list[dict[str, Any]] = []
        completed = False
        try:

            async def send(data: bytes) -> None:
                number = len(parts) + 1
                answer = await self._client.upload_part(
                    Bucket=self.bucket, Key=target, UploadId=upload_id, PartNumber=number, Body=data
                )
                parts.append({"PartNumber": number, "ETag": answer["ETag"]})

            async for chunk in stream:
                digest.update(chunk)
                buffer += chunk
                while len(buffer) >= part_size:
                    await send(bytes(buffer[:part_size]))
                    del buffer[:part_size]
            if buffer or not parts:
                await send(bytes(buffer))
            actual = digest.hexdigest()
            if expected is not None and actual != expected:
                raise ChecksumMismatch(key, expected, actual)
            await self._client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=target,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
            )
            completed = True
        finally:
            if not completed:
                with contextlib.suppress(ClientError, BotoCoreError):
                    await self._client.abort_multipart_upload(
                        Bucket=self.bucket, Key=target, UploadId=upload_id
                    )
        if target != name:
            try:
                await self._client.copy_object(
                    Bucket=self.bucket,
                    Key=name,
                    CopySource={"Bucket": self.bucket, "Key": target},
                    MetadataDirective="REPLACE",
                    ContentType=content_type,
                    Metadata={"sha256": actual},
                )
            finally:
                with contextlib.suppress(ClientError, BotoCoreError):
                    await self._client.delete_object(Bucket=self.bucket, Key=target)
        return StoredObject(key, digest.size, content_type, actual)

    def _incoming(self) -> str:
        return self.settings.key_prefix + _INCOMING + secrets.token_hex(16)

    async def get(self, key: str) -> ObjectStream:
        name = self._name(key)
        try:
            answer = await self._client.get_object(Bucket=self.bucket, Key=name)
        except ClientError as error:
            if _not_found(error):
                raise ObjectNotFound(key) from None
            raise StoreUnavailable(f"get {key!r}: {error}") from error
        except BotoCoreError as error:
            raise StoreUnavailable(f"get {key!r}: {error}") from error
        info = StoredObject(
            key,
            int(answer["ContentLength"]),
            answer.get("ContentType", "application/octet-stream"),
            answer.get("Metadata", {}).get("sha256", ""),
        )
        return ObjectStream(info, _body(answer["Body"], key))

    async def stat(self, key: str) -> StoredObject:
        name = self._name(key)
        try:
            answer = await self._client.head_object(Bucket=self.bucket, Key=name)
        except ClientError as error:
            if _not_found(error):
                raise ObjectNotFound(key) from None
            raise StoreUnavailable(f"stat {key!r}: {error}") from error
        except BotoCoreError as error:
            raise StoreUnavailable(f"stat {key!r}: {error}") from error
        return StoredObject(
            key,
            int(answer["ContentLength"]),
            answer.get("ContentType", "application/octet-stream"),
            answer.get("Metadata", {}).get("sha256", ""),
        )

    async def exists(self, key: str) -> bool:
        try:
            await self.stat(key)
        except ObjectNotFound:
            return False
        return True

    async def delete(self, key: str) -> bool:
        # S3's DeleteObject succeeds whether or not the key exists: ask first.
        existed = await self.exists(key)
        try:
            await self._client.delete_object(Bucket=self.bucket, Key=self._name(key))
        except (ClientError, BotoCoreError) as error:
            raise StoreUnavailable(f"delete {key!r}: {error}") from error
        return existed


async def _body(body: Any, key: str) -> AsyncIterator[bytes]:
    try:
        while chunk := await body.read(READ_CHUNK):
            yield chunk
    except (aiohttp.ClientError, BotoCoreError, TimeoutError) as error:
        raise StoreUnavailable(
            f"get {key!r}: the connection broke while reading: {error}"
        ) from error
    finally:
        body.close()
