"""The instance's Ed25519 key, and the keys verifiers trust.

``EVIDENCE_HOME/keys/instance.key`` (PKCS#8 PEM, mode 0600, refused when others can read it,
as ssh refuses an open private key) and ``instance.pub`` beside it. A key is named by its id,
the SHA-256 of its raw public key, which checkpoints carry.

Trust is pinned, not found: verify, ``cases verify`` and the court verifier trust only the key
ids of ``custody.pinned_keys``, which lives in settings the instance cannot write (a file owned
by another user, or the environment given at start). A public key in ``keys/`` or in a bag is
information: its bytes give the key whose id is pinned, nothing more. Anyone who can write
EVIDENCE_HOME can drop a key there; no one but the administrator can pin one.

Rotation: ``evidence keys rotate`` makes a new key and a statement, signed by the old key, that
the new one takes over (``keys/rotations/<new id>.json``). The pin list names the new key with
``replaces = <old id>``, and verify checks that statement.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pipeline.custody import verify_bag as rules
from pipeline.custody.verify_bag import Problem
from pipeline.errors import InstanceKeyError
from pipeline.settings import PinnedKey, Settings, file_giving

PRIVATE_NAME = "instance.key"
PUBLIC_NAME = "instance.pub"
ROTATION_TYPE = "evidence-key-rotation"


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


# --------------------------------------------------------------------------- pinned trust


@dataclass(frozen=True)
class Trust:
    """The keys a verifier may trust: the pinned ones whose public half was found. A pin
    without its key, a rotation without a valid statement, no pin at all: each a problem."""

    keys: Mapping[str, Ed25519PublicKey]
    pins: tuple[str, ...]
    problems: tuple[Problem, ...]


def known_public_keys(home: Path) -> dict[str, Ed25519PublicKey]:
    """Public keys found in the key folder (the instance key's own half included): where a
    pinned id finds its bytes. Unreadable files are skipped here: trust comes from the pin,
    and a pin whose key is not found is reported by :func:`pinned_trust`."""
    found: dict[str, Ed25519PublicKey] = {}
    folder = key_dir(home)
    candidates = [*sorted(folder.glob("*.pub")), *sorted((folder / "rotations").glob("*.pub"))]
    for path in candidates:
        try:
            public = rules.load_public_key(path.read_bytes())
        except (OSError, ValueError):
            continue
        found[rules.key_id(public)] = public
    return found


def pinned_trust(settings: Settings) -> Trust:
    """The pinned keys of ``settings`` (never a key merely present in EVIDENCE_HOME)."""
    pins: Sequence[PinnedKey] = settings.custody.pinned_keys
    home = settings.home
    problems: list[Problem] = []
    if not pins:
        problems.append(
            Problem(
                "E-KEY-UNPINNED",
                "custody.pinned_keys",
                "no signing key is pinned: nothing can be trusted (pin the key id that "
                "`evidence keys export` prints, in settings the instance cannot write; "
                "docs/deploy.md)",
            )
        )
    known = known_public_keys(home)
    trusted: dict[str, Ed25519PublicKey] = {}
    for pin in pins:
        public = known.get(pin.id)
        if public is None:
            problems.append(
                Problem(
                    "E-KEY-MISSING",
                    f"key {pin.id[:16]}…",
                    f"pinned, but its public key is not in {key_dir(home)}",
                )
            )
            continue
        trusted[pin.id] = public
    for pin in pins:
        if pin.replaces:
            bad = rotation_problem(home, pin, trusted)
            if bad is not None:
                problems.append(bad)
    return Trust(trusted, tuple(p.id for p in pins), tuple(problems))


def pin_warnings(settings: Settings) -> list[Problem]:
    """A pin the instance could rewrite itself is no anchor: say so when the settings file
    that holds the pins lies inside EVIDENCE_HOME, or the instance's own user may write it."""
    source = file_giving("custody", "pinned_keys")
    if source is None:
        return []
    try:
        inside = source.resolve().is_relative_to(settings.home.resolve())
    except OSError:
        inside = False
    if inside:
        reason = "lies inside EVIDENCE_HOME"
    elif os.geteuid() != 0 and os.access(source, os.W_OK):
        reason = "can be written by the user the instance runs as"
    else:
        return []
    return [
        Problem(
            "W-PINS-WRITABLE",
            str(source),
            f"the file that pins the trusted keys {reason}: whoever controls the instance can "
            "pin their own key (keep it owned by another user; docs/deploy.md)",
        )
    ]


def pinned_keys(settings: Settings) -> Mapping[str, Ed25519PublicKey]:
    """Just the trusted keys of :func:`pinned_trust`."""
    return pinned_trust(settings).keys


# ------------------------------------------------------------------------------ rotation


def rotation_path(home: Path, new_id: str) -> Path:
    return key_dir(home) / "rotations" / f"{new_id}.json"


def rotation_message(statement: Mapping[str, Any]) -> bytes:
    return rules.canonical(
        {
            "type": ROTATION_TYPE,
            "old": statement["old"],
            "new": statement["new"],
            "at": statement["at"],
        }
    )


def rotation_problem(
    home: Path, pin: PinnedKey, trusted: Mapping[str, Ed25519PublicKey]
) -> Problem | None:
    """A pin that says it replaced a key must show the old key's signed statement."""
    where = f"key {pin.id[:16]}…"
    old = trusted.get(pin.replaces)
    if old is None:
        return Problem(
            "E-KEY-ROTATION", where, f"replaces key {pin.replaces[:16]}…, which is not pinned"
        )
    try:
        statement = json.loads(rotation_path(home, pin.id).read_text("utf-8"))
        if (statement["old"], statement["new"]) != (pin.replaces, pin.id):
            raise ValueError("the statement names other keys")
        old.verify(bytes.fromhex(statement["signature"]), rotation_message(statement))
    except (OSError, ValueError, KeyError, TypeError, InvalidSignature) as exc:
        reason = "the signature does not verify" if isinstance(exc, InvalidSignature) else exc
        return Problem(
            "E-KEY-ROTATION",
            where,
            f"no valid statement of the old key {pin.replaces[:16]}… handing over: {reason}",
        )
    return None


@dataclass(frozen=True)
class Rotated:
    old_id: str
    new_id: str
    statement: Path
    public_pem: str


def rotate(home: Path, now: datetime | None = None) -> Rotated:
    """Replace the instance key: the old key signs a statement that the new one takes over,
    the old public half stays (as ``<old id>.pub``) so older checkpoints still verify, and
    the new key signs from now on. The administrator pins the new id with ``replaces``."""
    old = load_signer(home)
    folder = key_dir(home)
    fresh = Ed25519PrivateKey.generate()
    new_id = rules.key_id(fresh.public_key())
    statement: dict[str, Any] = {
        "type": ROTATION_TYPE,
        "old": old.key_id,
        "new": new_id,
        "at": (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds"),
        "new_public_key": public_pem(fresh.public_key()),
    }
    statement["signature"] = old.sign(rotation_message(statement))
    target = rotation_path(home, new_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(statement, indent=2) + "\n", encoding="utf-8")
    (target.parent / f"{new_id}.pub").write_text(public_pem(fresh.public_key()))
    (folder / f"{old.key_id}.pub").write_text(public_pem(old.private.public_key()))
    pem = fresh.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    staged = folder / f".{PRIVATE_NAME}.new"
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())
    os.replace(staged, folder / PRIVATE_NAME)
    (folder / PUBLIC_NAME).write_text(public_pem(fresh.public_key()))
    return Rotated(old.key_id, new_id, target, public_pem(fresh.public_key()))
