"""Consent receipts as compact JWS with EdDSA: round trip, PyJWT interop, every forgery refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from hub.adapters.jws import RECEIPT_TYPE, read_compact, sign_compact
from hub.adapters.signing import FileSigner, create_key
from hub.errors import SignerError, VerificationError

CLAIMS: dict[str, Any] = {
    "sub": "person-7f3a",
    "recipient": "cra",
    "purpose": "benefit-continuity",
    "state": "given",
    "iat": 1_741_964_966,
}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    path = tmp_path / "receipts.pem"
    create_key(path)
    return path


@pytest.fixture
def signer(key_path: Path) -> FileSigner:
    return FileSigner(key_path)


@pytest.fixture
def token(signer: FileSigner) -> str:
    return sign_compact(signer, CLAIMS)


def test_round_trip(signer: FileSigner, token: str) -> None:
    """A signed receipt reads back with its claims and an EdDSA header naming the key."""
    header, claims = read_compact(token, signer.public_key_pem())
    assert claims == CLAIMS
    assert header == {"alg": "EdDSA", "kid": signer.key_id, "typ": RECEIPT_TYPE}


def test_encoding_is_compact_and_sorted(signer: FileSigner, token: str) -> None:
    """Header and payload are compact, key-sorted JSON in unpadded base64url."""
    head, payload, signature = token.split(".")
    assert "=" not in token
    assert (
        unb64(head)
        == json.dumps(
            {"alg": "EdDSA", "kid": signer.key_id, "typ": RECEIPT_TYPE}, separators=(",", ":")
        ).encode()
    )
    assert unb64(payload) == json.dumps(CLAIMS, separators=(",", ":"), sort_keys=True).encode()
    assert len(unb64(signature)) == 64


def test_pyjwt_made_token_reads(key_path: Path, signer: FileSigner) -> None:
    """A token made by PyJWT's own encode with the same key verifies (interoperability)."""
    private_key = load_pem_private_key(key_path.read_bytes(), password=None)
    made = jwt.encode(
        CLAIMS,
        private_key,  # type: ignore[arg-type]
        algorithm="EdDSA",
        headers={"kid": signer.key_id, "typ": RECEIPT_TYPE},
    )
    header, claims = read_compact(made, signer.public_key_pem())
    assert claims == CLAIMS
    assert header["kid"] == signer.key_id


def test_our_token_reads_with_pyjwt(signer: FileSigner, token: str) -> None:
    """PyJWT's own decode verifies a receipt we signed (interoperability the other way)."""
    assert jwt.decode(token, signer.public_key_pem(), algorithms=["EdDSA"]) == CLAIMS


def test_expired_claims_still_read(signer: FileSigner) -> None:
    """An exp in the past is returned, not judged: in-force is decided by the consent rules."""
    token = sign_compact(signer, {**CLAIMS, "exp": 1, "nbf": 4_000_000_000})
    _, claims = read_compact(token, signer.public_key_pem())
    assert claims["exp"] == 1


def test_tampered_payload_is_refused(signer: FileSigner, token: str) -> None:
    """Changing one claim after signing breaks the signature."""
    head, _, signature = token.split(".")
    forged = b64(json.dumps({**CLAIMS, "state": "withdrawn"}, sort_keys=True).encode())
    with pytest.raises(VerificationError, match="altered"):
        read_compact(f"{head}.{forged}.{signature}", signer.public_key_pem())


def test_tampered_signature_is_refused(signer: FileSigner, token: str) -> None:
    """A signature with one bit flipped does not verify."""
    head, payload, signature = token.split(".")
    raw = bytearray(unb64(signature))
    raw[10] ^= 0x01
    with pytest.raises(VerificationError, match="altered"):
        read_compact(f"{head}.{payload}.{b64(bytes(raw))}", signer.public_key_pem())


def test_alg_none_is_refused(signer: FileSigner) -> None:
    """An unsigned alg=none token with our key id is refused."""
    head = b64(json.dumps({"alg": "none", "kid": signer.key_id, "typ": RECEIPT_TYPE}).encode())
    forged = f"{head}.{b64(json.dumps(CLAIMS).encode())}."
    with pytest.raises(VerificationError, match="not signed with EdDSA"):
        read_compact(forged, signer.public_key_pem())


def test_hs256_with_public_key_as_secret_is_refused(signer: FileSigner) -> None:
    """An HS256 token keyed with the public key PEM (algorithm confusion) is refused."""
    head = b64(json.dumps({"alg": "HS256", "kid": signer.key_id, "typ": RECEIPT_TYPE}).encode())
    signing_input = f"{head}.{b64(json.dumps(CLAIMS).encode())}"
    mac = hmac.new(signer.public_key_pem().encode(), signing_input.encode(), hashlib.sha256)
    forged = f"{signing_input}.{b64(mac.digest())}"
    with pytest.raises(VerificationError, match="not signed with EdDSA"):
        read_compact(forged, signer.public_key_pem())


@pytest.mark.parametrize(
    "cut",
    [
        lambda t: t[:-10],
        lambda t: t.rsplit(".", 1)[0],
        lambda t: t.split(".")[0],
        lambda t: "",
        lambda t: "a.b.c.d",
        lambda t: t.replace(".", "!", 1),
    ],
    ids=["short-signature", "two-parts", "one-part", "empty", "junk", "bad-alphabet"],
)
def test_truncated_or_malformed_token_is_refused(signer: FileSigner, token: str, cut: Any) -> None:
    """Truncated or malformed tokens raise VerificationError without echoing the token."""
    damaged = cut(token)
    with pytest.raises(VerificationError) as info:
        read_compact(damaged, signer.public_key_pem())
    message = str(info.value)
    assert all(part not in message for part in token.split(".") if part)
    assert "person-7f3a" not in message


def test_other_key_is_refused_naming_both_ids(
    token: str, signer: FileSigner, tmp_path: Path
) -> None:
    """Reading with another public key says which key signed and which was given."""
    other_path = tmp_path / "other.pem"
    create_key(other_path)
    other = FileSigner(other_path)
    with pytest.raises(VerificationError, match="signed by key") as info:
        read_compact(token, other.public_key_pem())
    assert signer.key_id in str(info.value)
    assert other.key_id in str(info.value)


def test_valid_signature_with_wrong_kid_is_refused(key_path: Path, signer: FileSigner) -> None:
    """A correctly signed token whose kid names another key is refused."""
    private_key = load_pem_private_key(key_path.read_bytes(), password=None)
    made = jwt.encode(CLAIMS, private_key, algorithm="EdDSA", headers={"kid": "someone<script>"})  # type: ignore[arg-type]
    with pytest.raises(VerificationError, match="an unrecognised key id") as info:
        read_compact(made, signer.public_key_pem())
    assert "<script>" not in str(info.value)


def test_missing_kid_is_refused(key_path: Path, signer: FileSigner) -> None:
    """A correctly signed token without a kid is refused."""
    private_key = load_pem_private_key(key_path.read_bytes(), password=None)
    made = jwt.encode(CLAIMS, private_key, algorithm="EdDSA")  # type: ignore[arg-type]
    with pytest.raises(VerificationError, match="no key id"):
        read_compact(made, signer.public_key_pem())


def test_typ_is_checked_when_asked(signer: FileSigner) -> None:
    """With typ given, a token of another type is refused."""
    token = sign_compact(signer, CLAIMS, typ="checkpoint+jwt")
    assert read_compact(token, signer.public_key_pem())[0]["typ"] == "checkpoint+jwt"
    with pytest.raises(VerificationError, match="not a consent-receipt"):
        read_compact(token, signer.public_key_pem(), typ=RECEIPT_TYPE)


def test_non_object_payload_is_refused(key_path: Path, signer: FileSigner) -> None:
    """A signed payload that is not a JSON object is refused."""
    private_key = load_pem_private_key(key_path.read_bytes(), password=None)
    made = jwt.PyJWS().encode(
        b"[1,2]",
        private_key,  # type: ignore[arg-type]
        algorithm="EdDSA",
        headers={"kid": signer.key_id},
    )
    with pytest.raises(VerificationError, match="not a JSON object"):
        read_compact(made, signer.public_key_pem())


def test_signing_fails_closed_when_key_is_gone(key_path: Path, signer: FileSigner) -> None:
    """sign_compact raises SignerError when the signer's key file is missing."""
    key_path.unlink()
    with pytest.raises(SignerError):
        sign_compact(signer, CLAIMS)
