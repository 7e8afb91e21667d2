"""C2SP signed notes with Ed25519 keys (https://c2sp.org/signed-note), compatible with Go's
``golang.org/x/mod/sumdb/note``.

Formats:

- verifier key (public): ``<name>+<hex key id>+<base64(0x01 || 32-byte public key)>``
- signer key (private): ``PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || 32-byte seed)>``
- key id: the first 4 bytes (big-endian) of ``SHA-256(name || "\\n" || 0x01 || public key)``
- note: the text (UTF-8, ending in a newline), a blank line, then one line per signature:
  ``— <name> <base64(key id || Ed25519 signature over the text)>`` (U+2014 EM DASH, a space).

Pure apart from the ``cryptography`` primitives; reading and writing key files is ``ledger.keys``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "ALG_ED25519",
    "NoteSignature",
    "Signer",
    "Verifier",
    "open_note",
    "sign_note",
    "split_note",
]

#: signed-note signature type byte for Ed25519
ALG_ED25519 = 0x01
_DASH = "\u2014 "


def _check_name(name: str) -> None:
    if not name or "+" in name or any(c.isspace() for c in name):
        raise ValueError(f"key name {name!r} must be non-empty with no '+' and no whitespace")


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte key id of an Ed25519 key named ``name``."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key).digest()[:4]


@dataclass(frozen=True)
class Verifier:
    """A public key that checks signatures made under ``name``."""

    name: str
    """The key name (Railbook uses the log's origin)."""
    key_id: bytes
    """4-byte key id."""
    public_key: bytes
    """Raw 32-byte Ed25519 public key."""

    @classmethod
    def parse(cls, text: str) -> Verifier:
        """Parse a verifier key string; raises ValueError naming what is wrong."""
        parts = text.strip().split("+", 2)  # base64 may itself contain '+'
        if len(parts) != 3:
            raise ValueError(f"verifier key {text.strip()[:80]!r}: expected '<name>+<hex id>+<base64 key>'")
        name, hex_id, b64 = parts
        _check_name(name)
        try:
            raw = base64.b64decode(b64, validate=True)
            kid = bytes.fromhex(hex_id)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"verifier key for {name!r}: bad encoding ({exc})") from None
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise ValueError(
                f"verifier key for {name!r}: expected 0x01 + 32-byte Ed25519 key, got {len(raw)} bytes"
            )
        if len(kid) != 4 or kid != key_id(name, raw[1:]):
            raise ValueError(f"verifier key for {name!r}: key id {hex_id!r} does not match the key")
        return cls(name, kid, raw[1:])

    def encode(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(bytes([ALG_ED25519]) + self.public_key).decode()}"  # noqa: E501

    def verify(self, text: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, text)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class Signer:
    """A private Ed25519 key that signs notes under ``name``."""

    name: str
    seed: bytes
    """Raw 32-byte Ed25519 private key (seed)."""

    @classmethod
    def generate(cls, name: str) -> Signer:
        _check_name(name)
        from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

        key = Ed25519PrivateKey.generate()
        return cls(name, key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))

    @classmethod
    def parse(cls, text: str) -> Signer:
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
            raise ValueError("signer key: expected 'PRIVATE+KEY+<name>+<hex id>+<base64 key>'")
        name, hex_id, b64 = parts[2:]
        _check_name(name)
        try:
            raw = base64.b64decode(b64, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"signer key for {name!r}: bad base64 ({exc})") from None
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise ValueError(f"signer key for {name!r}: expected 0x01 + 32-byte seed, got {len(raw)} bytes")
        signer = cls(name, raw[1:])
        if signer.verifier().key_id.hex() != hex_id.lower():
            raise ValueError(f"signer key for {name!r}: key id {hex_id!r} does not match the key")
        return signer

    def encode(self) -> str:
        kid = self.verifier().key_id.hex()
        return f"PRIVATE+KEY+{self.name}+{kid}+{base64.b64encode(bytes([ALG_ED25519]) + self.seed).decode()}"

    def verifier(self) -> Verifier:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        pub = (
            Ed25519PrivateKey.from_private_bytes(self.seed)
            .public_key()
            .public_bytes(Encoding.Raw, PublicFormat.Raw)
        )
        return Verifier(self.name, key_id(self.name, pub), pub)

    def sign(self, text: bytes) -> bytes:
        return Ed25519PrivateKey.from_private_bytes(self.seed).sign(text)


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a note."""

    name: str
    key_id: bytes
    signature: bytes


def sign_note(text: str, signer: Signer) -> str:
    """Sign ``text`` (must end with a newline) and return the whole note."""
    if not text.endswith("\n"):
        raise ValueError("note text must end with a newline")
    sig = signer.sign(text.encode())
    kid = signer.verifier().key_id
    return f"{text}\n{_DASH}{signer.name} {base64.b64encode(kid + sig).decode()}\n"


def split_note(note: str) -> tuple[str, list[NoteSignature]]:
    """Split a note into its text and signature lines; raises ValueError on a malformed note."""
    cut = note.rfind("\n\n")
    if cut < 0 or not note.endswith("\n"):
        raise ValueError("malformed note: no blank line before the signatures, or no final newline")
    text, block = note[: cut + 1], note[cut + 2 :]
    sigs: list[NoteSignature] = []
    for line in block.splitlines():
        if not line.startswith(_DASH):
            raise ValueError(f"malformed signature line {line[:60]!r}: expected '— <name> <base64>'")
        name, _, b64 = line[len(_DASH) :].partition(" ")
        try:
            raw = base64.b64decode(b64, validate=True)
        except binascii.Error:
            raise ValueError(f"malformed signature line for {name!r}: bad base64") from None
        if len(raw) < 5:
            raise ValueError(f"malformed signature line for {name!r}: too short")
        sigs.append(NoteSignature(name, raw[:4], raw[4:]))
    if not sigs:
        raise ValueError("note has no signatures")
    return text, sigs


def open_note(note: str, verifier: Verifier) -> str:
    """Return the note's text if ``verifier`` signed it; raises ValueError saying why not."""
    text, sigs = split_note(note)
    mine = [s for s in sigs if s.name == verifier.name and s.key_id == verifier.key_id]
    if not mine:
        names = ", ".join(f"{s.name}+{s.key_id.hex()}" for s in sigs)
        raise ValueError(
            f"note is not signed by the expected key {verifier.name}+{verifier.key_id.hex()} (signed by: {names})"  # noqa: E501
        )
    if not any(verifier.verify(text.encode(), s.signature) for s in mine):
        raise ValueError(
            f"signature by {verifier.name}+{verifier.key_id.hex()} does not verify: the note was altered"
        )
    return text
