"""What the SQL store seals, and what each sealed value is bound to.

Personal values are sealed under their person's data key (``hub.privacy.vault``): an identity
link's local id, and an outbox message's key, value and ``ce_subject`` header (the other
headers carry ids and types, and stay readable for operators). The associated data names the
row and the part of it a ciphertext belongs to, so a value copied to another row, another
person or another column does not open.

These byte strings are a storage format: rows sealed years ago must still open, so they never
change (migration 0004 seals existing rows with them too).
"""

from __future__ import annotations

import dataclasses

from hub.model import OutboxMessage, WrappedKey
from hub.privacy.vault import Vault

SEP = b"\x1f"  # the unit separator, as in the blind index: ("ab", "c") and ("a", "bc") differ
LINK_AAD = b"tellonce.link"
OUTBOX_AAD = b"tellonce.outbox"
SUBJECT_HEADER = "ce_subject"  # the local id the notice is about, as the recipient knows it


def link_aad(person_id: str, program: str) -> bytes:
    """What a sealed local id is bound to: its person and its program (unique together)."""
    return SEP.join((LINK_AAD, person_id.encode(), program.encode()))


def outbox_aad(message_id: str, part: str) -> bytes:
    """What a sealed part (``key``, ``value`` or a header's name) of an outbox row is bound to."""
    return SEP.join((OUTBOX_AAD, message_id.encode(), part.encode()))


def sealed_local_id(
    vault: Vault, key: WrappedKey | None, person_id: str, program: str, local_id: str
) -> bytes:
    """``local_id`` sealed for its link row; DecryptionError when the person was erased."""
    return vault.seal(person_id, key, local_id.encode(), link_aad(person_id, program))


def opened_local_id(
    vault: Vault, key: WrappedKey | None, person_id: str, program: str, sealed: bytes
) -> str:
    """The local id of a link row; DecryptionError when it does not open."""
    return vault.open(person_id, key, sealed, link_aad(person_id, program)).decode()


def sealed_message(vault: Vault, key: WrappedKey | None, message: OutboxMessage) -> OutboxMessage:
    """``message`` (of a person) with its key, value and subject header sealed."""
    person, message_id = _person_of(message), message.message_id

    def seal(part: str, data: bytes) -> bytes:
        return vault.seal(person, key, data, outbox_aad(message_id, part))

    return dataclasses.replace(
        message,
        key=None if message.key is None else seal("key", message.key),
        value=seal("value", message.value),
        headers=[
            (name, seal(name, data) if name == SUBJECT_HEADER else data)
            for name, data in message.headers
        ],
    )


def opened_message(vault: Vault, key: WrappedKey | None, message: OutboxMessage) -> OutboxMessage:
    """The plaintext of a sealed ``message``; DecryptionError when any part does not open."""
    person, message_id = _person_of(message), message.message_id

    def open_(part: str, data: bytes) -> bytes:
        return vault.open(person, key, data, outbox_aad(message_id, part))

    return dataclasses.replace(
        message,
        key=None if message.key is None else open_("key", message.key),
        value=open_("value", message.value),
        headers=[
            (name, open_(name, data) if name == SUBJECT_HEADER else data)
            for name, data in message.headers
        ],
    )


def _person_of(message: OutboxMessage) -> str:
    if message.person_id is None:
        raise ValueError("a message without a person carries no personal data to seal")
    return message.person_id
