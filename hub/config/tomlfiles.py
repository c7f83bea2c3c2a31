"""TOML configuration files: a user's file or the one shipped in ``hub/config/resources``."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from hub.errors import ConfigError


def load_toml(
    path: Path | None, *, shipped: str, what: str, hint: str
) -> tuple[dict[str, Any], str]:
    """The parsed file and where it came from; ``None`` reads ``hub/config/resources/<shipped>``.

    ``what`` names the file in errors ("directory file"), ``hint`` says how to fix a missing one.
    """
    try:
        if path is None:
            text = resources.files("hub.config").joinpath(f"resources/{shipped}").read_text("utf-8")
            origin = f"the shipped {what}"
        else:
            text = path.read_text(encoding="utf-8")
            origin = str(path)
        return tomllib.loads(text), origin
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist; {hint}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} {path or shipped} is not valid TOML: {exc}") from exc
