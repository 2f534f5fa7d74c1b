"""The de-identification key: a secret in a file, and the keyed digests made with it.

Every replacement value (UIDs, patient pseudonyms, date offsets, output file names) is an
HMAC-SHA256 of the original value under this key. The same key gives the same replacements
in every run and on every machine, so files de-identified apart still refer to each other;
without the key nobody can recompute them (a plain hash of a patient ID could be reversed by
hashing every plausible ID). Keep the key file apart from the de-identified data.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from medsight.errors import FormatError, MedsightError, NotFoundError

__all__ = ["keyed_digest", "new_key", "pseudonym", "read_key"]

KEY_BYTES = 32  # 256-bit secret, the HMAC-SHA256 block's natural size
_NEW_KEY_HINT = "Create one with `medsight deid --new-key {path}`, and keep it apart from the output"


def new_key(path: str | os.PathLike) -> Path:
    """Write a new random key to `path` (hex text, readable by its owner only); never overwrites."""
    from medsight.io import atomic_path

    path = Path(path)
    if path.exists():
        raise MedsightError(
            "key file already exists", path=path, hint="Refusing to overwrite it: its mapping would be lost"
        )
    if not path.parent.is_dir():
        raise NotFoundError("folder of the key file does not exist", path=path.parent, hint="Create it first")
    with atomic_path(path) as tmp:
        os.chmod(tmp, 0o600)  # before the secret is in it
        tmp.write_text(secrets.token_hex(KEY_BYTES) + "\n", encoding="ascii")
    return path


def read_key(path: str | os.PathLike) -> bytes:
    """The secret in the key file at `path` (as written by `new_key`)."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError("key file not found", path=path, hint=_NEW_KEY_HINT.format(path=path))
    text = path.read_text(encoding="ascii", errors="replace").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < 16:
        raise FormatError(
            "not a de-identification key (expected at least 32 hex digits)",
            path=path,
            hint=_NEW_KEY_HINT.format(path=path),
        )
    return key


def keyed_digest(key: bytes, domain: str, value: str) -> bytes:
    """HMAC-SHA256 of `value` under `key`; `domain` keeps the uses apart (a UID and a patient
    ID that happen to be equal still get unrelated replacements)."""
    return hmac.new(key, f"{domain}\0{value}".encode(), hashlib.sha256).digest()


def pseudonym(key: bytes, value: str) -> str:
    """``ANON-`` and 10 hex digits: the keyed stand-in for a patient (ID or name)."""
    return "ANON-" + keyed_digest(key, "patient", value)[:5].hex().upper()
