"""key_wrapper(): the KEK holder the privacy settings name, and what it says when they are
incomplete (before any token is opened)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from hub.adapters.keys import FileKeyWrapper, key_wrapper
from hub.config.settings import PrivacySettings
from hub.errors import ConfigError

PIN = "pin-4711-secret"


def pkcs11_settings(tmp_path: Path, **changes: object) -> PrivacySettings:
    library = tmp_path / "libhsm.so"
    library.write_bytes(b"")  # exists: the checks below come before loading it
    values: dict[str, object] = {
        "key_wrapper": "pkcs11",
        "pkcs11_library": library,
        "pkcs11_token": "tellonce",
        "pkcs11_pin": SecretStr(PIN),
    }
    values.update(changes)
    return PrivacySettings.model_validate(values)


def test_the_file_wrapper_is_the_default(tmp_path: Path) -> None:
    """With no privacy settings the KEKs are files in the folder given."""
    wrapper = key_wrapper(PrivacySettings(), tmp_path / "keks", create=True)
    assert isinstance(wrapper, FileKeyWrapper)
    assert not (tmp_path / "keks").exists()  # nothing is made before the first use


@pytest.mark.parametrize(
    ("changes", "names"),
    [
        ({"pkcs11_library": None}, "TELLONCE_PRIVACY__PKCS11_LIBRARY"),
        ({"pkcs11_library": Path("/nonexistent/libhsm.so")}, "does not exist"),
        ({"pkcs11_token": " "}, "TELLONCE_PRIVACY__PKCS11_TOKEN"),
        ({"pkcs11_pin": None}, "TELLONCE_PRIVACY__PKCS11_PIN"),
        ({"pkcs11_pin": SecretStr("")}, "TELLONCE_PRIVACY__PKCS11_PIN"),
    ],
    ids=["no-library", "library-missing", "no-token", "no-pin", "empty-pin"],
)
def test_incomplete_pkcs11_settings_say_which_to_set(
    tmp_path: Path, changes: dict[str, object], names: str
) -> None:
    """A missing library, token label or PIN is a ConfigError (exit 2) naming the setting."""
    with pytest.raises(ConfigError, match=names) as caught:
        key_wrapper(pkcs11_settings(tmp_path, **changes), tmp_path, create=False)
    assert not caught.value.retriable
    assert PIN not in str(caught.value)


def test_a_missing_python_pkcs11_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without python-pkcs11 installed, the error says which extra to install."""
    monkeypatch.setitem(sys.modules, "pkcs11", None)  # import pkcs11 now fails
    monkeypatch.delitem(sys.modules, "hub.adapters.keys.pkcs11", raising=False)
    with pytest.raises(ConfigError, match=r"pip install 'tellonce\[hsm\]'"):
        key_wrapper(pkcs11_settings(tmp_path), tmp_path, create=False)


def test_complete_pkcs11_settings_open_nothing_yet(tmp_path: Path) -> None:
    """The factory builds the wrapper without loading the library (first use does)."""
    from hub.adapters.keys.pkcs11 import Pkcs11KeyWrapper  # python-pkcs11: the test extra

    wrapper = key_wrapper(pkcs11_settings(tmp_path), tmp_path, create=False)
    assert isinstance(wrapper, Pkcs11KeyWrapper)
    assert PIN not in repr(wrapper)
