"""The directory: jurisdictions, their programs, and each program's sharing agreements.

Loaded from a TOML file (see ``hub/config/resources/directory.toml`` for the documented example). A
program may publish some event types and subscribe to others; a subscription lists the payload
fields the program may receive and cites the legal authority for receiving them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hub.config.signing_keys import ProgramKey, key_by_id
from hub.config.tomlfiles import load_toml
from hub.errors import ConfigError, NotFoundError
from hub.wire import topics
from hub.wire.events import EVENT_TYPES

# Program ids become Kafka topic names (tellonce.notify.<id>.v1): keep them topic-safe.
PROGRAM_ID = re.compile(r"^[a-z][a-z0-9-]{1,62}$")


class Level(StrEnum):
    FEDERAL = "federal"
    PROVINCIAL = "provincial"
    TERRITORIAL = "territorial"
    MUNICIPAL = "municipal"


class Jurisdiction(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    name: str
    level: Level


class Subscription(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    fields: Annotated[tuple[str, ...], Field(min_length=1)]
    authority: Annotated[str, Field(min_length=3, description="Legal authority for receiving.")]


class Program(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    jurisdiction: str
    name: str
    publishes: tuple[str, ...] = ()
    subscriptions: dict[str, Subscription] = Field(default_factory=dict)
    consent_portal: bool = Field(
        False,
        description="A client-facing portal that may publish consent changes on "
        f"{topics.CONSENT_TOPIC} for clients linked to it.",
    )
    keys: tuple[ProgramKey, ...] = Field(
        (), description="Ed25519 public keys the program signs its records with."
    )

    @property
    def notify_topic(self) -> str:
        return topics.notify_topic(self.id)

    def key(self, key_id: str) -> ProgramKey | None:
        return key_by_id(self.keys, key_id)

    def with_keys(self, *keys: ProgramKey) -> Program:
        """This program with ``keys`` listed as well (the demo adds the keys it makes)."""
        return self.model_copy(update={"keys": (*self.keys, *keys)})


class Directory(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    jurisdictions: tuple[Jurisdiction, ...]
    programs: tuple[Program, ...]
    hub_keys: tuple[ProgramKey, ...] = Field(
        (),
        description="The hub's Ed25519 public keys: connectors check notices against them "
        "('tellonce keys hub-entry' prints the entry of the hub's key).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        jurisdictions = {j.id for j in self.jurisdictions}
        seen: set[str] = set()
        for program in self.programs:
            if not PROGRAM_ID.match(program.id):
                raise ValueError(
                    f"program id {program.id!r} must be lowercase letters, digits and dashes "
                    "(it becomes part of a Kafka topic name)"
                )
            if program.id in seen:
                raise ValueError(f"program id {program.id!r} appears twice")
            seen.add(program.id)
            if program.jurisdiction not in jurisdictions:
                raise ValueError(
                    f"program {program.id!r} names unknown jurisdiction {program.jurisdiction!r}"
                )
            for event_type in (*program.publishes, *program.subscriptions):
                if event_type not in EVENT_TYPES:
                    raise ValueError(
                        f"program {program.id!r} names unknown event type {event_type!r}; "
                        f"known: {', '.join(EVENT_TYPES)}"
                    )
            for event_type, sub in program.subscriptions.items():
                allowed = EVENT_TYPES[event_type].disclosable_fields
                extra = [f for f in sub.fields if f not in allowed]
                if extra:
                    raise ValueError(
                        f"program {program.id!r} subscribes to {event_type} fields {extra} that "
                        f"the event does not have; choose from {list(allowed)}"
                    )
        return self

    # -- lookups -------------------------------------------------------------------------------

    def program(self, program_id: str) -> Program:
        for program in self.programs:
            if program.id == program_id:
                return program
        raise NotFoundError(
            f"unknown program {program_id!r}{_did_you_mean(program_id, self.program_ids)}; "
            "run 'tellonce directory show' to list programs"
        )

    @property
    def program_ids(self) -> list[str]:
        return [p.id for p in self.programs]

    def recipients_of(self, event_type: str, *, origin: str) -> list[Program]:
        """Programs subscribed to ``event_type``, except the one that reported it."""
        return [p for p in self.programs if event_type in p.subscriptions and p.id != origin]

    def subscribers(self) -> Iterable[Program]:
        return (p for p in self.programs if p.subscriptions)

    def with_hub_keys(self, *keys: ProgramKey) -> Directory:
        """This directory with the hub's ``keys`` listed as well (the demo lists its hub's)."""
        return self.model_copy(update={"hub_keys": (*self.hub_keys, *keys)})

    def with_program(self, program: Program) -> Directory:
        """This directory with ``program`` in place of the program of the same id."""
        programs = tuple(program if p.id == program.id else p for p in self.programs)
        return self.model_copy(update={"programs": programs})


def check_event_type(name: str) -> str:
    if name not in EVENT_TYPES:
        raise NotFoundError(
            f"unknown event type {name!r}{_did_you_mean(name, list(EVENT_TYPES))}; "
            f"known: {', '.join(EVENT_TYPES)}"
        )
    return name


def _did_you_mean(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def load_directory(path: Path | None = None) -> Directory:
    """Read and check a directory file; None means the shipped example."""
    raw, origin = load_toml(
        path,
        shipped="directory.toml",
        what="directory file",
        hint="set TELLONCE_DIRECTORY_PATH to a TOML file like hub/config/resources/directory.toml",
    )
    try:
        return Directory.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'directory'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise ConfigError(f"{origin} is not a valid directory: {problems}") from exc
