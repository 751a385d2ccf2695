"""Credentials for the ingest endpoint: fetched by reference on first use, cached for a while, refreshable.

A Secrets Manager secret or an SSM parameter holds either the credential itself, or a JSON object with the
credential under one of the keys in ``CREDENTIAL_KEYS`` (the first key present wins; the key named after
the auth type is looked at first: ``token`` for bearer and splunk, ``password`` for basic, ``apikey`` for
apikey).
A value that cannot be sent (a line break, a control character, or for a header carried as is a character
outside Latin-1) is refused as soon as it is fetched, by position, never by value.
``aws_sigv4`` needs no stored credential: ``RequestSigner`` signs each request with the role's credentials.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import BotoCoreError, ClientError

from forwarder.config import (
    AUTH_APIKEY,
    AUTH_BASIC,
    AUTH_BEARER,
    AUTH_NONE,
    AUTH_SIGV4,
    AUTH_SPLUNK,
    AUTH_WITHOUT_CREDENTIAL,
    Config,
)

logger = logging.getLogger(__name__)

CREDENTIAL_KEYS = ("credentials", "password", "token", "apikey", "api_key", "value")
_PREFERRED_KEY = {AUTH_BEARER: "token", AUTH_BASIC: "password", AUTH_APIKEY: "apikey", AUTH_SPLUNK: "token"}


class CredentialError(Exception):
    """The credential could not be fetched or understood; never carries the credential itself."""


class CredentialSource(Protocol):
    """Where the credential lives; ``fetch`` returns its current value."""

    description: str
    by_reference: bool

    def fetch(self) -> str: ...


class PlainCredential:
    """The value from HTTP_AUTH_CREDENTIALS (discouraged: it sits in the function's environment)."""

    description = "HTTP_AUTH_CREDENTIALS"
    by_reference = False

    __slots__ = ("_auth_type", "_value")

    def __init__(self, value: str, auth_type: str) -> None:
        self._value = value
        self._auth_type = auth_type

    def fetch(self) -> str:
        return check_sendable(self._value, self._auth_type, self.description)

    def __repr__(self) -> str:
        return "PlainCredential(<redacted>)"


class SecretsManagerCredential:
    """A Secrets Manager secret, read with GetSecretValue (AWSCURRENT)."""

    by_reference = True

    __slots__ = ("_auth_type", "_client", "_secret_id", "description")

    def __init__(self, client: Callable[[], Any], secret_id: str, auth_type: str) -> None:
        self._client = client
        self._secret_id = secret_id
        self._auth_type = auth_type
        self.description = f"secret {secret_id}"

    def fetch(self) -> str:
        try:
            response = self._client().get_secret_value(SecretId=self._secret_id)
        except ClientError as exc:
            raise CredentialError(
                f"cannot read {self.description}: {_error_text(exc)}; check that it exists in this "
                "region and that the forwarder role may secretsmanager:GetSecretValue on it (and "
                "kms:Decrypt if it uses a customer managed key)"
            ) from exc
        except BotoCoreError as exc:
            raise CredentialError(f"cannot read {self.description}: {exc}") from exc
        value = response.get("SecretString")
        if not isinstance(value, str):
            raise CredentialError(f"{self.description} has no SecretString (binary secrets are unsupported)")
        return extract_credential(value, self._auth_type, self.description)


class SsmParameterCredential:
    """An SSM Parameter Store parameter (SecureString), read with decryption."""

    by_reference = True

    __slots__ = ("_auth_type", "_client", "_name", "description")

    def __init__(self, client: Callable[[], Any], name: str, auth_type: str) -> None:
        self._client = client
        self._name = name
        self._auth_type = auth_type
        self.description = f"parameter {name}"

    def fetch(self) -> str:
        try:
            response = self._client().get_parameter(Name=self._name, WithDecryption=True)
        except ClientError as exc:
            raise CredentialError(
                f"cannot read {self.description}: {_error_text(exc)}; check that it exists in this "
                "region and that the forwarder role may ssm:GetParameter on it and kms:Decrypt with its key"
            ) from exc
        except BotoCoreError as exc:
            raise CredentialError(f"cannot read {self.description}: {exc}") from exc
        value = response.get("Parameter", {}).get("Value")
        if not isinstance(value, str):
            raise CredentialError(f"{self.description} has no value")
        return extract_credential(value, self._auth_type, self.description)


def extract_credential(value: str, auth_type: str, description: str) -> str:
    """The raw string, or the credential key of a JSON object, once checked sendable; error (without the
    value) when neither."""
    text = value.strip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            preferred = _PREFERRED_KEY.get(auth_type)
            keys = ((preferred,) if preferred else ()) + CREDENTIAL_KEYS
            for key in keys:
                candidate = parsed.get(key)
                if isinstance(candidate, str) and candidate:
                    return check_sendable(candidate, auth_type, description)
            raise CredentialError(
                f"{description} is a JSON object without a non-empty string under any of the keys "
                f"{', '.join(CREDENTIAL_KEYS)} (found keys: {', '.join(sorted(map(str, parsed))[:10])})"
            )
    if not text:
        raise CredentialError(f"{description} is empty")
    return check_sendable(text, auth_type, description)


# http.client refuses CR and LF in a header value (header injection) and encodes values as Latin-1;
# RFC 9110 allows no other control character than HTAB there, and RFC 7617 none in a Basic user-pass
# (which goes out as UTF-8, then base64, so any other character is fine).
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_UNSENDABLE_IN_HEADER = re.compile(r"[\x00-\x1f\x7f-\x9f]|[^\x00-\xff]")
_NAMED = {"\n": "a newline", "\r": "a carriage return"}


def check_sendable(credential: str, auth_type: str, description: str) -> str:
    """``credential`` unchanged if the configured auth type can send it; else a CredentialError that says
    where it came from and which character is wrong, by position, never the value."""
    pattern = _CONTROL_CHARACTER if auth_type == AUTH_BASIC else _UNSENDABLE_IN_HEADER
    found = pattern.search(credential)
    if found is None:
        return credential
    character = found.group()
    if character in _NAMED:
        problem, advice = _NAMED[character], "store the credential on a single line"
    else:
        problem = (
            "a control character, which HTTP basic authentication does not allow,"
            if auth_type == AUTH_BASIC
            else "a character that cannot be sent in an HTTP header (non-Latin-1/control)"
        )
        advice = "store the credential exactly as issued (copying it may have added the character)"
    raise CredentialError(
        f"the credential in {description} contains {problem} at position {found.start() + 1}; {advice}"
    )


class CachedCredential:
    """Caches a source's value for ``ttl_seconds`` so a rotated secret is picked up within that time."""

    __slots__ = ("_clock", "_fetched_at", "_lock", "_source", "_ttl", "_value")

    def __init__(
        self,
        source: CredentialSource,
        ttl_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._ttl = ttl_seconds
        self._clock = clock
        self._value: str | None = None
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    @property
    def source(self) -> CredentialSource:
        return self._source

    def get(self) -> str:
        with self._lock:
            value = self._value
            if value is not None and self._clock() - self._fetched_at < self._ttl:
                return value
            return self._load()

    def refresh(self) -> str:
        """Fetch again now (after the endpoint rejected the cached value)."""
        with self._lock:
            return self._load()

    def _load(self) -> str:
        value = self._source.fetch()
        self._value = value
        self._fetched_at = self._clock()
        if self._source.by_reference:
            logger.info("fetched the endpoint credential from %s", self._source.description)
        return value

    def __repr__(self) -> str:
        return f"CachedCredential({self._source.description}, ttl={self._ttl}s)"


def credential_from_config(
    config: Config,
    *,
    secretsmanager: Callable[[], Any],
    ssm: Callable[[], Any],
    clock: Callable[[], float] = time.monotonic,
) -> CachedCredential | None:
    """The configured credential (None for auth type none). Clients are factories: only the one needed is
    created, and only on first use."""
    if config.auth_type in AUTH_WITHOUT_CREDENTIAL:
        return None
    source: CredentialSource
    if config.auth_secret_arn:
        source = SecretsManagerCredential(secretsmanager, config.auth_secret_arn, config.auth_type)
    elif config.auth_parameter_name:
        source = SsmParameterCredential(ssm, config.auth_parameter_name, config.auth_type)
    elif config.auth_credentials:
        source = PlainCredential(config.auth_credentials, config.auth_type)
    else:  # Config.from_env rejects this; a hand-built Config could still get here.
        raise CredentialError(f"HTTP_AUTH_TYPE={config.auth_type} but no credential source is configured")
    return CachedCredential(source, config.auth_cache_seconds, clock=clock)


def auth_headers(config: Config, credential: str | None) -> dict[str, str]:
    """The authentication header for the configured type."""
    if config.auth_type == AUTH_NONE or credential is None:
        return {}
    if config.auth_type == AUTH_BEARER:
        return {"Authorization": f"Bearer {credential}"}
    if config.auth_type == AUTH_BASIC:
        pair = f"{config.auth_username or ''}:{credential}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
    if config.auth_type == AUTH_APIKEY:
        return {config.auth_header_name: credential}
    if config.auth_type == AUTH_SPLUNK:  # HEC tokens: "Authorization: Splunk <token>"
        return {"Authorization": f"Splunk {credential}"}
    raise CredentialError(f"unknown auth type {config.auth_type!r}")


def secret_forms(config: Config, credential: str | None) -> tuple[str, ...]:
    """Every form in which the credential could come back in an answer: as stored, as sent (the header
    value after its scheme word, so the Basic pair in base64) and each of these JSON-escaped."""
    if not credential:
        return ()
    forms = {credential}
    forms.update(value.split(" ", 1)[-1] for value in auth_headers(config, credential).values())
    return _with_json_escaped(forms)


def _with_json_escaped(forms: set[str]) -> tuple[str, ...]:
    """The forms and each of them JSON-escaped, longest first."""
    forms.update([json.dumps(form)[1:-1] for form in forms])
    return tuple(sorted(forms, key=len, reverse=True))


class RequestSigner:
    """Signs each request with AWS Signature Version 4, with the credentials of the function's role.

    The credentials come from boto3's default chain (on Lambda the role's temporary credentials in the
    environment; elsewhere a profile or instance role, refreshed by botocore before they expire). They are
    frozen once per request, so one signature never mixes an old key with a new token.
    """

    __slots__ = ("_lock", "_session", "_source", "region", "service")

    def __init__(self, service: str, region: str, session: Callable[[], Any]) -> None:
        self.service = service
        self.region = region
        self._session = session
        self._source: Any = None
        self._lock = threading.Lock()

    def _credentials(self) -> Any:
        with self._lock:
            if self._source is None:
                self._source = self._session().get_credentials()
                if self._source is None:
                    raise CredentialError(
                        f"{AUTH_SIGV4} found no AWS credentials to sign with (the function's role, or a "
                        "profile or environment variables elsewhere)"
                    )
            return self._source.get_frozen_credentials()

    def signed_headers(self, url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        """``headers`` plus the signature headers for a POST of exactly ``body`` (gzip included) to ``url``.

        The signature covers every header given (Content-Encoding too), X-Amz-Date and the body's SHA-256,
        which OpenSearch Serverless requires in X-Amz-Content-SHA256; sign each attempt anew, the date is
        part of it and AWS refuses a signature more than 5 minutes old.
        """
        request = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
        request.headers["X-Amz-Content-SHA256"] = hashlib.sha256(body).hexdigest()
        SigV4Auth(self._credentials(), self.service, self.region).add_auth(request)
        return dict(request.headers.items())

    def secret_forms(self) -> tuple[str, ...]:
        """The current secret key and session token, as sent and JSON-escaped, for masking answers."""
        frozen = self._credentials()
        return _with_json_escaped({form for form in (frozen.secret_key, frozen.token) if form})

    def __repr__(self) -> str:
        return f"RequestSigner({self.service}, {self.region})"


def signer_from_config(config: Config, *, session: Callable[[], Any]) -> RequestSigner | None:
    """The request signer for HTTP_AUTH_TYPE=aws_sigv4 (None for the other types); ``session`` makes the
    boto3 session, on first use."""
    if config.auth_type != AUTH_SIGV4:
        return None
    if config.sigv4_service is None or config.sigv4_region is None:  # Config.from_env rejects this
        raise CredentialError(f"HTTP_AUTH_TYPE={AUTH_SIGV4} needs a service and a region to sign for")
    return RequestSigner(config.sigv4_service, config.sigv4_region, session)


def _error_text(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
