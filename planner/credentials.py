"""Encryption of target-database passwords at rest (Fernet, key from PLANNER_CREDENTIALS_KEY).

A password is stored only encrypted, or not at all when the target names an environment variable
that holds it. Decrypted values are handed to psycopg and nowhere else: not to templates, logs,
errors, admin pages or exports.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


class CredentialsError(Exception):
    """A stored credential cannot be read; the message never contains the secret."""


def _fernet() -> Fernet:
    try:
        return Fernet(settings.CREDENTIALS_KEY.encode())
    except (ValueError, TypeError):
        raise CredentialsError(
            "PLANNER_CREDENTIALS_KEY is not a valid Fernet key (32 url-safe base64-encoded bytes)"
        ) from None


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise CredentialsError(
            "a stored target password cannot be decrypted: PLANNER_CREDENTIALS_KEY changed since it was saved; "
            "set the password again"
        ) from None
