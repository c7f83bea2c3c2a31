"""Keys that protect personal data at rest: the AES-256-GCM ``Sealer`` (``aesgcm``) and the
``KeyWrapper`` adapters that hold the key-encryption keys (``keyfile``: a key folder;
``pkcs11``: an HSM token). ``build_vault`` assembles the vault the store seals with.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hub.adapters.keys.aesgcm import AesGcmSealer
from hub.adapters.keys.keyfile import FileKeyWrapper
from hub.config.settings import PrivacySettings
from hub.errors import ConfigError
from hub.ports.privacy import KeyWrapper
from hub.privacy.blind_index import BlindIndex
from hub.privacy.vault import Vault

__all__ = ["AesGcmSealer", "FileKeyWrapper", "build_vault", "key_wrapper"]


def key_wrapper(settings: PrivacySettings, kek_dir: Path, *, create: bool) -> KeyWrapper:
    """The KEK holder the settings name; ConfigError when its settings are incomplete or
    its library is not installed. Nothing is opened here: the first use reads the KEK."""
    if settings.key_wrapper == "file":
        return FileKeyWrapper(kek_dir, create=create)
    return _pkcs11_wrapper(settings, create=create)


def _pkcs11_wrapper(settings: PrivacySettings, *, create: bool) -> KeyWrapper:
    library, pin = settings.pkcs11_library, settings.pkcs11_pin
    if library is None:
        raise ConfigError(
            "key_wrapper=pkcs11 needs the HSM's PKCS#11 library: set "
            "TELLONCE_PRIVACY__PKCS11_LIBRARY (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so)"
        )
    if not library.is_file():
        raise ConfigError(
            f"the PKCS#11 library {library} does not exist; install the HSM's client "
            "(SoftHSM2: apt-get install softhsm2) or fix TELLONCE_PRIVACY__PKCS11_LIBRARY"
        )
    if not settings.pkcs11_token.strip():
        raise ConfigError(
            "key_wrapper=pkcs11 needs the label of the token that holds the KEKs: set "
            "TELLONCE_PRIVACY__PKCS11_TOKEN"
        )
    if pin is None or not pin.get_secret_value():
        raise ConfigError(
            "key_wrapper=pkcs11 needs the token's user PIN: set TELLONCE_PRIVACY__PKCS11_PIN "
            "(from a secret store, not a file in the repository)"
        )
    try:
        from hub.adapters.keys.pkcs11 import Pkcs11KeyWrapper
    except ModuleNotFoundError as exc:
        if exc.name != "pkcs11":
            raise
        raise ConfigError(
            "key_wrapper=pkcs11 needs python-pkcs11, which is not installed: "
            "pip install 'tellonce[hsm]'"
        ) from None
    return Pkcs11KeyWrapper(library, settings.pkcs11_token, pin, create=create)


def build_vault(
    settings: PrivacySettings,
    kek_dir: Path,
    index_key: bytes | Callable[[], bytes],
    *,
    create: bool,
) -> Vault:
    """The vault over the configured KEK holder, AES-256-GCM and the blind index key."""
    return Vault(
        key_wrapper(settings, kek_dir, create=create), AesGcmSealer(), BlindIndex(index_key)
    )
