"""Signed life events: the canonical digest, the published test vectors, and which rejection a
record earns for its signature (README, "Signed life events")."""

from __future__ import annotations

import base64
import importlib.util
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest
from pydantic import ValidationError

from hub.adapters.record_keys import RecordKey, verify_ed25519
from hub.config.directory import load_directory
from hub.config.signing_keys import ProgramKey
from hub.errors import RejectedEvent
from hub.model import InboundMessage
from hub.wire.cloudevents import cloudevent_headers
from hub.wire.signatures import (
    SIGNATURE,
    SIGNATURE_KEY,
    SignaturePolicy,
    check_event_signature,
    event_digest,
    event_digest_of,
    signature_headers,
)

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "schemas" / "signatures" / "event-signature-v1.json"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
PROGRAM = load_directory().program("bc-vital-statistics")
KEY = RecordKey.generate()
REQUIRED = SignaturePolicy(verify_ed25519, required=True)


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vectors", ROOT / "scripts/signature_vectors.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def listed(key: RecordKey = KEY, **window: datetime) -> ProgramKey:
    return key.directory_entry(window.get("since", NOW - timedelta(days=1)), window.get("until"))


def signed(key: RecordKey = KEY, value: bytes = b"\x00\x00\x00\x00\x02body") -> InboundMessage:
    headers = cloudevent_headers(
        "vs-1", "ca.tellonce.lifeevents.DeathReported", NOW, source=PROGRAM.id
    )
    digest = event_digest(b"VS-1", value, headers)
    headers += signature_headers(key.key_id, key.sign(digest))
    return InboundMessage("tellonce.lifeevents.v1", 0, 7, b"VS-1", value, headers)


def reason(message: InboundMessage, *keys: ProgramKey, policy: SignaturePolicy = REQUIRED) -> str:
    with pytest.raises(RejectedEvent) as caught:
        check_event_signature(message, PROGRAM.with_keys(*keys), NOW, policy)
    return caught.value.reason


def test_the_published_vectors_are_what_the_code_computes() -> None:
    """schemas/signatures/event-signature-v1.json is exactly what the generator writes now:
    the README's scheme, the code and the vectors cannot drift apart."""
    assert VECTORS.read_text(encoding="utf-8") == generator().render()


def test_each_vector_verifies_and_its_digest_comes_from_the_headers_as_sent() -> None:
    """A verifier that builds the digest from the vector's headers, key and value gets the
    vector's digest, and the signature verifies under the vector's public key."""
    vectors = json.loads(VECTORS.read_text(encoding="utf-8"))
    public = base64.b64decode(vectors["public_key_base64"])
    for case in vectors["cases"]:
        headers = [(k, v.encode()) for k, v in case["headers"].items()]
        value = bytes.fromhex(case["value_hex"])
        digest = event_digest(case["key"].encode(), value, headers)
        assert digest.hex() == case["digest_hex"]
        sig = base64.b64decode(case["signature_headers"][SIGNATURE])
        assert verify_ed25519(public, digest, sig)
        assert not verify_ed25519(public, digest[:-1] + b"\x00", sig)


def test_a_signed_event_with_a_listed_valid_key_passes() -> None:
    """The signature of a key the directory lists for the program, valid now, is accepted."""
    check_event_signature(signed(), PROGRAM.with_keys(listed()), NOW, REQUIRED)


def test_an_unsigned_event_is_refused_only_when_signatures_are_required() -> None:
    """No signature headers: ``unsigned`` under the production policy, accepted otherwise."""
    message = signed()
    bare = InboundMessage(
        message.topic,
        0,
        7,
        message.key,
        message.value,
        [(n, v) for n, v in message.headers if n not in (SIGNATURE, SIGNATURE_KEY)],
    )
    assert reason(bare, listed()) == "unsigned"
    check_event_signature(bare, PROGRAM, NOW, SignaturePolicy(verify_ed25519, required=False))


def test_a_key_not_listed_for_the_program_is_unknown() -> None:
    """A valid signature by a key of nobody's (or of another program) is ``unknown_key``."""
    assert reason(signed(RecordKey.generate()), listed()) == "unknown_key"


def test_a_key_outside_its_validity_is_expired_at_the_hubs_clock() -> None:
    """Retired yesterday, or valid only from tomorrow: ``key_expired``."""
    assert reason(signed(), listed(since=NOW - timedelta(days=9), until=NOW)) == "key_expired"
    assert reason(signed(), listed(since=NOW + timedelta(days=1))) == "key_expired"


def test_an_altered_record_or_a_broken_signature_is_bad_signature() -> None:
    """A changed value, a changed header, a signature not base64 or not 64 bytes, or only one
    of the two headers: ``bad_signature``."""
    message = signed()
    changed_value = InboundMessage(
        message.topic, 0, 7, message.key, message.value + b"!", message.headers
    )
    assert reason(changed_value, listed()) == "bad_signature"
    moved = [(n, b"2026-11-30T12:00:01+00:00" if n == "ce_time" else v) for n, v in message.headers]
    assert reason(InboundMessage("t", 0, 7, message.key, message.value, moved), listed()) == (
        "bad_signature"
    )
    for broken in (b"not base64!", base64.b64encode(b"short")):
        headers = [(n, broken if n == SIGNATURE else v) for n, v in message.headers]
        assert reason(InboundMessage("t", 0, 7, message.key, message.value, headers), listed()) == (
            "bad_signature"
        )
    half = [(n, v) for n, v in message.headers if n != SIGNATURE_KEY]
    assert reason(InboundMessage("t", 0, 7, message.key, message.value, half), listed()) == (
        "bad_signature"
    )


def test_rotation_overlap_both_keys_sign_and_the_retired_one_stops_at_its_end() -> None:
    """With the old key retiring at noon and the new one valid since yesterday, both sign
    before noon; after it, only the new one."""
    new = RecordKey.generate()
    keys = (listed(since=NOW - timedelta(days=30), until=NOW), listed(new))
    program = PROGRAM.with_keys(*keys)
    before = NOW - timedelta(minutes=1)
    check_event_signature(signed(), program, before, REQUIRED)
    check_event_signature(signed(new), program, before, REQUIRED)
    check_event_signature(signed(new), program, NOW, REQUIRED)
    with pytest.raises(RejectedEvent) as caught:
        check_event_signature(signed(), program, NOW, REQUIRED)
    assert caught.value.reason == "key_expired"


def test_the_digest_of_an_inbound_record_is_the_one_the_publisher_signed() -> None:
    """event_digest_of (the hub's side) equals event_digest (the publisher's side)."""
    message = signed()
    unsigned = [(n, v) for n, v in message.headers if n not in (SIGNATURE, SIGNATURE_KEY)]
    assert event_digest_of(message) == event_digest(
        message.key or b"", message.value or b"", unsigned
    )


def test_the_directory_refuses_a_key_whose_id_does_not_match_it() -> None:
    """A listed id must be derived from the listed public key; a short key or a reversed
    validity is refused too, naming the key."""
    entry = listed().model_dump()
    with pytest.raises(ValidationError, match="does not match"):
        ProgramKey.model_validate({**entry, "id": "ed25519:0000000000000000"})
    with pytest.raises(ValidationError, match="raw 32-byte"):
        ProgramKey.model_validate({**entry, "public_key": base64.b64encode(b"x" * 31).decode()})
    with pytest.raises(ValidationError, match="valid_to must come after"):
        ProgramKey.model_validate({**entry, "valid_to": entry["valid_from"]})
