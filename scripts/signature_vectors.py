"""Write schemas/signatures/event-signature-v1.json: test vectors of a signed life event.

Another team's publisher or verifier checks its implementation of README "Signed life events"
against them. The key is RFC 8032's first Ed25519 test key (section 7.1, TEST 1), public and
well known: never sign anything real with it. Ed25519 signatures are deterministic, so the
file is the same on every run; tests/unit/test_signature_vectors.py checks that it still is.

    .venv/bin/python scripts/signature_vectors.py
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.config.signing_keys import key_id_of
from hub.wire.signatures import EVENT_CONTEXT, event_signing_text

OUT = Path(__file__).resolve().parent.parent / "schemas" / "signatures" / "event-signature-v1.json"
# Published in RFC 8032 for testing; signs nothing real.
RFC8032_TEST1_SECRET = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"  # noqa: S105

CASES: list[dict[str, Any]] = [
    {
        "name": "address change with ce_subject",
        "headers": {
            "ce_specversion": "1.0",
            "ce_id": "sbc-2026-000101",
            "ce_source": "bc-service-bc",
            "ce_type": "ca.tellonce.lifeevents.AddressChanged",
            "ce_time": "2026-11-30T08:00:00+00:00",
            "content-type": "application/avro",
            "ce_subject": "SBC-100234",
        },
        "key": "SBC-100234",
        # Confluent framing (0x00, schema id 1) and an Avro body; any bytes sign the same way.
        "value_hex": "0000000001145342432d3130303233349ec49400",
    },
    {
        "name": "death report without ce_subject",
        "headers": {
            "ce_specversion": "1.0",
            "ce_id": "2f0c1a9e-5b7d-4c36-9a51-0d3e8b6f7c21",
            "ce_source": "bc-vital-statistics",
            "ce_type": "ca.tellonce.lifeevents.DeathReported",
            "ce_time": "2026-11-29T23:59:59.5-08:00",
            "content-type": "application/avro",
        },
        "key": "VS-2026-004417",
        "value_hex": "0000000002",
    },
]


def vectors() -> dict[str, Any]:
    private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(RFC8032_TEST1_SECRET))
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    out = []
    for case in CASES:
        headers, value = case["headers"], bytes.fromhex(case["value_hex"].replace(" ", ""))
        text = event_signing_text(
            specversion=headers["ce_specversion"],
            ce_id=headers["ce_id"],
            source=headers["ce_source"],
            ce_type=headers["ce_type"],
            time=headers["ce_time"],
            subject=headers.get("ce_subject"),
            key=case["key"].encode("utf-8"),
            value=value,
        )
        digest = hashlib.sha256(text).digest()
        out.append(
            {
                **case,
                "value_sha256_hex": hashlib.sha256(value).hexdigest(),
                "signing_text": text.decode("utf-8"),
                "digest_hex": digest.hex(),
                "signature_headers": {
                    "ce_signaturekey": key_id_of(public),
                    "ce_signature": base64.b64encode(private.sign(digest)).decode("ascii"),
                },
            }
        )
    return {
        "scheme": EVENT_CONTEXT,
        "note": "RFC 8032 test key 1: public test material, never for real records",
        "secret_key_hex": RFC8032_TEST1_SECRET,
        "public_key_base64": base64.b64encode(public).decode("ascii"),
        "key_id": key_id_of(public),
        "cases": out,
    }


def render() -> str:
    return json.dumps(vectors(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUT}")
