"""The webhook sink's ``--option key=value`` settings, checked once when the sink is built.

Every problem is a ValueError that names the option and the fix (the runner reports it as a
configuration error); no message ever quotes a secret or key material.
"""

from __future__ import annotations

import difflib
import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connectors.webhook.signing import Ed25519Signer, HmacSigner, Signer

KNOWN = ("url", "secret", "secret_file", "signing", "key_file", "timeout", "verify_tls", "ca_file")
SIGNING_SCHEMES = ("hmac-sha256", "ed25519")
MIN_SECRET_BYTES = 32
DEFAULT_TIMEOUT_S = 10.0
_TRUE = ("true", "yes", "1", "on")
_FALSE = ("false", "no", "0", "off")


@dataclass(frozen=True, slots=True)
class WebhookOptions:
    url: str
    signer: Signer
    timeout_s: float
    verify: ssl.SSLContext | bool


def parse_options(options: dict[str, str]) -> WebhookOptions:
    _reject_unknown(options)
    return WebhookOptions(
        url=_url(options),
        signer=_signer(options),
        timeout_s=_timeout(options),
        verify=_verify(options),
    )


def _reject_unknown(options: dict[str, str]) -> None:
    for key in options:
        if key not in KNOWN:
            close = difflib.get_close_matches(key, KNOWN, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"the webhook sink has no option {key!r}.{hint} Known: {', '.join(KNOWN)}"
            )


def _url(options: dict[str, str]) -> str:
    url = options.get("url", "")
    if not url:
        raise ValueError("the webhook sink needs --option url=https://HOST/PATH")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            "the webhook url must be an absolute http:// or https:// address with a host"
        )
    if parts.username or parts.password:
        raise ValueError(
            "the webhook url must not carry credentials; requests are authenticated by signature"
        )
    return url


def _signer(options: dict[str, str]) -> Signer:
    scheme = options.get("signing", "hmac-sha256")
    if scheme not in SIGNING_SCHEMES:
        raise ValueError(f"signing must be one of {', '.join(SIGNING_SCHEMES)}, not {scheme!r}")
    if scheme == "ed25519":
        if "secret" in options or "secret_file" in options:
            raise ValueError(
                "signing=ed25519 signs with key_file; drop secret/secret_file "
                "(they are for signing=hmac-sha256)"
            )
        if "key_file" not in options:
            raise ValueError(
                "signing=ed25519 needs --option key_file=PATH to an Ed25519 private key (PEM)"
            )
        return Ed25519Signer(_private_key(Path(options["key_file"])))
    if "key_file" in options:
        raise ValueError("key_file is for signing=ed25519; for HMAC give secret_file=PATH")
    return HmacSigner(_secret(options))


def _secret(options: dict[str, str]) -> bytes:
    if "secret" in options and "secret_file" in options:
        raise ValueError("give either secret or secret_file, not both")
    if "secret_file" in options:
        path = Path(options["secret_file"])
        try:
            secret = path.read_bytes().strip()
        except OSError as exc:
            raise ValueError(
                f"cannot read the webhook secret_file {str(path)!r}: {exc.strerror}"
            ) from None
    elif "secret" in options:
        secret = options["secret"].encode("utf-8")
    else:
        raise ValueError(
            "the webhook sink signs every request: give --option secret_file=PATH "
            "(or secret=VALUE), or signing=ed25519 with key_file=PATH"
        )
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(
            f"the webhook secret is shorter than {MIN_SECRET_BYTES} bytes; "
            "make one with `openssl rand -hex 32` and share it with the recipient"
        )
    return secret


def _private_key(path: Path) -> Ed25519PrivateKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(
            f"cannot read the webhook key_file {str(path)!r}: {exc.strerror}"
        ) from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise ValueError(
            f"the webhook key_file {str(path)!r} is encrypted; give an unencrypted PKCS#8 PEM"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise ValueError(
            f"the webhook key_file {str(path)!r} is not a readable PEM private key"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(
            f"the webhook key_file {str(path)!r} holds a {type(key).__name__}, not an Ed25519 key"
        )
    return key


def _timeout(options: dict[str, str]) -> float:
    raw = options.get("timeout", str(DEFAULT_TIMEOUT_S))
    try:
        timeout = float(raw)
    except ValueError:
        timeout = float("nan")
    if not 0 < timeout <= 600:
        raise ValueError(f"timeout must be a number of seconds in (0, 600], not {raw!r}")
    return timeout


def _verify(options: dict[str, str]) -> ssl.SSLContext | bool:
    raw = options.get("verify_tls", "true").lower()
    if raw not in _TRUE + _FALSE:
        raise ValueError(f"verify_tls must be true or false, not {raw!r}")
    ca_file = options.get("ca_file")
    if raw in _FALSE:
        if ca_file:
            raise ValueError("ca_file has no effect with verify_tls=false; drop one of them")
        return False
    if not ca_file:
        return True
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or "unreadable"
        raise ValueError(
            f"cannot load the webhook ca_file {ca_file!r} as PEM certificates: {reason}"
        ) from None
