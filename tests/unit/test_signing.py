"""Ed25519 key files and FileSigner: keys are private and stable, signing fails closed."""

from __future__ import annotations

import re
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key

from hub.adapters.signing import (
    FileSigner,
    create_key,
    key_id_for,
    load_public_key,
    public_key_check,
)
from hub.errors import ConfigError, SignerError, VerificationError
from hub.ports import Signer


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    path = tmp_path / "audit.pem"
    create_key(path)
    return path


def test_create_key_is_private_to_the_owner(key_path: Path) -> None:
    """A new key file has mode 0600 and holds a PKCS8 PEM private key."""
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert key_path.read_text().startswith("-----BEGIN PRIVATE KEY-----")


def test_create_key_leaves_no_temp_file(key_path: Path) -> None:
    """The atomic write leaves only the key file in the directory."""
    assert [p.name for p in key_path.parent.iterdir()] == ["audit.pem"]


def test_create_key_refuses_to_overwrite(key_path: Path) -> None:
    """An existing key file is never replaced: ConfigError, file unchanged."""
    before = key_path.read_bytes()
    with pytest.raises(ConfigError, match="already exists"):
        create_key(key_path)
    assert key_path.read_bytes() == before


def test_create_key_in_missing_directory_says_so(tmp_path: Path) -> None:
    """A key path in a directory that does not exist gives ConfigError naming the directory."""
    with pytest.raises(ConfigError, match="create the directory"):
        create_key(tmp_path / "nowhere" / "audit.pem")


def test_key_id_is_stable_and_shaped(key_path: Path) -> None:
    """The key id is ed25519: + 16 hex digits and the same for the same public key."""
    signer = FileSigner(key_path)
    pem = signer.public_key_pem()
    assert re.fullmatch(r"ed25519:[0-9a-f]{16}", signer.key_id)
    assert key_id_for(pem) == signer.key_id == FileSigner(key_path).key_id


def test_different_keys_have_different_ids(tmp_path: Path) -> None:
    """Two generated keys get different key ids."""
    a, b = tmp_path / "a.pem", tmp_path / "b.pem"
    create_key(a)
    create_key(b)
    assert FileSigner(a).key_id != FileSigner(b).key_id


def test_file_signer_is_a_signer(key_path: Path) -> None:
    """FileSigner satisfies the Signer port."""
    signer: Signer = FileSigner(key_path)
    assert len(signer.sign(b"checkpoint")) == 64


def test_sign_verify_round_trip(key_path: Path) -> None:
    """A signature verifies under the signer's public key."""
    signer = FileSigner(key_path)
    check = public_key_check(signer.public_key_pem())
    assert check(b"checkpoint 7", signer.sign(b"checkpoint 7"))


@pytest.mark.parametrize("byte", [0, 31, 63])
def test_check_rejects_flipped_bit(key_path: Path, byte: int) -> None:
    """A signature with one bit flipped does not verify."""
    signer = FileSigner(key_path)
    signature = bytearray(signer.sign(b"checkpoint"))
    signature[byte] ^= 0x01
    assert not public_key_check(signer.public_key_pem())(b"checkpoint", bytes(signature))


def test_check_rejects_other_message(key_path: Path) -> None:
    """A signature of one message does not verify another."""
    signer = FileSigner(key_path)
    assert not public_key_check(signer.public_key_pem())(b"tree size 8", signer.sign(b"size 7"))


def test_check_rejects_other_key(key_path: Path, tmp_path: Path) -> None:
    """A signature by one key does not verify under another."""
    other = tmp_path / "other.pem"
    create_key(other)
    check = public_key_check(FileSigner(other).public_key_pem())
    assert not check(b"checkpoint", FileSigner(key_path).sign(b"checkpoint"))


@pytest.mark.parametrize("signature", [b"", b"\x00" * 63, b"\x00" * 65, b"\xff" * 64])
def test_check_rejects_malformed_signature_without_raising(
    key_path: Path, signature: bytes
) -> None:
    """Wrong-length or garbage signatures give False, not an exception."""
    assert not public_key_check(FileSigner(key_path).public_key_pem())(b"checkpoint", signature)


def test_non_ed25519_public_key_is_refused() -> None:
    """A PEM public key of another type raises VerificationError naming Ed25519."""
    pem = (
        generate_private_key(SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(VerificationError, match="not an Ed25519 key"):
        public_key_check(pem)


def test_garbage_public_key_is_refused() -> None:
    """Text that is not a PEM public key raises VerificationError."""
    with pytest.raises(VerificationError, match="not a readable PEM public key"):
        load_public_key("not a key")


# -- FileSigner when the key file goes away or changes ---------------------------------------


def test_missing_key_at_start_names_the_fix(tmp_path: Path) -> None:
    """No key file and create=False: SignerError telling to run keygen or set the setting."""
    with pytest.raises(SignerError, match="tellonce audit keygen") as info:
        FileSigner(tmp_path / "absent.pem")
    assert "TELLONCE_AUDIT__SIGNING_KEY" in str(info.value)
    assert info.value.retriable


def test_create_true_makes_a_missing_key(tmp_path: Path) -> None:
    """create=True generates the key file when it is missing."""
    path = tmp_path / "audit.pem"
    signer = FileSigner(path, create=True)
    assert path.exists()
    assert public_key_check(signer.public_key_pem())(b"m", signer.sign(b"m"))


def test_create_true_keeps_an_existing_key(key_path: Path) -> None:
    """create=True with an existing key file uses that key."""
    assert FileSigner(key_path, create=True).key_id == FileSigner(key_path).key_id


def test_removed_key_fails_then_recovers(key_path: Path) -> None:
    """Removing the key file makes sign fail with the fix; putting it back makes it work."""
    signer = FileSigner(key_path)
    saved = key_path.read_bytes()
    key_path.unlink()
    with pytest.raises(SignerError, match=r"does not exist.*tellonce audit keygen"):
        signer.sign(b"checkpoint")
    key_path.write_bytes(saved)
    assert public_key_check(signer.public_key_pem())(b"checkpoint", signer.sign(b"checkpoint"))


def test_replaced_key_is_refused(key_path: Path, tmp_path: Path) -> None:
    """A key file now holding another key: SignerError naming both key ids, on every call
    (the other key is never adopted), until the original is back."""
    signer = FileSigner(key_path)
    original = key_path.read_bytes()
    other = tmp_path / "other.pem"
    create_key(other)
    key_path.write_bytes(other.read_bytes())
    with pytest.raises(SignerError, match="signing key changed") as info:
        signer.sign(b"checkpoint")
    assert signer.key_id in str(info.value)
    assert FileSigner(other).key_id in str(info.value)
    with pytest.raises(SignerError, match="signing key changed"):
        signer.sign(b"checkpoint")
    key_path.write_bytes(original)
    assert public_key_check(signer.public_key_pem())(b"m", signer.sign(b"m"))


@pytest.mark.parametrize(
    "damage",
    [
        lambda pem: pem[: len(pem) // 2],
        lambda pem: pem.replace(b"A", b"B", 3),
        lambda pem: b"",
        lambda pem: b"\x00\xff" * 40,
    ],
    ids=["truncated", "altered", "empty", "binary"],
)
def test_corrupt_key_fails_without_leaking_it(
    key_path: Path, damage: Callable[[bytes], bytes]
) -> None:
    """A corrupt key file gives SignerError whose text holds no PEM content."""
    signer = FileSigner(key_path)
    pem = key_path.read_bytes()
    key_path.write_bytes(damage(pem))
    with pytest.raises(SignerError, match="restore it from backup") as info:
        signer.sign(b"checkpoint")
    message = str(info.value)
    assert "BEGIN" not in message
    body = b"".join(pem.splitlines()[1:-1]).decode()
    assert all(chunk not in message for chunk in (body[i : i + 8] for i in range(0, 48, 8)))


def test_unreadable_key_fails(key_path: Path) -> None:
    """A key path that cannot be read as a file gives SignerError saying so."""
    signer = FileSigner(key_path)
    key_path.unlink()
    key_path.mkdir()
    with pytest.raises(SignerError, match="cannot be read"):
        signer.sign(b"checkpoint")


def test_non_ed25519_private_key_is_refused(tmp_path: Path) -> None:
    """A key file with an EC key gives SignerError naming Ed25519."""
    path = tmp_path / "ec.pem"
    path.write_bytes(
        generate_private_key(SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(SignerError, match="not an Ed25519 key"):
        FileSigner(path)
