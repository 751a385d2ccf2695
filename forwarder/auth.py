"""Credentials for the ingest endpoint: fetched by reference on first use, cached for a while, refreshable.

A Secrets Manager secret or an SSM parameter holds either the credential itself, or a JSON object with the
credential under one of the keys in ``CREDENTIAL_KEYS`` (the first key present wins; the key named after
the auth type is looked at first: ``token`` for bearer, ``password`` for basic, ``apikey`` for apikey).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from forwarder.config import AUTH_APIKEY, AUTH_BASIC, AUTH_BEARER, AUTH_NONE, Config

logger = logging.getLogger(__name__)

CREDENTIAL_KEYS = ("credentials", "password", "token", "apikey", "api_key", "value")
_PREFERRED_KEY = {AUTH_BEARER: "token", AUTH_BASIC: "password", AUTH_APIKEY: "apikey"}


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

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def fetch(self) -> str:
        return self._value

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
    """The raw string, or the credential key of a JSON object; error (without the value) when neither."""
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
                    return candidate
            raise CredentialError(
                f"{description} is a JSON object without a non-empty string under any of the keys "
                f"{', '.join(CREDENTIAL_KEYS)} (found keys: {', '.join(sorted(map(str, parsed))[:10])})"
            )
    if not text:
        raise CredentialError(f"{description} is empty")
    return text


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
    if config.auth_type == AUTH_NONE:
        return None
    source: CredentialSource
    if config.auth_secret_arn:
        source = SecretsManagerCredential(secretsmanager, config.auth_secret_arn, config.auth_type)
    elif config.auth_parameter_name:
        source = SsmParameterCredential(ssm, config.auth_parameter_name, config.auth_type)
    elif config.auth_credentials:
        source = PlainCredential(config.auth_credentials)
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
    raise CredentialError(f"unknown auth type {config.auth_type!r}")


def secret_forms(config: Config, credential: str | None) -> tuple[str, ...]:
    """Every form in which the credential could leak into a message (raw, and as sent on the wire)."""
    if not credential:
        return ()
    forms = {credential}
    forms.update(value.split(" ", 1)[-1] for value in auth_headers(config, credential).values())
    return tuple(sorted(forms, key=len, reverse=True))


def _error_text(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
