"""The fault tests' traffic: people who consented to several recipients, a plan of life events
of several types from two publishers, and a publisher that sends them steadily while the
cluster fails, as a careful publisher would: idempotent, acks=all, and when a flush fails
(the broker did not acknowledge within the delivery timeout) it sends the same events again,
with the same ce_ids, for the hub to absorb as duplicates."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from consent.model import ConsentState
from hub.errors import BrokerError
from hub.wire.publishing import event_message
from hub.wire.topics import LIFEEVENTS_TOPIC
from tests.keyring import signer

from ...harness import Harness, address, address_payload

SERVICE_BC = "bc-service-bc"
CRA = "cra-individual"
# The recipients whose connectors run: each person consented to them (bc-msp: every other
# person). The directory's other recipients of these types are decided too, and withheld.
CONNECTED = ("cra-individual", "bc-msp", "esdc-cpp")
RESEND_PAUSE_S = 1.0  # before a publisher sends a failed chunk again
PUBLISH_LIMIT_S = 600.0  # the whole publishing, faults included: reached on failure only


@dataclass(frozen=True)
class Planned:
    """One life event to publish: who reports it, its type, its payload."""

    source: str
    event_type: str
    payload: dict[str, Any]


def population(harness: Harness, people: int) -> None:
    """``people`` persons known to Service BC, the CRA, BC MSP and ESDC (``SBC-i``, ``CRA-i``,
    ``MSP-i``, ``CPP-i``), who consented to address changes going to the CRA and ESDC (the
    even ones to BC MSP too) and name changes to ESDC."""
    service = harness.app.consent()
    for i in range(people):
        person = harness.client(
            {SERVICE_BC: f"SBC-{i}", CRA: f"CRA-{i}", "bc-msp": f"MSP-{i}", "esdc-cpp": f"CPP-{i}"}
        )
        given = {
            "cra-individual": ["AddressChanged"],
            "esdc-cpp": ["AddressChanged", "NameChanged"],
        }
        if i % 2 == 0:
            given["bc-msp"] = ["AddressChanged"]
        for recipient, types in given.items():
            service.record(person, recipient, types, ConsentState.GIVEN, harness.evidence())


def plan(people: int, events: int) -> list[Planned]:
    """``events`` life events about the people in turn: of every 10, seven address changes
    and two name changes from Service BC, and one address change from the CRA."""
    planned = []
    for n in range(events):
        i = n % people
        kind = n % 10
        if kind < 7:
            planned.append(
                Planned(
                    SERVICE_BC,
                    "AddressChanged",
                    address_payload(f"SBC-{i}", new_address=address(f"{n} Main St")),
                )
            )
        elif kind < 9:
            name = {
                "subject_id": f"SBC-{i}",
                "effective_date": date(2025, 1, 1),
                "given_names": f"Alex {n}",
                "family_name": "Tremblay",
                "reason": "MARRIAGE",
            }
            planned.append(Planned(SERVICE_BC, "NameChanged", name))
        else:
            planned.append(
                Planned(CRA, "AddressChanged", address_payload(f"CRA-{i}", new_address=address()))
            )
    return planned


class Publisher:
    """Publishes ``planned`` in chunks at ``per_s`` events a second from a thread, each chunk
    flushed; a chunk the broker did not acknowledge is sent again, same bytes, same ce_ids.

    Its last chunk waits for ``release()``: a fault injected late (a cluster stop, which can
    take up to 30 s) then still finds the publisher with something to send, however fast the
    rest went, instead of a publisher that finished while the nodes were shutting down."""

    def __init__(self, harness: Harness, planned: list[Planned], per_s: float, chunk: int = 20):
        self.harness = harness
        self.planned = planned
        self.per_s = per_s
        self.chunk = chunk
        self._released = threading.Event()
        self.acknowledged: list[str] = []  # ce_ids, in order
        self.resent = 0  # events sent again after their chunk failed
        self.failures: list[str] = []  # why each failed attempt failed
        self.error: BaseException | None = None
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)

    @property
    def count(self) -> int:
        return len(self.acknowledged)

    def start(self) -> None:
        self._thread.start()

    def finish(self, limit_s: float) -> None:
        """Let the last chunk go and wait until every event was acknowledged (bounded); raise
        what stopped it."""
        self.release()
        self._thread.join(limit_s)
        if self._thread.is_alive():
            self._halt.set()
            self._thread.join(10)
            raise AssertionError(
                f"the publisher had {self.count} of {len(self.planned)} events acknowledged "
                f"after {limit_s:.0f} s; last failures: {self.failures[-3:]}"
            )
        if self.error is not None:
            raise self.error

    def release(self) -> None:
        """Let the last chunk go."""
        self._released.set()

    def halt(self) -> None:
        self._halt.set()
        self._released.set()
        self._thread.join(10)

    def _run(self) -> None:
        try:
            self._publish()
        except BaseException as exc:  # finish() raises it in the test's thread
            self.error = exc

    def _publish(self) -> None:
        app = self.harness.app
        started = due = time.monotonic()
        producer = None
        last = max(0, len(self.planned) - self.chunk)
        for first in range(0, len(self.planned), self.chunk):
            if self._halt.wait(max(0.0, due - time.monotonic())):
                return
            if first >= last:
                self._released.wait()
                if self._halt.is_set():
                    return
            at = datetime.now(UTC)
            messages = [
                event_message(
                    app.codec,
                    source=p.source,
                    event_type=p.event_type,
                    payload=p.payload,
                    at=at,
                    signer=signer(p.source),
                )
                for p in self.planned[first : first + self.chunk]
            ]
            sent = False
            while True:
                if time.monotonic() - started > PUBLISH_LIMIT_S:
                    raise AssertionError(f"publishing took longer than {PUBLISH_LIMIT_S:.0f} s")
                try:
                    producer = producer or app.producer(self.harness.kafka)
                    if sent:
                        self.resent += len(messages)
                    for key, value, headers, _ in messages:
                        producer.send(LIFEEVENTS_TOPIC, key, value, headers)
                        sent = True
                    producer.flush()
                    break
                except BrokerError as exc:
                    self.failures.append(str(exc)[:200])
                    if producer is not None:
                        producer.close()
                        producer = None
                    if self._halt.wait(RESEND_PAUSE_S):
                        return
            self.acknowledged.extend(ce_id for *_, ce_id in messages)
            # Steady after a stall too: no burst to make up for the time a fault took, so that
            # events are still coming when the next fault is injected.
            due = max(due + self.chunk / self.per_s, time.monotonic())
        if producer is not None:
            producer.close()
