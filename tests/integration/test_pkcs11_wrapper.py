"""The PKCS#11 KeyWrapper on a real SoftHSM2 token, made for each test in a temp folder: KEKs
generated inside the token, AES-GCM wrapping with associated data, rotation, and a KEK that
cannot be read out."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from hub.adapters.keys import AesGcmSealer, build_vault, key_wrapper
from hub.adapters.memory import MemoryStore
from hub.config.settings import PrivacySettings
from hub.errors import DecryptionError, KeyStoreError
from hub.privacy.rotation import rotate_kek
from hub.privacy.vault import key_aad
from hub.testing.records import T0

from .conftest import unavailable

SOFTHSM_LIBRARY = Path("/usr/lib/softhsm/libsofthsm2.so")
PIN = "4711-user"
SO_PIN = "0815-officer"
AAD = key_aad("person-1")

try:
    import pkcs11
    from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
    from pkcs11.exceptions import AttributeSensitive, KeyUnextractable

    from hub.adapters.keys.pkcs11 import LABEL_PREFIX, Pkcs11KeyWrapper
except ModuleNotFoundError:  # reported by the fixture: fail in CI, skip with the reason here
    pkcs11 = None


@dataclass
class Token:
    library: Path
    label: str
    pin: str

    def wrapper(self, *, create: bool = True, pin: str | None = None) -> Pkcs11KeyWrapper:
        return Pkcs11KeyWrapper(self.library, self.label, SecretStr(pin or self.pin), create=create)

    def settings(self, **changes: object) -> PrivacySettings:
        values: dict[str, object] = {
            "key_wrapper": "pkcs11",
            "pkcs11_library": self.library,
            "pkcs11_token": self.label,
            "pkcs11_pin": SecretStr(self.pin),
        }
        return PrivacySettings.model_validate(values | changes)


@pytest.fixture
def token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Token:
    """A SoftHSM2 token of its own: a softhsm2.conf and token folder in the temp dir."""
    util = shutil.which("softhsm2-util")
    if util is None or not SOFTHSM_LIBRARY.is_file():
        unavailable("SoftHSM2 is not installed: run scripts/services.sh (apt-get install softhsm2)")
    if pkcs11 is None:
        unavailable("python-pkcs11 is not installed: pip install -e '.[test]'")
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    label = "tellonce-test"
    subprocess.run(
        [util, "--init-token", "--free", "--label", label, "--pin", PIN, "--so-pin", SO_PIN],
        check=True,
        capture_output=True,
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
    )
    # SoftHSM2 reads SOFTHSM2_CONF and its tokens when initialised: once per test, so this
    # test sees its own token and nothing of the previous one (whose sessions end here).
    pkcs11.lib(str(SOFTHSM_LIBRARY)).reinitialize()
    return Token(SOFTHSM_LIBRARY, label, PIN)


def test_a_data_key_wraps_in_the_token_and_unwraps_with_its_aad(token: Token) -> None:
    """AES-GCM in the token: round-trips, random IV, and another person's AAD is refused."""
    wrapper = token.wrapper()
    try:
        data_key = os.urandom(32)
        first = wrapper.wrap(data_key, AAD)
        second = wrapper.wrap(data_key, AAD)
        assert first.kek_id == wrapper.current_kek()
        assert first.wrapped[:1] == b"\x01"
        assert len(first.wrapped) == 1 + 12 + 32 + 16  # format, IV, data key, tag
        assert first.wrapped != second.wrapped  # a fresh IV each time
        assert data_key not in first.wrapped
        assert wrapper.unwrap(first, AAD) == data_key
        with pytest.raises(DecryptionError, match="another person"):
            wrapper.unwrap(first, key_aad("person-2"))
        altered = first.wrapped[:20] + bytes([first.wrapped[20] ^ 1]) + first.wrapped[21:]
        with pytest.raises(DecryptionError):
            wrapper.unwrap(type(first)(first.kek_id, altered), AAD)
        assert wrapper.unwrap(second, AAD) == data_key  # a refusal leaves the session usable
    finally:
        wrapper.close()


def test_new_kek_becomes_current_and_old_keys_still_unwrap(token: Token) -> None:
    """new_kek makes a KEK current in the token; another wrapper sees it and unwraps both."""
    wrapper = token.wrapper()
    other = token.wrapper(create=False)
    try:
        data_key = os.urandom(32)
        old = wrapper.wrap(data_key, AAD)
        new_id = wrapper.new_kek()
        assert new_id != old.kek_id
        assert wrapper.current_kek() == new_id
        assert wrapper.kek_ids() == [old.kek_id, new_id]
        assert other.current_kek() == new_id  # found in the token, not remembered
        assert other.unwrap(old, AAD) == data_key
        assert other.wrap(data_key, AAD).kek_id == new_id
    finally:
        wrapper.close()
        other.close()


def test_the_kek_cannot_be_read_out_of_the_token(token: Token) -> None:
    """The KEK is sensitive and never extractable: reading its value or exporting it fails."""
    wrapper = token.wrapper()
    kek_id = wrapper.current_kek()
    wrapper.close()
    hsm = pkcs11.lib(str(token.library)).get_token(token_label=token.label)
    with hsm.open(rw=True, user_pin=token.pin) as session:
        kek = session.get_key(ObjectClass.SECRET_KEY, KeyType.AES, label=LABEL_PREFIX + kek_id)
        assert kek[Attribute.TOKEN] is True
        assert kek[Attribute.SENSITIVE] is True
        assert kek[Attribute.EXTRACTABLE] is False
        assert kek[Attribute.NEVER_EXTRACTABLE] is True
        assert kek[Attribute.ALWAYS_SENSITIVE] is True
        with pytest.raises(AttributeSensitive):
            kek[Attribute.VALUE]
        # Nor can it leave wrapped under a key of the attacker's choosing.
        exporter = session.generate_key(KeyType.AES, 256, label="exporter")
        with pytest.raises(KeyUnextractable):
            exporter.wrap_key(kek, mechanism=Mechanism.AES_KEY_WRAP)
    # Without the PIN the token does not even show it.
    with hsm.open() as public:
        assert not list(public.get_objects({Attribute.LABEL: LABEL_PREFIX + kek_id}))


def test_without_create_an_empty_token_is_a_key_store_error(token: Token) -> None:
    """create=False never generates a KEK: a token without one is KeyStoreError (retriable)."""
    wrapper = token.wrapper(create=False)
    try:
        with pytest.raises(KeyStoreError, match="holds no tellonce KEK") as caught:
            wrapper.current_kek()
        assert caught.value.retriable
        assert wrapper.kek_ids() == []
    finally:
        wrapper.close()


def test_a_wrong_pin_or_token_is_retriable_and_never_quotes_the_pin(token: Token) -> None:
    """A token that cannot be opened: KeyStoreError naming the setting, never the PIN."""
    wrong = "9999-wrong-pin"
    refused = token.wrapper(pin=wrong)
    with pytest.raises(KeyStoreError, match="TELLONCE_PRIVACY__PKCS11_PIN") as caught:
        refused.current_kek()
    refused.close()
    assert caught.value.retriable
    assert wrong not in str(caught.value)
    assert token.pin not in str(caught.value)
    missing = Pkcs11KeyWrapper(token.library, "no-such-token", SecretStr(token.pin), create=True)
    with pytest.raises(KeyStoreError, match="TELLONCE_PRIVACY__PKCS11_TOKEN") as caught:
        missing.current_kek()
    missing.close()
    assert token.pin not in str(caught.value)


def test_a_lost_session_fails_retriable_and_the_next_call_reopens(token: Token) -> None:
    """When the token goes away under the hub, one call fails retriable; the next works."""
    wrapper = token.wrapper()
    try:
        data_key = os.urandom(32)
        wrapped = wrapper.wrap(data_key, AAD)
        pkcs11.lib(str(token.library)).reinitialize()  # every session of the process ends
        with pytest.raises(KeyStoreError) as caught:
            wrapper.unwrap(wrapped, AAD)
        assert caught.value.retriable
        assert wrapper.unwrap(wrapped, AAD) == data_key
    finally:
        wrapper.close()


def test_the_vault_seals_and_rotates_through_the_token(token: Token, tmp_path: Path) -> None:
    """key_wrapper() builds the token's wrapper from settings; a vault seals through it and a
    KEK rotation on a store rewraps every data key in the token, data still opening."""
    vault = build_vault(token.settings(), tmp_path / "unused", bytes(range(32)), create=True)
    store = MemoryStore(vault=vault)
    with store.transaction() as tx:
        for i in range(30):
            tx.add_person(f"person-{i}", T0)
        key = tx.state.data_keys["person-3"]
    sealed = vault.seal("person-3", key, b"V8W 1A1", b"row-1")
    old = key.kek_id

    rotation = rotate_kek(store, vault.wrapper, batch=7)

    assert rotation.plan.created
    assert rotation.rewrapped == 30
    assert rotation.batches == 5
    with store.transaction() as tx:
        assert tx.data_keys_by_kek() == {rotation.plan.kek_id: 30}
        key = tx.state.data_keys["person-3"]
    assert rotation.retired == [old]
    # Another wrapper, no data key cached: unwrapped in the token under the new KEK.
    fresh = key_wrapper(token.settings(), tmp_path / "unused", create=False)
    data_key = fresh.unwrap(key, key_aad("person-3"))
    assert AesGcmSealer().open(data_key, sealed, b"row-1") == b"V8W 1A1"
    assert not (tmp_path / "unused").exists()  # no key file anywhere: the KEKs are in the token
    for wrapper in (fresh, vault.wrapper):
        assert isinstance(wrapper, Pkcs11KeyWrapper)
        wrapper.close()


def test_library_errors_come_out_as_the_hubs_own(token: Token) -> None:
    """A cut tag and an unknown KEK id raise DecryptionError and KeyStoreError, never the
    library's PKCS11Error (which the hub would not know to retry or dead-letter)."""
    wrapper = token.wrapper()
    try:
        wrapped = wrapper.wrap(os.urandom(32), AAD)
        with pytest.raises(DecryptionError):
            wrapper.unwrap(type(wrapped)(wrapped.kek_id, wrapped.wrapped[:-1]), AAD)
        with pytest.raises(DecryptionError, match="format"):
            wrapper.unwrap(type(wrapped)(wrapped.kek_id, wrapped.wrapped[:20]), AAD)
        with pytest.raises(KeyStoreError, match=r"000099\.deadbeef"):
            wrapper.unwrap(type(wrapped)("000099.deadbeef", wrapped.wrapped), AAD)
        assert wrapper.unwrap(wrapped, AAD)  # and the session still works
    finally:
        wrapper.close()


def test_tellonce_keys_rotates_a_store_whose_keks_are_in_the_token(
    token: Token, tmp_path: Path
) -> None:
    """The CLI with key_wrapper=pkcs11: status names the token, rotate-kek makes a KEK in it
    and rewraps every data key the sealing SQL store holds; the links still open."""
    from consent.model import Evidence, IdentityLink
    from hub.bootstrap import App
    from hub.config.settings import Settings
    from tests.e2e.conftest import run

    env = {
        "TELLONCE_STORE__URL": f"sqlite:///{tmp_path / 'hub.db'}",
        "TELLONCE_AUDIT__SIGNING_KEY": str(tmp_path / "audit-key.pem"),
        "TELLONCE_PRIVACY__KEY_WRAPPER": "pkcs11",
        "TELLONCE_PRIVACY__PKCS11_LIBRARY": str(token.library),
        "TELLONCE_PRIVACY__PKCS11_TOKEN": token.label,
        "TELLONCE_PRIVACY__PKCS11_PIN": token.pin,
        "TELLONCE_LOG_LEVEL": "warning",
        "SOFTHSM2_CONF": os.environ["SOFTHSM2_CONF"],
    }
    settings = Settings.model_validate(
        {
            "store": {"url": env["TELLONCE_STORE__URL"]},
            "audit": {"signing_key": env["TELLONCE_AUDIT__SIGNING_KEY"]},
            "privacy": token.settings().model_dump(),
        }
    )
    evidence = Evidence("counter", "staff-1", T0)
    app = App.from_settings(settings)
    try:
        with app.store.transaction() as tx:
            for i in range(40):
                tx.add_person(f"person-{i}", T0)
                tx.add_link(IdentityLink(f"person-{i}", "bc-msp", f"MSP-{i}", evidence))
        wrapper = app.vault().wrapper
        assert isinstance(wrapper, Pkcs11KeyWrapper)
        old = wrapper.current_kek()
        wrapper.close()  # the CLI below is another process with its own session
    finally:
        app.close()

    rotated = run("keys", "rotate-kek", "--json", env=env)
    assert rotated.returncode == 0, rotated.stderr
    summary = json.loads(rotated.stdout)
    assert summary["created"] is True
    assert summary["rewrapped"] == 40
    assert summary["retired_keks"] == [old]
    status = run("keys", "status", env=env)
    assert status.returncode == 0, status.stderr
    assert f"pkcs11 (token {token.label!r}" in status.stdout
    assert f"current KEK: {summary['kek_id']}" in status.stdout
    assert token.pin not in status.stdout + status.stderr + rotated.stdout + rotated.stderr

    app = App.from_settings(settings)  # nothing cached: unwrapped in the token again
    try:
        with app.store.transaction() as tx:
            links = tx.links_of([f"person-{i}" for i in range(40)])
        assert {p: ls["bc-msp"] for p, ls in links.items()} == {
            f"person-{i}": f"MSP-{i}" for i in range(40)
        }
        wrapper = app.vault().wrapper
        assert isinstance(wrapper, Pkcs11KeyWrapper)
        assert wrapper.kek_ids() == [old, summary["kek_id"]]
        wrapper.close()
    finally:
        app.close()
