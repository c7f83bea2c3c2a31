"""Write schemas/signatures/event-signature-v1.json and receipt-signature-v1.json: test
vectors of a signed life event and of a signed receipt.

Another team's publisher, connector or verifier checks its implementation of README "Signed
life events" and "Signed receipts" against them. The key is RFC 8032's first Ed25519 test key
(section 7.1, TEST 1), public and well known: never sign anything real with it. Ed25519
signatures are deterministic, so the files are the same on every run;
tests/unit/test_event_signatures.py and test_receipt_signatures.py check that they still are.

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
from hub.wire.signatures import EVENT_CONTEXT, RECEIPT_CONTEXT, TRAILING_HEADERS, event_signing_text

FOLDER = Path(__file__).resolve().parent.parent / "schemas" / "signatures"
OUT = FOLDER / "event-signature-v1.json"
RECEIPTS_OUT = FOLDER / "receipt-signature-v1.json"
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


RECEIPT_CASES: list[dict[str, Any]] = [
    {
        "name": "delivered receipt of a notice",
        "headers": {
            "ce_specversion": "1.0",
            "ce_id": "6c1f3a52-0d8e-5b7a-9e41-2f6d8c0b9a17:delivered",
            "ce_source": "tellonce-connector/cra-individual",
            "ce_type": "ca.tellonce.receipts.Receipt",
            "ce_time": "2026-11-30T08:00:02.125000+00:00",
            "content-type": "application/avro",
            # The SHA-256 of the answered notice's signing text (README "Signed notices").
            "ce_noticedigest": "3b1f0c6e8a4d2f97c5e0b1a8d6f4e3c2b9a7d5f1e0c8b6a4d2f0e9c7b5a3d1f0",
        },
        "key": "cra-individual",
        # Confluent framing (0x00, schema id 10) and an Avro body; any bytes sign the same way.
        "value_hex": "000000000a",
    },
]


def vectors(context: str = EVENT_CONTEXT, cases: list[dict[str, Any]] = CASES) -> dict[str, Any]:
    private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(RFC8032_TEST1_SECRET))
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    out = []
    for case in cases:
        headers, value = case["headers"], bytes.fromhex(case["value_hex"].replace(" ", ""))
        text = event_signing_text(
            context=context,
            specversion=headers["ce_specversion"],
            ce_id=headers["ce_id"],
            source=headers["ce_source"],
            ce_type=headers["ce_type"],
            time=headers["ce_time"],
            subject=headers.get("ce_subject"),
            key=case["key"].encode("utf-8"),
            value=value,
            trailing=[headers.get(name, "") for name in TRAILING_HEADERS.get(context, ())],
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
        "scheme": context,
        "note": "RFC 8032 test key 1: public test material, never for real records",
        "secret_key_hex": RFC8032_TEST1_SECRET,
        "public_key_base64": base64.b64encode(public).decode("ascii"),
        "key_id": key_id_of(public),
        "cases": out,
    }


def render() -> str:
    return json.dumps(vectors(), indent=2, ensure_ascii=False) + "\n"


def render_receipts() -> str:
    return json.dumps(vectors(RECEIPT_CONTEXT, RECEIPT_CASES), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    FOLDER.mkdir(parents=True, exist_ok=True)
    for path, text in ((OUT, render()), (RECEIPTS_OUT, render_receipts())):
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
