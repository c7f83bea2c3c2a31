"""Avro bytes written by hand, for the hostile-record tests of every tier: each fault sits
exactly where the test puts it, which an encoder would never allow."""

from __future__ import annotations


def varint(n: int) -> bytes:
    """Avro long: zigzag, then base-128 little-endian (any size, for overlong values)."""
    z = n << 1 if n >= 0 else (-n << 1) - 1
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def text(s: str | bytes) -> bytes:
    """Avro string or bytes: the length, then the raw bytes (which need not be UTF-8)."""
    raw = s.encode() if isinstance(s, str) else s
    return varint(len(raw)) + raw


def framed(body: bytes, schema_id: int) -> bytes:
    """The Confluent wire format: magic byte 0, 4-byte big-endian schema id, the Avro body."""
    return b"\x00" + schema_id.to_bytes(4, "big") + body
