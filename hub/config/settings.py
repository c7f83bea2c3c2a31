"""Settings, read once by the composition root. Environment prefix ``TELLONCE_``.

Every model is frozen: what a run derives (the embedded broker's address, say) lives beside the
settings in ``hub.bootstrap.App``, never written back into them; a variant is a ``model_copy``.

Nested settings use ``__``: ``TELLONCE_STORE__URL``, ``TELLONCE_BROKER__BOOTSTRAP_SERVERS``.
A ``TELLONCE_*`` variable that names no setting is an error (``unknown_variables``), not a
silent default: pydantic's ``extra="forbid"`` only sees variables that map to a field.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hub.config.broker import BrokerSettings as BrokerSettings  # its own module, same name
from hub.wire.limits import EARLIEST_DATE, LATEST_DATE, DecodeLimits


class StoreSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(
        "sqlite:///tellonce.db",
        description="SQLAlchemy database URL: sqlite:///path.db or postgresql://user@host/db.",
    )
    auto_migrate: bool = Field(True, description="Upgrade the schema at start-up.")


class HubSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    group_id: str = Field(
        "tellonce-hub",
        min_length=1,
        max_length=255,
        description="Consumer group of the hub workers; 1 to 255 characters (the store keeps "
        "the group's offsets under it).",
    )
    batch_size: int = Field(200, ge=1, le=5_000, description="Most events per transaction.")
    poll_timeout_ms: int = Field(500, ge=10, description="How long one poll waits for events.")
    relay_batch: int = Field(500, ge=1, description="Most outbox rows published per round.")
    relay_in_background: bool | None = Field(
        None,
        description="Publish the outbox from a thread of the worker while it decides the next "
        "batch (true), or between batches in the consume loop (false); unset: a thread on "
        "PostgreSQL, where it cuts latency, and the loop on SQLite, whose one writer at a time "
        "makes the thread slower.",
    )
    redeliver_after_s: float = Field(
        300.0,
        gt=0,
        description="Publish a notification again when its connector sent no receipt for this "
        "long (covers a broker that lost data); the sink's idempotency absorbs the repeat.",
    )
    redeliver_max: int = Field(
        12, ge=0, description="Publish one notification again at most this many times."
    )
    fence_check_every_s: float = Field(
        30.0,
        gt=0,
        description="How often a running hub checks on tellonce.hub.v1 that its consumer "
        "group still works with its store (it checks before joining, too); it stops if not.",
    )
    require_signatures: bool = Field(
        True,
        description="Refuse a life event or a portal's consent event that carries no signature "
        "of its program's key (reason unsigned). A signature present is always checked "
        "(bad_signature, unknown_key, key_expired). false lets unsigned records through, only "
        "while publishers and portals are moved onto keys; see README, Signed life events.",
    )
    require_signed_receipts: bool = Field(
        True,
        description="Refuse a connector's receipt that carries no signature of a key the "
        "directory lists for its recipient (reason unsigned; the notification stays "
        "undelivered and is published again). A signature present is always checked, and so "
        "is the notice digest it names. false takes unsigned receipts, only while connectors "
        "are moved onto keys; see README, Signed receipts.",
    )


class AuditSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    signing_key: Path = Field(
        Path("tellonce-audit-key.pem"),
        description="Ed25519 private key (PKCS8 PEM) that signs audit checkpoints and consent "
        "receipts. Keep it secret and backed up; publish its public key "
        "('tellonce audit public-key').",
    )
    pseudonym_key: Path | None = Field(
        None,
        description="Key (32 random bytes, hex) of the HMAC-SHA-256 hashes that stand for "
        "publisher-supplied ids (ce_id) in audit leaves and the rejections table. Keep it "
        "secret and backed up with the signing key; a privacy officer needs it to look an id "
        "up. Default: the signing key's path with the suffix .pseudonym-key.",
    )
    create_key: bool = Field(
        True,
        description="Create the signing key and the pseudonym key on first use when their files "
        "are missing (embedded default). Set false in production so a missing key stops the "
        "hub instead.",
    )
    checkpoint_every_leaves: int = Field(
        1_000, ge=1, description="Issue a signed checkpoint once this many leaves are unsigned."
    )
    checkpoint_every_s: float = Field(
        30.0, gt=0, description="Issue a signed checkpoint when leaves are this old unsigned."
    )
    issuer: str = Field("tellonce-hub", description="Issuer (iss) named in consent receipts.")

    def pseudonym_key_path(self) -> Path:
        return self.pseudonym_key or self.signing_key.with_suffix(".pseudonym-key")


class PrivacySettings(BaseModel):
    """Personal data at rest: data keys per person wrapped by a key-encryption key (KEK)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_wrapper: Literal["file", "pkcs11"] = Field(
        "file",
        description="Where the KEK lives: 'file' (a key folder, embedded default) or 'pkcs11' "
        "(an HSM token through its PKCS#11 library; the KEK never leaves it).",
    )
    kek_dir: Path | None = Field(
        None,
        description="Folder of KEK files for key_wrapper=file (one per KEK, mode 0600). Keep it "
        "secret, apart from database backups. Default: the signing key's path with the suffix "
        ".keks.",
    )
    pkcs11_library: Path | None = Field(
        None, description="PKCS#11 module for key_wrapper=pkcs11, e.g. libsofthsm2.so."
    )
    pkcs11_token: str = Field("tellonce", description="Label of the token that holds the KEKs.")
    pkcs11_pin: SecretStr | None = Field(None, description="User PIN of that token; secret.")
    index_key: Path | None = Field(
        None,
        description="Key (32 random bytes, hex) of the blind index that finds sealed local ids "
        "(HMAC-SHA-256). Keep it secret and backed up: without it no local id resolves. "
        "Default: the signing key's path with the suffix .index-key.",
    )
    create_keys: bool = Field(
        True,
        description="Create the first KEK and the index key on first use when missing "
        "(embedded default). Set false in production so a missing key stops the hub instead.",
    )
    outbox_retention: timedelta = Field(
        timedelta(days=7),
        ge=timedelta(0),
        description="How long the hub keeps a notice after its delivery receipt (a rejection "
        "after it was published) before deleting it from its outbox. Seconds or ISO 8601.",
    )

    def kek_dir_path(self, signing_key: Path) -> Path:
        return self.kek_dir or signing_key.with_suffix(".keks")

    def index_key_path(self, signing_key: Path) -> Path:
        return self.index_key or signing_key.with_suffix(".index-key")


class ConnectorSettings(BaseModel):
    """Error handling of connectors, named after Kafka Connect's ``errors.*`` settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    errors_retry_timeout_ms: int = Field(
        300_000,
        ge=-1,
        description="errors.retry.timeout: how long to keep retrying one notification before "
        "it is dead-lettered; 0 = never retry, -1 = retry forever.",
    )
    errors_retry_delay_max_ms: int = Field(
        60_000,
        ge=0,
        description="errors.retry.delay.max.ms: the longest wait between two attempts. Waits "
        "grow exponentially with full jitter up to this, or follow the far side's Retry-After.",
    )
    errors_retry_delay_initial_ms: int = Field(
        200, ge=1, description="The first retry waits up to this long (then doubling)."
    )
    errors_tolerance: Literal["none", "all"] = Field(
        "all",
        description="errors.tolerance: 'all' dead-letters a notification that failed for good "
        "(or ran out of retry time) and goes on; 'none' stops the connector instead, "
        "committing nothing, so the notification is retried when it restarts.",
    )
    progress_every_s: float = Field(
        10.0, gt=0, description="How often a running connector logs its progress."
    )
    require_signed_notices: bool = Field(
        True,
        description="Dead-letter a notice that carries no signature of the hub (unsigned), and "
        "refuse to start when the directory lists no hub key (hub_keys). With false, a "
        "signature present is checked whenever the directory lists hub keys; see README, "
        "Signed notices.",
    )
    signing_key: Path | None = Field(
        None,
        description="Ed25519 private key (PKCS8 PEM, from 'tellonce keys new RECIPIENT --out "
        "FILE') the connector signs its receipts with; list its public key under the "
        "recipient's [[programs.keys]]. Unset: receipts go unsigned, which a hub that requires "
        "signed receipts refuses. See README, Signed receipts.",
    )


class LimitSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_bytes: int = Field(64 * 1024, ge=64, description="Largest inbound value accepted.")
    max_depth: int = Field(16, ge=2, le=64, description="Deepest Avro nesting accepted.")
    max_items: int = Field(1_000, ge=1, description="Most array/map items in one message.")
    min_date: date = Field(
        date(1900, 1, 1),
        ge=EARLIEST_DATE,
        description="Earliest date or timestamp (Avro date, timestamp-millis, ...) an inbound "
        "record may carry; earlier is rejected as out_of_range before it is decoded.",
    )
    max_date: date = Field(
        date(2100, 12, 31),
        le=LATEST_DATE,
        description="Latest date (the whole day included) an inbound date or timestamp may "
        "carry; later is rejected as out_of_range before it is decoded.",
    )
    clock_skew_s: float = Field(
        300.0,
        ge=0,
        le=86_400,
        description="How far ahead of the hub's clock a ce_time (and a consent's recorded_at) "
        "may be; publishers' clocks drift. Further ahead is rejected (out_of_range).",
    )

    @model_validator(mode="after")
    def _window_is_ordered(self) -> LimitSettings:
        if self.min_date > self.max_date:
            raise ValueError("min_date must not be after max_date")
        return self

    def decode_limits(self) -> DecodeLimits:
        return DecodeLimits(
            self.max_bytes, self.max_depth, self.max_items, self.min_date, self.max_date
        )

    @property
    def clock_skew(self) -> timedelta:
        return timedelta(seconds=self.clock_skew_s)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TELLONCE_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,  # the broker's and the HSM's passwords are settings
    )

    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    hub: HubSettings = Field(default_factory=HubSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    connector: ConnectorSettings = Field(default_factory=ConnectorSettings)
    directory_path: Path | None = Field(
        None, description="Directory TOML file; default: the shipped example directory."
    )
    schemas_dir: Path | None = Field(
        None, description="Folder with catalog.json and .avsc files; default: the shipped one."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Lowest level logged (to standard error)."
    )
    log_format: Literal["json", "console"] = Field("json", description="Log rendering.")

    def relay_in_background(self) -> bool:
        """``hub.relay_in_background``, or when unset: true unless the store is SQLite."""
        chosen = self.hub.relay_in_background
        return chosen if chosen is not None else not self.store.url.startswith("sqlite")


ENV_PREFIX = "TELLONCE_"


def setting_variables() -> list[str]:
    """Every environment variable a setting is read from: ``TELLONCE_STORE`` (a whole nested
    model as JSON) as well as ``TELLONCE_STORE__URL``."""
    names = []
    for name, field in Settings.model_fields.items():
        names.append(f"{ENV_PREFIX}{name.upper()}")
        model = field.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            names += [f"{ENV_PREFIX}{name.upper()}__{sub.upper()}" for sub in model.model_fields]
    return names


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """One problem per ``TELLONCE_*`` variable in ``environ`` that names no setting (names are
    case-insensitive, as pydantic-settings reads them), with the closest setting's name.

    Only names are quoted, never values: a store URL can hold a password.
    """
    known = setting_variables()
    problems = []
    for variable in sorted(environ):
        upper = variable.upper()
        if not upper.startswith(ENV_PREFIX) or upper in known:
            continue
        # Compare what follows the prefix, which every name shares and would make all alike.
        close = difflib.get_close_matches(
            upper.removeprefix(ENV_PREFIX), [k.removeprefix(ENV_PREFIX) for k in known], n=1
        )
        hint = f"; did you mean {ENV_PREFIX}{close[0]}?" if close else ""
        problems.append(f"{variable} is not a tellonce setting{hint}")
    return problems
