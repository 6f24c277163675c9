"""Secrets kept at rest that the server must read back (webhook signing secrets: it signs with
them, so a hash would not do), sealed with AES-256-GCM under keys from the settings.

A sealed value is `aesgcm1:<key id>:<base64url(nonce + ciphertext + tag)>`: the key id (the
first 4 bytes of the key's SHA-256, in hex) names the key that opens it, so keys rotate by
putting a new one first (it seals) and keeping the old ones after it (they still open), and
the row it belongs to is bound in as associated data, so a sealed value copied to another row
does not open. It seals bytes (a webhook secret's 24 key bytes make 89 characters).
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable, Sequence
from functools import cached_property

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tierkit.server.services.errors import DomainError

_SCHEME = "aesgcm1"
_NONCE_BYTES = 12
_KEY_BYTES = 32


class SecretKeyError(DomainError):
    """The keys are missing or malformed, or none of them opens a sealed value."""

    code = "secret_key_error"


def generate_key() -> str:
    """A new key, as `TIERKIT_SECRET_KEY` takes it (32 random bytes, base64url)."""
    return base64.urlsafe_b64encode(os.urandom(_KEY_BYTES)).decode()


def parse_keys(text: str) -> list[bytes]:
    """Keys written comma- or line-separated (the first seals; all open)."""
    keys = []
    for part in text.replace("\n", ",").split(","):
        if not part.strip():
            continue
        try:
            key = base64.urlsafe_b64decode(part.strip().encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            key = b""
        if len(key) != _KEY_BYTES:
            raise SecretKeyError(
                "A secret key must be 32 bytes in base64url (44 characters); generate one "
                "with `tierkit secret-key`.",
                code="invalid_secret_key",
            )
        keys.append(key)
    if not keys:
        raise SecretKeyError("The secret key setting holds no key.", code="invalid_secret_key")
    return keys


def _key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


def is_sealed(value: str) -> bool:
    return value.startswith(_SCHEME + ":")


class SecretBox:
    """Seals and opens with the keys `load()` returns, loaded on first use (so a process that
    never touches a sealed secret never needs them)."""

    def __init__(self, load: Callable[[], Sequence[bytes]]) -> None:
        self._load = load

    @classmethod
    def of_keys(cls, text: str) -> SecretBox:
        keys = parse_keys(text)
        return cls(lambda: keys)

    @cached_property
    def _keys(self) -> dict[str, AESGCM]:
        return {_key_id(key): AESGCM(key) for key in self._load()}

    @cached_property
    def _sealing_key_id(self) -> str:
        return next(iter(self._keys))

    def check(self) -> None:
        """Load the keys now: raises `SecretKeyError` if there are none to load."""
        _ = self._sealing_key_id

    def seal(self, value: bytes, *, bound_to: str) -> str:
        key_id = self._sealing_key_id
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._keys[key_id].encrypt(nonce, value, bound_to.encode())
        return f"{_SCHEME}:{key_id}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, value: str, *, bound_to: str) -> bytes:
        """The sealed bytes in clear."""
        scheme, key_id, data = ([*value.split(":", 2), "", ""])[:3]
        if scheme != _SCHEME:
            raise SecretKeyError(
                f"The secret of {bound_to} is not a sealed value.", code="secret_unreadable"
            )
        aead = self._keys.get(key_id)
        if aead is None:
            raise SecretKeyError(
                f"A secret of {bound_to} is sealed with key {key_id}, which is not among the "
                "configured secret keys (TIERKIT_SECRET_KEY): add it after the current one.",
                code="secret_key_unknown",
            )
        try:
            raw = base64.urlsafe_b64decode(data.encode())
            return aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], bound_to.encode())
        except (InvalidTag, ValueError) as error:
            raise SecretKeyError(
                f"The sealed secret of {bound_to} does not open with key {key_id}: it was "
                "changed or copied from another row.",
                code="secret_unreadable",
            ) from error

    def is_sealed_with_current_key(self, value: str) -> bool:
        """False for a value in clear or sealed with an older key: one to seal again."""
        return value.startswith(f"{_SCHEME}:{self._sealing_key_id}:")
