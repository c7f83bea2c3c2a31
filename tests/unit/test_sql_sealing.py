"""What the SQL store seals in an outbox row, and that each sealed part is bound to its row
and its place in it (hub.adapters.sql.sealing)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from hub.adapters.sql.sealing import opened_message, sealed_message
from hub.errors import DecryptionError
from hub.testing.privacy_contract import notice, rejection
from hub.testing.vaults import throwaway_vault


def test_a_notice_is_sealed_but_its_ids_stay_readable(tmp_path: Path) -> None:
    """Key, value and subject are ciphertext at rest; ce_id stays as it was; opening gives
    the notice back whole."""
    vault = throwaway_vault(tmp_path)
    key = vault.new_key("p-1")
    plain = notice("n-1")
    sealed = sealed_message(vault, key, plain)
    assert sealed.key != plain.key
    assert sealed.value != plain.value
    assert b"MSP-1" not in sealed.value + (sealed.key or b"")
    assert dict(sealed.headers)["ce_id"] == b"n-1"
    assert dict(sealed.headers)["ce_subject"] != b"MSP-1"
    assert opened_message(vault, key, sealed) == plain


def test_a_part_moved_to_another_row_or_place_does_not_open(tmp_path: Path) -> None:
    """A value copied into another message, or into the key of the same one, fails to open
    (DecryptionError): associated data names the message and the part."""
    vault = throwaway_vault(tmp_path)
    key = vault.new_key("p-1")
    first = sealed_message(vault, key, notice("n-1"))
    second = sealed_message(vault, key, notice("n-2"))
    for moved in (
        dataclasses.replace(second, value=first.value),
        dataclasses.replace(first, key=first.value),
        dataclasses.replace(first, person_id="p-2"),
    ):
        with pytest.raises(DecryptionError):
            opened_message(vault, key, moved)


def test_a_message_without_a_person_has_nothing_to_seal(tmp_path: Path) -> None:
    """A rejection names no person: sealing it is a programming error, not silent plaintext."""
    vault = throwaway_vault(tmp_path)
    with pytest.raises(ValueError, match="no personal data"):
        sealed_message(vault, vault.new_key("p-1"), rejection("r-1"))
