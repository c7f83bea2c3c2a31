"""Connectors: sinks that put notifications into recipients' back offices.

A sink is found by name: first the built-in alias table, then the ``tellonce.connectors``
entry-point group (third-party packages), then an explicit ``module:attr``.

Connectors import nothing from the hub but ``hub.errors``, the lowest layer, so their errors
(``UnknownSinkError``, ``MissingDriverError``) sit in the one tree a caller catches.
"""

from __future__ import annotations

import difflib
import importlib
from importlib.metadata import entry_points
from typing import cast

from connectors.contract import DeliveryResult, Notification, Outcome, Sink, SinkFactory
from hub.errors import UnknownSinkError

ENTRY_POINT_GROUP = "tellonce.connectors"

# alias -> (module:attr, pip extra that provides its optional dependencies, or None)
BUILTIN: dict[str, tuple[str, str | None]] = {
    "filedrop": ("connectors.filedrop:FileDropSink", None),
    "sqltable": ("connectors.sqltable:StagingTableSink", None),
    "webhook": ("connectors.webhook:WebhookSink", "webhook"),
}


def available() -> dict[str, str]:
    """Every sink name that resolves, with where it comes from."""
    names = dict.fromkeys(BUILTIN, "built-in")
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        names.setdefault(ep.name, f"entry point ({ep.value})")
    return names


def resolve_sink(name: str) -> SinkFactory:
    if name in BUILTIN:
        target, extra = BUILTIN[name]
        return _import(target, extra)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return cast(SinkFactory, ep.load())
    if ":" in name:
        return _import(name, None)
    close = difflib.get_close_matches(name, list(available()), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise UnknownSinkError(
        f"no sink named {name!r}.{hint} Available: {', '.join(sorted(available()))}; "
        "or give module:attr"
    )


def _import(target: str, extra: str | None) -> SinkFactory:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if extra and exc.name and not exc.name.startswith(module_name):
            raise UnknownSinkError(
                f"sink {target} needs {exc.name}; install it with: pip install 'tellonce[{extra}]'"
            ) from exc
        raise UnknownSinkError(f"cannot import sink module {module_name!r}: {exc}") from exc
    try:
        return cast(SinkFactory, getattr(module, attr))
    except AttributeError:
        raise UnknownSinkError(f"module {module_name!r} has no attribute {attr!r}") from None


__all__ = [
    "BUILTIN",
    "ENTRY_POINT_GROUP",
    "DeliveryResult",
    "Notification",
    "Outcome",
    "Sink",
    "SinkFactory",
    "UnknownSinkError",
    "available",
    "resolve_sink",
]
