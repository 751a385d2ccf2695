"""Stream one S3 object: GetObject, then the body in fixed-size chunks, never the whole object at once."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

CHUNK_SIZE = 1024 * 1024

_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "NoSuchBucket", "404", "NotFound"})
_ACCESS_CODES = frozenset({"AccessDenied", "403", "Forbidden", "AllAccessDisabled"})


class S3Client(Protocol):
    def get_object(self, **kwargs: Any) -> Any: ...


class SourceError(Exception):
    """The object could not be read; the message names s3://bucket/key and what to check."""


class ObjectNotFoundError(SourceError):
    pass


class ObjectAccessError(SourceError):
    pass


class ObjectReadError(SourceError):
    """A transient failure while reading (network, throttling): the retry will probably succeed."""


class ObjectCorruptError(SourceError):
    """A .gz object's bytes are not valid gzip: not gzip at all, corrupt, cut short or followed by more."""


class ObjectChangedError(SourceError):
    """The object no longer has the ETag a work item names: it was overwritten, so it is not resumed."""


@dataclass(frozen=True, slots=True)
class S3Object:
    bucket: str
    key: str
    etag: str
    size: int | None
    chunks: Iterator[bytes]
    version_id: str | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def open_object(
    s3: S3Client,
    bucket: str,
    key: str,
    *,
    version_id: str | None = None,
    if_match: str | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> S3Object:
    """Start a GetObject and return its ETag (quotes stripped) and a chunk iterator over the body.

    ``if_match``: the ETag the object must still have; S3 answers 412 PreconditionFailed before sending a
    byte when it has another (ObjectChangedError).
    """
    uri = f"s3://{bucket}/{key}"
    params: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version_id:
        params["VersionId"] = version_id
    if if_match:
        params["IfMatch"] = f'"{if_match}"'
    try:
        response = s3.get_object(**params)
    except ClientError as exc:
        if if_match and exc.response.get("Error", {}).get("Code") == "PreconditionFailed":
            raise ObjectChangedError(f"{uri} no longer has ETag {if_match}: it was overwritten") from exc
        raise _translate(exc, uri) from exc
    except BotoCoreError as exc:
        raise ObjectReadError(f"could not read {uri}: {exc}") from exc
    body = response["Body"]
    etag = str(response.get("ETag", "")).strip('"')
    size = response.get("ContentLength")
    return S3Object(
        bucket=bucket,
        key=key,
        etag=etag,
        size=size if isinstance(size, int) else None,
        chunks=_chunks(body, uri, chunk_size),
        # Set when the bucket is versioned: a continuation then reads this very version.
        version_id=response.get("VersionId") or None,
    )


def _chunks(body: Any, uri: str, chunk_size: int) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(chunk_size)
    except BotoCoreError as exc:
        # ReadTimeoutError, ResponseStreamingError, IncompleteReadError: the connection broke mid-object.
        raise ObjectReadError(f"reading {uri} failed part-way: {exc}") from exc
    finally:
        body.close()


def _translate(exc: ClientError, uri: str) -> SourceError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = str(error.get("Message", ""))
    if code in _NOT_FOUND_CODES:
        return ObjectNotFoundError(
            f"{uri} does not exist ({code}): it may have been deleted or expired by a lifecycle rule "
            "before it was read; check the bucket and key, and the bucket's lifecycle rules"
        )
    if code in _ACCESS_CODES:
        return ObjectAccessError(
            f"access denied reading {uri} ({code}: {message}); check that the forwarder role may "
            "s3:GetObject under this prefix (it may read only the log prefix it was set up for), that "
            "the bucket policy does not deny it, and that the bucket uses SSE-S3 (not an SSE-KMS key "
            "the role cannot use)"
        )
    if code.startswith("KMS."):  # KMS.AccessDeniedException, KMS.DisabledException, ...
        return ObjectAccessError(
            f"cannot decrypt {uri} ({code}: {message}); the object is encrypted with a KMS key the "
            "forwarder role may not use; ALB access logs need SSE-S3 buckets"
        )
    return ObjectReadError(f"could not read {uri} ({code}: {message})")
