"""Symmetric encryption of secrets at rest (channel URLs and signing secrets, session keys).

Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) with a key from
``MONITOR_SECRET_KEY``; when that is unset a key is generated once and kept in
``MONITOR_HOME/secret.key`` with mode 0600, so a single-node install needs no setup. A
``MONITOR_SECRET_KEY`` that is not itself a Fernet key is stretched with SHA-256, so operators
may use any long random string.
"""

from __future__ import annotations

import base64
import hashlib
import os
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from monitor.errors import ConfigurationError
from monitor.settings import get_settings

KEY_FILE = "secret.key"


def _fernet_key(raw: str) -> bytes:
    try:
        if len(base64.urlsafe_b64decode(raw.encode())) == 32:
            return raw.encode()
    except (ValueError, TypeError):
        pass
    return base64.urlsafe_b64encode(hashlib.sha256(raw.encode()).digest())


def _key_from_home(home: Path) -> bytes:
    path = home / KEY_FILE
    if path.exists():
        return path.read_bytes().strip()
    home.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its key
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as fh:
        fh.write(key + b"\n")
    return key


@lru_cache(maxsize=4)
def _fernet(secret_key: str | None, home: str) -> Fernet:
    key = _fernet_key(secret_key) if secret_key else _key_from_home(Path(home))
    return Fernet(key)


def fernet() -> Fernet:
    """The Fernet instance for the configured key (created on first use)."""
    settings = get_settings()
    return _fernet(settings.secret_key, str(settings.home))


def encrypt(plaintext: str) -> bytes:
    return fernet().encrypt(plaintext.encode())


def decrypt(token: bytes) -> str:
    try:
        return fernet().decrypt(bytes(token)).decode()
    except InvalidToken as exc:
        raise ConfigurationError(
            "cannot decrypt a stored secret: MONITOR_SECRET_KEY (or MONITOR_HOME/secret.key) "
            "differs from the key it was encrypted with"
        ) from exc
