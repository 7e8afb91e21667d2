"""The checkpoint signing key on disk: ``railbook keygen``, loading, and first-run generation.

Files: ``<path>`` holds the signer key (``PRIVATE+KEY+…``, mode 0600); ``<path>.pub`` holds the
verifier key (``<name>+<id>+<base64>``), safe to hand to auditors.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from core.errors import SigningKeyError
from ledger.note import Signer, Verifier

__all__ = ["keygen", "load_signer", "load_verifier", "public_key_path"]

logger = logging.getLogger(__name__)


def public_key_path(path: Path) -> Path:
    return path.with_name(path.name + ".pub")


def keygen(path: Path | str, name: str, *, overwrite: bool = False) -> Verifier:
    """Write a new Ed25519 key pair: ``path`` (0600) and ``path.pub``; returns the verifier."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise SigningKeyError(
            f"signing key {str(path)!r} already exists; refusing to replace it (checkpoints signed with it "
            "would no longer verify against a new key). Choose another --out, or move the old key away first."
        )
    try:
        signer = Signer.generate(name)
    except ValueError as exc:
        raise SigningKeyError(f"cannot make a key named {name!r}: {exc}") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(signer.encode() + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    verifier = signer.verifier()
    public_key_path(path).write_text(verifier.encode() + "\n")
    logger.info("signing key written path=%s verifier=%s", path, verifier.encode())
    return verifier


def load_signer(path: Path | str) -> Signer:
    """Read a signer key; refuses files other users can read (fix: ``chmod 600``)."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except FileNotFoundError:
        raise SigningKeyError(
            f"signing key {str(path)!r} does not exist; create it with 'railbook keygen'"
        ) from None
    except OSError as exc:
        raise SigningKeyError(f"signing key {str(path)!r} cannot be read: {exc}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SigningKeyError(
            f"signing key {str(path)!r} is readable by others (mode {stat.S_IMODE(mode):o}, expected 600); "
            f"run 'chmod 600 {path}'"
        )
    try:
        return Signer.parse(text)
    except ValueError as exc:
        raise SigningKeyError(f"signing key {str(path)!r} is not a signed-note private key: {exc}") from None


def load_verifier(path: Path | str) -> Verifier:
    """Read a verifier (public) key file, or derive it from a private key file."""
    path = Path(path)
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise SigningKeyError(f"public key {str(path)!r} cannot be read: {exc}") from exc
    try:
        if text.startswith("PRIVATE+KEY+"):
            return load_signer(path).verifier()
        return Verifier.parse(text)
    except ValueError as exc:
        raise SigningKeyError(
            f"public key {str(path)!r} is not a signed-note verifier key ('<name>+<hex id>+<base64>'): {exc}"
        ) from None
