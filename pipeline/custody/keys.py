"""The instance's Ed25519 key: it signs custody checkpoints.

``EVIDENCE_HOME/keys/instance.key`` (PKCS#8 PEM, mode 0600, refused when others can read it,
as ssh refuses an open private key) and ``instance.pub`` beside it. A key is named by its id,
the SHA-256 of its raw public key, which checkpoints carry. Every ``*.pub`` in the folder is a
trusted key: when the instance key is replaced, the old public key stays there (renamed) so
older checkpoints still verify.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pipeline.custody import verify_bag as rules
from pipeline.errors import InstanceKeyError

PRIVATE_NAME = "instance.key"
PUBLIC_NAME = "instance.pub"


def key_dir(home: Path) -> Path:
    return home / "keys"


@dataclass(frozen=True)
class Signer:
    """The private key, loaded, with its id."""

    key_id: str
    private: Ed25519PrivateKey

    def sign(self, message: bytes) -> str:
        return self.private.sign(message).hex()


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    public_pem: str
    path: Path
    created: bool


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def create_instance_key(home: Path) -> KeyInfo:
    """Create the instance key unless it exists; either way, describe it."""
    folder = key_dir(home)
    private_path = folder / PRIVATE_NAME
    if private_path.exists():
        return describe(home)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # O_EXCL: two `evidence init` at once cannot both write a key; 0600 from the first byte.
    try:
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return describe(home)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())
    (folder / PUBLIC_NAME).write_text(public_pem(private.public_key()))
    return _info(home, Signer(rules.key_id(private.public_key()), private), created=True)


def describe(home: Path) -> KeyInfo:
    """The instance key's id and public half (read from the private key: the truth)."""
    return _info(home, load_signer(home), created=False)


def _info(home: Path, signer: Signer, *, created: bool) -> KeyInfo:
    return KeyInfo(
        signer.key_id,
        public_pem(signer.private.public_key()),
        key_dir(home) / PRIVATE_NAME,
        created,
    )


def load_signer(home: Path) -> Signer:
    path = key_dir(home) / PRIVATE_NAME
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise InstanceKeyError(
                path, f"mode {stat.S_IMODE(mode):04o} lets others read it; chmod 600 it"
            )
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise InstanceKeyError(path, "no instance key: run `evidence init`") from exc
    except (OSError, ValueError, TypeError) as exc:
        raise InstanceKeyError(path, f"cannot read the instance key: {exc}") from exc
    if not isinstance(private, Ed25519PrivateKey):
        raise InstanceKeyError(path, "not an Ed25519 private key")
    return Signer(rules.key_id(private.public_key()), private)


def trusted_keys(home: Path) -> dict[str, Ed25519PublicKey]:
    """Every public key kept in the key folder, by id. An unreadable one is an error: a
    verifier must not quietly trust fewer keys than the operator put there."""
    keys: dict[str, Ed25519PublicKey] = {}
    for path in sorted(key_dir(home).glob("*.pub")):
        try:
            public = rules.load_public_key(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise InstanceKeyError(path, f"cannot read the public key: {exc}") from exc
        keys[rules.key_id(public)] = public
    return keys
