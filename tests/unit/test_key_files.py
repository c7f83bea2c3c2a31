"""The embedded default's keys: AES-256-GCM sealing and the folder of KEK files."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from hub.adapters import secret_file
from hub.adapters.keys import aesgcm, keyfile
from hub.adapters.keys.aesgcm import AesGcmSealer
from hub.adapters.keys.keyfile import FileKeyWrapper
from hub.errors import DecryptionError, KeyStoreError
from hub.model import WrappedKey

AAD = b"tellonce.person\x1fp-1"


def kek_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.kek"))


# -- AesGcmSealer --------------------------------------------------------------------------


def test_a_sealed_value_opens_under_its_key_and_aad() -> None:
    """seal then open gives the plaintext back; the value is not the plaintext."""
    sealer = AesGcmSealer()
    key = sealer.new_data_key()
    sealed = sealer.seal(key, b"1 Water Street", b"row-1")
    assert b"1 Water Street" not in sealed
    assert sealed[:1] == b"\x01"
    assert sealer.open(key, sealed, b"row-1") == b"1 Water Street"


def test_sealing_twice_gives_different_ciphertexts() -> None:
    """Every seal has a fresh nonce, so equal values cannot be told apart in a dump."""
    sealer = AesGcmSealer()
    key = sealer.new_data_key()
    assert len(key) == 32
    assert sealer.seal(key, b"same", b"a") != sealer.seal(key, b"same", b"a")


@pytest.mark.parametrize("change", ["aad", "key", "byte", "format", "short"])
def test_a_value_that_does_not_authenticate_is_refused(change: str) -> None:
    """Another row's AAD or key, a flipped byte, another format or a stub: DecryptionError."""
    sealer = AesGcmSealer()
    key = sealer.new_data_key()
    sealed = sealer.seal(key, b"V8W 1A1", b"row-1")
    aad = b"row-1"
    if change == "aad":
        aad = b"row-2"
    elif change == "key":
        key = sealer.new_data_key()
    elif change == "byte":
        sealed = sealed[:-1] + bytes([sealed[-1] ^ 1])
    elif change == "format":
        sealed = b"\x02" + sealed[1:]
    else:
        sealed = sealed[: aesgcm.OVERHEAD - 1]
    with pytest.raises(DecryptionError):
        sealer.open(key, sealed, aad)


# -- FileKeyWrapper ------------------------------------------------------------------------


def test_a_wrapped_key_unwraps_with_its_aad_only(tmp_path: Path) -> None:
    """wrap/unwrap round-trips; the same wrapped key with another person's AAD is refused."""
    wrapper = FileKeyWrapper(tmp_path / "keks", create=True)
    data_key = os.urandom(32)
    wrapped = wrapper.wrap(data_key, AAD)
    assert wrapped.kek_id == wrapper.current_kek()
    assert data_key not in wrapped.wrapped
    assert wrapper.unwrap(wrapped, AAD) == data_key
    with pytest.raises(DecryptionError, match="another person"):
        wrapper.unwrap(wrapped, b"tellonce.person\x1fp-2")


def test_new_kek_becomes_current_and_old_wrapped_keys_still_unwrap(tmp_path: Path) -> None:
    """After new_kek, new wraps use it, keys wrapped before still unwrap, in another process too."""
    folder = tmp_path / "keks"
    wrapper = FileKeyWrapper(folder, create=True)
    old_key = os.urandom(32)
    old = wrapper.wrap(old_key, AAD)
    new_id = wrapper.new_kek()
    assert new_id != old.kek_id
    assert wrapper.current_kek() == new_id
    assert wrapper.wrap(os.urandom(32), AAD).kek_id == new_id
    assert wrapper.unwrap(old, AAD) == old_key
    reader = FileKeyWrapper(folder, create=False)  # a fresh process: reads the files
    assert reader.current_kek() == new_id
    assert reader.unwrap(old, AAD) == old_key
    assert len(kek_files(folder)) == 2


def test_a_missing_folder_without_create_names_the_setting(tmp_path: Path) -> None:
    """create=False never makes a KEK: a missing folder is KeyStoreError naming KEK_DIR."""
    folder = tmp_path / "nowhere"
    wrapper = FileKeyWrapper(folder, create=False)
    with pytest.raises(KeyStoreError, match="TELLONCE_PRIVACY__KEK_DIR") as caught:
        wrapper.current_kek()
    assert caught.value.retriable
    with pytest.raises(KeyStoreError, match="TELLONCE_PRIVACY__KEK_DIR"):
        wrapper.wrap(os.urandom(32), AAD)
    assert not folder.exists()


def test_a_lost_kek_file_is_named_by_its_id(tmp_path: Path) -> None:
    """A wrapped key whose KEK file is gone: KeyStoreError naming that KEK, not a crash."""
    folder = tmp_path / "keks"
    wrapper = FileKeyWrapper(folder, create=True)
    wrapped = wrapper.wrap(os.urandom(32), AAD)
    (folder / f"{wrapped.kek_id}.kek").unlink()
    with pytest.raises(KeyStoreError, match=wrapped.kek_id):
        FileKeyWrapper(folder, create=False).unwrap(wrapped, AAD)
    with pytest.raises(KeyStoreError, match="feedface"):
        wrapper.unwrap(WrappedKey("feedface", wrapped.wrapped), AAD)


def test_two_wrappers_creating_the_first_kek_together_end_up_with_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both see no KEK and both write one; the loser keeps the winner's: one KEK, one current."""
    folder = tmp_path / "keks"
    both_ready = threading.Barrier(2, timeout=10)
    real_link = os.link

    def link_together(src: str, dst: str) -> None:
        if Path(dst).name == keyfile.CURRENT:
            both_ready.wait()  # both have written their KEK file and not yet named it current
        real_link(src, dst)

    monkeypatch.setattr(secret_file.os, "link", link_together)  # every key file is linked there
    wrappers = [FileKeyWrapper(folder, create=True) for _ in range(2)]
    ids: list[str] = []
    errors: list[BaseException] = []

    def first_use(wrapper: FileKeyWrapper) -> None:
        try:
            ids.append(wrapper.current_kek())
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=first_use, args=(w,)) for w in wrappers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert not errors
    assert len(ids) == 2
    assert ids[0] == ids[1]
    assert [p.stem for p in kek_files(folder)] == [ids[0]]
    data_key = os.urandom(32)
    assert wrappers[1].unwrap(wrappers[0].wrap(data_key, AAD), AAD) == data_key


def test_key_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    """KEK files and the current pointer are 0600, the folder 0700."""
    folder = tmp_path / "keks"
    wrapper = FileKeyWrapper(folder, create=True)
    wrapper.current_kek()
    wrapper.new_kek()
    files = [*kek_files(folder), folder / keyfile.CURRENT]
    assert len(files) == 3
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]  # no temp file left
