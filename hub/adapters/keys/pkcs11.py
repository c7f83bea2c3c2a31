"""The ``KeyWrapper`` port on a PKCS#11 token: the KEKs live in an HSM (SoftHSM2 in tests).

Each KEK is an AES-256 secret key generated inside the token: a token object that is
sensitive and not extractable, so its value never leaves the token; the hub only asks the
token to encrypt or decrypt with it (python-pkcs11). A KEK is labelled ``tellonce-kek:<id>``
and its id is ``<serial>.<random>`` (``000002.3fa9c1d2``): the current KEK is the one with the
highest serial, so ``new_kek`` makes a KEK current by creating it, one step the token does
atomically. Two rotations racing both create serial N+1; the higher random part wins and the
other KEK stays usable for what it wrapped.

A data key is wrapped by AES-256-GCM inside the token (``CKM_AES_GCM``) with a random 12-byte
IV and the associated data the vault gives (the person), so a wrapped key moved to another
person does not unwrap. The wrapped form is that of ``hub.adapters.keys.aesgcm``:
``0x01 || iv || ciphertext || tag (16 bytes)``.

PKCS#11 logs a whole process in or out of a token at once (a second login fails, and closing
a logged-in session logs out every other), so the wrappers of one process share one session
per token: opened on first use, logged in with the PIN of the wrapper that opened it, closed
when the last wrapper closes. Calls are serialised by the token's lock (a session serves one
call at a time). When the token fails or goes away, the session is dropped and the call raises
KeyStoreError (retriable): the next call opens a new one. Messages name the library, the token
and the setting to fix; never the PIN, and never the library's own text (it can quote
templates).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass, SecretKey, Session
from pkcs11.exceptions import (
    EncryptedDataInvalid,
    EncryptedDataLenRange,
    GeneralError,
    MultipleTokensReturned,
    NoSuchToken,
    PinExpired,
    PinIncorrect,
    PinInvalid,
    PinLenRange,
    PinLocked,
    PKCS11Error,
    UserAlreadyLoggedIn,
    UserPinNotInitialized,
)
from pkcs11.mechanisms import GCMParams
from pydantic import SecretStr

from hub.errors import DecryptionError, KeyStoreError
from hub.model import WrappedKey

LABEL_PREFIX = "tellonce-kek:"
KEY_BITS = 256
FORMAT = b"\x01"  # as hub.adapters.keys.aesgcm writes: a later scheme can be told apart
IV_BYTES = 12
TAG_BYTES = 16
KEK_ID = re.compile(r"(\d{6,})\.([0-9a-f]{8})")
LIBRARY_SETTING = "TELLONCE_PRIVACY__PKCS11_LIBRARY"
LABEL_SETTING = "TELLONCE_PRIVACY__PKCS11_TOKEN"
PIN_SETTING = "TELLONCE_PRIVACY__PKCS11_PIN"

T = TypeVar("T")

# What C_Decrypt answers when a GCM tag does not authenticate, by the PKCS#11 spec. SoftHSM2
# 2.6 answers CKR_GENERAL_ERROR instead, as a failing token might: see ``_decrypt``.
NOT_AUTHENTIC = (EncryptedDataInvalid, EncryptedDataLenRange)
WRONG_PIN = (PinIncorrect, PinInvalid, PinLenRange)


class _Kek(Protocol):
    """What a KEK handle does (python-pkcs11 adds it to ``SecretKey`` at run time)."""

    def encrypt(self, data: bytes, **kwargs: Any) -> bytes | Iterator[bytes]: ...

    def decrypt(self, data: bytes, **kwargs: Any) -> bytes | Iterator[bytes]: ...


@dataclass
class _Token:
    """The session this process holds on one token, the handles of its KEKs, and its users."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    session: Session | None = None
    keys: dict[str, _Kek] = field(default_factory=dict)
    users: int = 0


_TOKENS: dict[tuple[str, str], _Token] = {}
_TOKENS_LOCK = threading.Lock()


def _shared(library: Path, label: str) -> _Token:
    with _TOKENS_LOCK:
        token = _TOKENS.setdefault((str(library), label), _Token())
        token.users += 1
        return token


class Pkcs11KeyWrapper:
    """KEKs in the token labelled ``token`` of the PKCS#11 module ``library``; with
    ``create``, the first KEK is generated on first use when the token holds none."""

    def __init__(self, library: Path, token: str, pin: SecretStr, *, create: bool) -> None:
        self._library = library
        self._token = token
        self._pin = pin
        self._create = create
        self._t = _shared(library, token)
        self._closed = False

    # -- the port ----------------------------------------------------------------------------

    def current_kek(self) -> str:
        with self._t.lock:
            return self._call(self._current)

    def wrap(self, data_key: bytes, aad: bytes) -> WrappedKey:
        with self._t.lock:
            kek_id = self._call(self._current)
            kek = self._call(lambda: self._key(kek_id))
            iv = os.urandom(IV_BYTES)
            sealed = self._call(lambda: _bytes(kek.encrypt(data_key, **_gcm(iv, aad))))
            return WrappedKey(kek_id, FORMAT + iv + sealed)

    def unwrap(self, key: WrappedKey, aad: bytes) -> bytes:
        wrapped = key.wrapped
        if len(wrapped) < len(FORMAT) + IV_BYTES + TAG_BYTES or wrapped[:1] != FORMAT:
            raise DecryptionError(
                f"a data key wrapped under KEK {key.kek_id} is not in the format tellonce writes"
            )
        iv, body = wrapped[1 : 1 + IV_BYTES], wrapped[1 + IV_BYTES :]
        with self._t.lock:
            kek = self._call(lambda: self._key(key.kek_id))
            try:
                return self._call(lambda: self._decrypt(kek, iv, body, aad))
            except DecryptionError:
                raise DecryptionError(
                    f"a data key wrapped under KEK {key.kek_id} does not authenticate: the row "
                    "was altered or belongs to another person"
                ) from None

    def new_kek(self) -> str:
        with self._t.lock:
            return self._call(lambda: self._generate(self._kek_ids()))

    # -- for operators and tests -------------------------------------------------------------

    def kek_ids(self) -> list[str]:
        """Every KEK in the token, oldest first (the last is the current one)."""
        with self._t.lock:
            return self._call(self._kek_ids)

    def close(self) -> None:
        """This wrapper is done; the last one of the process logs out and closes the
        session (a later call opens a new one)."""
        with self._t.lock:
            if not self._closed:
                self._closed = True
                self._t.users -= 1
            if self._t.users <= 0:
                self._drop()

    # -- inside the lock ---------------------------------------------------------------------

    def _current(self) -> str:
        ids = self._kek_ids()
        if ids:
            return ids[-1]
        if not self._create:
            raise KeyStoreError(
                f"the token {self._token!r} holds no tellonce KEK: point {LABEL_SETTING} at "
                "the hub's token, or let the hub create one with "
                "TELLONCE_PRIVACY__CREATE_KEYS=true on a new store"
            )
        return self._generate(ids)

    def _kek_ids(self) -> list[str]:
        """The ids of the KEKs in the token, in the order they were made (by serial)."""
        found: dict[str, _Kek] = {}
        template = {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES}
        for obj in self._open().get_objects(template):
            label = obj[Attribute.LABEL]
            if isinstance(label, str) and label.startswith(LABEL_PREFIX):
                kek_id = label.removeprefix(LABEL_PREFIX)
                if KEK_ID.fullmatch(kek_id) and isinstance(obj, SecretKey):
                    found[kek_id] = cast(_Kek, obj)
        self._t.keys.update(found)
        return sorted(found, key=_order)

    def _generate(self, existing: list[str]) -> str:
        serial = max((_order(k)[0] for k in existing), default=0) + 1
        kek_id = f"{serial:06d}.{secrets.token_hex(4)}"
        key = self._open().generate_key(
            KeyType.AES,
            KEY_BITS,
            label=LABEL_PREFIX + kek_id,
            store=True,  # a token object: it outlives the session
            capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
            template={
                # Never leaves the token: not readable, not wrappable, not even by the hub.
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.PRIVATE: True,  # seen only after login
            },
        )
        self._t.keys[kek_id] = cast(_Kek, key)
        return kek_id

    def _decrypt(self, kek: _Kek, iv: bytes, body: bytes, aad: bytes) -> bytes:
        try:
            return _bytes(kek.decrypt(body, **_gcm(iv, aad)))
        except GeneralError:
            # SoftHSM2 reports a tag that does not authenticate as a general error, which is
            # also what a failing token reports. A round trip under the same KEK tells them
            # apart: when it works, the token is fine and the wrapped key is not authentic.
            if not self._works(kek):
                raise
            raise DecryptionError("a wrapped data key does not authenticate") from None

    @staticmethod
    def _works(kek: _Kek) -> bool:
        probe, iv = os.urandom(32), os.urandom(IV_BYTES)
        try:
            sealed = _bytes(kek.encrypt(probe, **_gcm(iv, b"probe")))
            return _bytes(kek.decrypt(sealed, **_gcm(iv, b"probe"))) == probe
        except PKCS11Error:
            return False

    def _key(self, kek_id: str) -> _Kek:
        key = self._t.keys.get(kek_id)
        if key is None:
            self._kek_ids()
            key = self._t.keys.get(kek_id)
        if key is None:
            raise KeyStoreError(
                f"KEK {kek_id} is not in the token {self._token!r}; data keys wrapped under it "
                f"cannot be unwrapped: restore the token from its backup or fix {LABEL_SETTING}"
            )
        return key

    def _open(self) -> Session:
        if self._t.session is not None:
            return self._t.session
        library = str(self._library)
        try:
            token = pkcs11.lib(library).get_token(token_label=self._token)
        except NoSuchToken:
            raise KeyStoreError(
                f"the PKCS#11 library {library} has no token labelled {self._token!r}; "
                f"initialise it (for SoftHSM2: softhsm2-util --init-token --free --label "
                f"{self._token}) or fix {LABEL_SETTING}"
            ) from None
        except MultipleTokensReturned:
            raise KeyStoreError(
                f"the PKCS#11 library {library} has several tokens labelled {self._token!r}; "
                "give the hub's token a label of its own"
            ) from None
        except PKCS11Error as exc:
            raise KeyStoreError(
                f"cannot use the PKCS#11 library {library} ({type(exc).__name__}); check "
                f"{LIBRARY_SETTING} and that the HSM is reachable"
            ) from None
        try:
            session = token.open(rw=True, user_pin=self._pin.get_secret_value())
        except UserAlreadyLoggedIn:
            # Something else in this process logged in to the token: the login is the
            # process's, so a session without one sees the KEKs too (and never logs it out).
            session = self._open_logged_in(token)
        except WRONG_PIN:
            raise KeyStoreError(
                f"the token {self._token!r} refused the PIN in {PIN_SETTING}; fix it (the "
                "token locks itself after a few wrong PINs)"
            ) from None
        except (PinLocked, PinExpired, UserPinNotInitialized) as exc:
            raise KeyStoreError(
                f"the token {self._token!r} does not accept its user PIN ({type(exc).__name__}): "
                "its security officer must unlock or set the PIN"
            ) from None
        except PKCS11Error as exc:
            raise KeyStoreError(
                f"cannot open a session on the token {self._token!r} ({type(exc).__name__}); "
                "check that the HSM is reachable and the token initialised"
            ) from None
        self._t.session = session
        return session

    def _open_logged_in(self, token: Any) -> Session:
        try:
            opened: Session = token.open(rw=True)
        except PKCS11Error as exc:
            raise KeyStoreError(
                f"cannot open a session on the token {self._token!r} ({type(exc).__name__}); "
                "check that the HSM is reachable and the token initialised"
            ) from None
        return opened

    def _drop(self) -> None:
        session, self._t.session = self._t.session, None
        self._t.keys.clear()  # object handles belong to the session
        if session is not None:
            with contextlib.suppress(PKCS11Error):  # a token gone already: nothing to close
                session.close()

    def _call(self, step: Callable[[], T]) -> T:
        """Run ``step`` on the token. A refused decryption is DecryptionError; any other
        failure of the token drops the session (the next call opens a new one) and is
        KeyStoreError, retriable."""
        if self._closed:  # used again after close: a user of the session again
            self._closed = False
            self._t.users += 1
        try:
            return step()
        except NOT_AUTHENTIC:
            raise DecryptionError("a wrapped data key does not authenticate") from None
        except PKCS11Error as exc:
            self._drop()
            raise KeyStoreError(
                f"the token {self._token!r} failed ({type(exc).__name__}); the hub retries "
                "with a new session"
            ) from None


def _order(kek_id: str) -> tuple[int, str]:
    serial, _, tail = kek_id.partition(".")
    return int(serial), tail


def _gcm(iv: bytes, aad: bytes) -> dict[str, Any]:
    return {"mechanism": Mechanism.AES_GCM, "mechanism_param": GCMParams(iv, aad, TAG_BYTES * 8)}


def _bytes(value: object) -> bytes:
    if not isinstance(value, bytes):  # bytes in, bytes out: python-pkcs11 streams only iterables
        raise TypeError("the PKCS#11 library answered a one-shot call with a stream")
    return value
