"""Consent receipts as compact JWS (RFC 7515) signed with EdDSA / Ed25519 (RFC 8037).

Signing is built by hand through the ``Signer`` port rather than PyJWT's ``encode``, which
wants the private key itself: any signer (the key file today, an HSM later) can sign receipts.

Reading uses PyJWT's ``PyJWS`` with the algorithm list pinned to EdDSA, so the token's own
``alg`` never chooses how it is checked (RFC 8725 section 2.1): ``none`` and HS256 tokens that
use the public key as an HMAC secret both fail. ``PyJWS`` rather than ``PyJWT`` because it does
not interpret claims: whether a consent is in force is judged by the consent rules against the
revision history, not by an ``exp`` inside a receipt the client keeps.

Error messages say what is wrong and never repeat token content (a receipt names a person).
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from jwt.api_jws import PyJWS
from jwt.exceptions import (
    DecodeError,
    InvalidAlgorithmError,
    InvalidSignatureError,
    PyJWTError,
)

from hub.adapters.signing import key_id_for, load_public_key
from hub.errors import VerificationError
from hub.ports import Signer

ALGORITHM = "EdDSA"
RECEIPT_TYPE = "consent-receipt+jwt"
_KEY_ID = re.compile(r"ed25519:[0-9a-f]{16}")


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _json(value: dict[str, Any]) -> bytes:
    # Compact and key-sorted so the same claims always give the same bytes; strict JSON (no NaN).
    return json.dumps(value, separators=(",", ":"), sort_keys=True, allow_nan=False).encode()


def sign_compact(signer: Signer, claims: dict[str, Any], typ: str = RECEIPT_TYPE) -> str:
    """``header.payload.signature``, signed by ``signer``; claims must be JSON values.

    Raises ``SignerError`` (retriable) when the signer cannot sign.
    """
    header = {"alg": ALGORITHM, "kid": signer.key_id, "typ": typ}
    signing_input = _b64(_json(header)) + b"." + _b64(_json(claims))
    signature = signer.sign(signing_input)
    return (signing_input + b"." + _b64(signature)).decode("ascii")


def _shown(kid: object) -> str:
    """A key id fit for a message: ours have a fixed shape; anything else is not echoed."""
    if kid is None:
        return "no key id"
    if isinstance(kid, str) and _KEY_ID.fullmatch(kid):
        return kid
    return "an unrecognised key id"


def _unverified_kid(token: str) -> object:
    try:
        return PyJWS().get_unverified_header(token).get("kid")
    except PyJWTError:
        return None


def read_compact(
    token: str, public_key_pem: str, *, typ: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(header, claims)`` of a compact JWS verified under ``public_key_pem``.

    Raises ``VerificationError`` when the token is malformed, not EdDSA, signed by another key,
    altered, or (if ``typ`` is given) of another type. Claims such as ``exp`` are returned as they
    are, not judged.
    """
    key = load_public_key(public_key_pem)
    expected = key_id_for(public_key_pem)
    jws = PyJWS(algorithms=[ALGORITHM])
    try:
        decoded = jws.decode_complete(
            token, key, algorithms=[ALGORITHM], options={"verify_signature": True}
        )
    except InvalidSignatureError as exc:
        kid = _unverified_kid(token)
        if kid != expected:
            raise VerificationError(
                f"receipt was signed by key {_shown(kid)}, not by the key you gave ({expected})"
            ) from exc
        raise VerificationError(
            "receipt signature does not verify: the receipt was altered or cut short after signing"
        ) from exc
    except InvalidAlgorithmError as exc:
        raise VerificationError(
            f"receipt is not signed with {ALGORITHM} (Ed25519); only Ed25519 receipts are accepted"
        ) from exc
    except DecodeError as exc:
        raise VerificationError(
            "receipt is not a well-formed compact JWS (three base64url parts joined by dots); "
            "check that it was copied whole"
        ) from exc
    except PyJWTError as exc:
        raise VerificationError(
            f"receipt header is not valid ({type(exc).__name__}); it was not made by tellonce"
        ) from exc
    header: dict[str, Any] = decoded["header"]
    if header.get("kid") != expected:
        raise VerificationError(
            f"receipt was signed by key {_shown(header.get('kid'))}, "
            f"not by the key you gave ({expected})"
        )
    if typ is not None and header.get("typ") != typ:
        raise VerificationError(f"token is not a {typ}; it has another type")
    try:
        claims = json.loads(decoded["payload"])
    except (ValueError, RecursionError) as exc:
        raise VerificationError("receipt payload is not JSON") from exc
    if not isinstance(claims, dict):
        raise VerificationError("receipt payload is not a JSON object")
    return header, claims
