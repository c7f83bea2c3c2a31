"""Notice a consumer whose group join never completes, so that its source can replace it.

kafka-python 3.0.12 can lose the answer to a group join: the member's join task stays pending
for ever, it stops heartbeating, the broker removes it after the session timeout, and every
``poll()`` returns nothing while the client believes it is still rebalancing. Seen on Apache
Kafka 4.4 when a new member rejoined at once after its first assignment (the broker logged the
leader's SyncGroup; the client never saw the answer), in about 1 of 40 demo runs on two busy
cores. ``KafkaSource`` avoids that quick rejoin (it waits for the topics' metadata before the
first join) and replaces a consumer this watch calls stuck: a new one joins normally.

Only the time spent joining while the group coordinator is known counts: a broker that does not
answer at all is an outage, which the callers already wait out, and a member that is in a stable
generation with nothing assigned (more members than partitions) is idle, not stuck.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum
from typing import Any


class JoinState(Enum):
    JOINED = "joined"  # a stable generation, or partitions assigned
    JOINING = "joining"  # the coordinator is known, the join not complete
    NO_COORDINATOR = "no coordinator"  # an outage, or the first lookup


def join_state(consumer: Any) -> JoinState:
    """Where ``consumer`` (a kafka-python KafkaConsumer) stands with its group."""
    if consumer.assignment():
        return JoinState.JOINED
    # kafka-python keeps the group state on its coordinator object, which has no public face.
    # A version without it reads as joined: the watch then never replaces anything.
    coordinator = getattr(consumer, "_coordinator", None)
    if coordinator is None or coordinator.generation_if_stable() is not None:
        return JoinState.JOINED
    if getattr(coordinator, "coordinator_id", None) is None:
        return JoinState.NO_COORDINATOR
    return JoinState.JOINING


def join_limit_s(max_poll_interval_ms: int, session_timeout_ms: int) -> float:
    """How long a join may take before it is taken as lost: twice what the broker itself may
    wait (the rebalance timeout, which kafka-python sets to max_poll_interval_ms, plus a session
    for the sync), and never under 15 s."""
    return max(15.0, 2 * (max_poll_interval_ms + session_timeout_ms) / 1000)


class JoinWatch:
    """Times one consumer's join; ``stuck`` once it has been JOINING longer than ``limit_s``."""

    def __init__(self, limit_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit_s = limit_s
        self._clock = clock
        self._joining_since: float | None = None

    def stuck(self, state: JoinState) -> bool:
        if state is not JoinState.JOINING:
            self._joining_since = None
            return False
        now = self._clock()
        if self._joining_since is None:
            self._joining_since = now
        return now - self._joining_since > self.limit_s

    def waited_s(self) -> float:
        return 0.0 if self._joining_since is None else self._clock() - self._joining_since

    def restart(self) -> None:
        self._joining_since = None
