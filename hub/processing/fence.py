"""The store fence: one consumer group, one store.

Hub workers share their consumer group's partitions and keep the group's offsets, decisions
and audit log in their store. A hub started by mistake on another store (a forgotten
``TELLONCE_STORE__URL``, so a stray SQLite file) would take half the partitions and decide
half the events into a database nobody audits. So each store has a random id (made with its
schema), and hubs record ``(group, store id)`` claims on the compacted ``tellonce.hub.v1``
topic (the ``ClaimLog`` port):

- Before joining its group a hub reads the claims. The group works with the store of its
  **oldest** claim in force. Another store: the hub refuses to start (``FenceError``).
- No claim yet: the hub records its own, then reads the log up to that claim. Two hubs that
  started at the same moment both see both claims in the same order, so both agree that the
  older one won; the loser takes its claim back (a tombstone) and refuses. Reading up to its
  own claim also covers a read that ended too early: whatever was recorded before the claim
  is read before it.
- While running, the hub checks again every ``HubSettings.fence_check_every_s``. A claim
  that vanished (the broker lost the topic; Tansu keeps topics in memory) is recorded
  again; if meanwhile another store claimed the group first, the hub stops.

Claims are written once per (group, store), so the oldest claim keeps its place when the
topic is compacted. Anyone who can write the topic can block a group with a forged claim:
let only the hubs' principal write ``tellonce.hub.v1`` (Kafka ACLs).
"""

from __future__ import annotations

from dataclasses import replace

import structlog

from hub.errors import BrokerError, FenceError
from hub.model import StoreClaim, as_utc
from hub.ports import ClaimLog, Clock

log = structlog.get_logger(__name__)

_FIX = (
    "Point TELLONCE_STORE__URL at the group's database ('tellonce db id' prints the store id "
    "of the database it points at), or give this hub a consumer group of its own with "
    "TELLONCE_HUB__GROUP_ID"
)


def owner(claims: list[tuple[int, StoreClaim]], group_id: str) -> StoreClaim | None:
    """The claim the group works with: its oldest claim in force, if any."""
    mine = [(position, claim) for position, claim in claims if claim.group_id == group_id]
    return min(mine, key=lambda entry: entry[0])[1] if mine else None


class StoreFence:
    """Keeps a hub out of a consumer group that works with another store (see module doc)."""

    def __init__(
        self,
        claims: ClaimLog,
        *,
        group_id: str,
        store_id: str,
        audit_key_id: str | None,
        host: str | None,
        clock: Clock,
    ) -> None:
        self._claims = claims
        self._clock = clock
        self._mine = StoreClaim(group_id, store_id, audit_key_id, clock(), host)

    @property
    def group_id(self) -> str:
        return self._mine.group_id

    def enter(self) -> None:
        """Before the group join: go on if the group works with this store or with none
        (then claim it); FenceError if it works with another."""
        found = self._settle()
        if found.store_id != self._mine.store_id:
            raise FenceError(
                f"consumer group {self.group_id!r} works with another store: "
                f"{_describe(found)}; this hub's store (TELLONCE_STORE__URL) is "
                f"{self._mine.store_id}. Refusing to start, so that the group's events are not "
                f"split between two databases. {_FIX}"
            )
        log.info("store fence passed", group=self.group_id, store_id=self._mine.store_id)

    def check(self) -> None:
        """While running: FenceError once the group works with another store (its claim
        vanished and another store claimed it first); a vanished claim is recorded again."""
        found = self._settle()
        if found.store_id != self._mine.store_id:
            raise FenceError(
                f"consumer group {self.group_id!r} now works with another store: "
                f"{_describe(found)} (this hub's claim on tellonce.hub.v1 was lost, and that "
                f"store claimed the group first); this hub's store is {self._mine.store_id}. "
                f"Stopping, so that the group's events are not split between two databases. "
                f"{_FIX}"
            )

    def _settle(self) -> StoreClaim:
        """The group's claim in force, after recording this hub's when there is none."""
        found = owner(self._claims.read(), self.group_id)
        if found is not None:
            return found
        claim = replace(self._mine, claimed_at=self._clock())
        position = self._claims.append(claim)
        found = owner(self._claims.read(through=position), self.group_id)
        if found is None:  # our own claim, acknowledged, is not there: someone removed it
            raise BrokerError(
                f"the claim for consumer group {self.group_id!r} on tellonce.hub.v1 vanished "
                "right after it was recorded; check who else writes that topic"
            )
        if found.store_id == self._mine.store_id:
            log.info("consumer group claimed for this store", group=self.group_id)
        else:
            # Another store's hub claimed the group at the same moment, and first: take ours
            # back so it never looks like the group's store after the topic is compacted.
            self._claims.withdraw(claim)
            log.warning(
                "another store claimed the consumer group first; claim withdrawn",
                group=self.group_id,
                store_id=found.store_id,
            )
        return found

    def close(self) -> None:
        self._claims.close()


def _describe(claim: StoreClaim) -> str:
    when = f"{as_utc(claim.claimed_at):%Y-%m-%dT%H:%M:%SZ}"
    details = [f"claimed {when}"]
    if claim.host:
        details.append(f"by a hub on host {claim.host}")
    if claim.audit_key_id:
        details.append(f"audit key {claim.audit_key_id}")
    return f"store {claim.store_id} ({', '.join(details)})"
