"""The bench's clients: who the life events are about and whom they consent to.

With the shipped directory, an ``AddressChanged`` event from ``bc-service-bc`` about one of these
clients is disclosed to the 4 ``CONSENTED`` subscribers and withheld from the other 4 (no
identity link there). Every client has 5 identity links (the publisher and the 4 subscribers)
and 4 consent revisions (given to each of the 4 for ``AddressChanged``).

``link_clients`` records a few hundred through ``ConsentService``, as a counter clerk would
(audit leaves and all: about 45 ms a client). ``seed_bulk`` writes a large population straight
into the tables, rows built by the SQL store's own mappers (data keys made and local ids
sealed with the store's vault, as the store does) and revisions chained by
``consent.rules.next_revision``, by COPY on PostgreSQL in chunks: a million consents in minutes.
It writes no audit leaves (the decision path reads only the log's head).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine

from consent.model import ConsentState, Evidence, IdentityLink
from consent.rules import next_revision
from hub.adapters.sql.mappers import link_values, revision_values
from hub.adapters.sql.sealing import sealed_local_id
from hub.bootstrap import App
from hub.privacy.vault import Vault

PUBLISHER = "bc-service-bc"
EVENT_TYPE = "AddressChanged"
# Subscribers of AddressChanged in the shipped directory the bench's clients consent to; the
# other four are withheld (no identity link).
CONSENTED = ("cra-individual", "esdc-cpp", "bc-msp", "bc-icbc-licensing")
FANOUT = len(CONSENTED)
SEED_CHUNK = 10_000  # clients per COPY round: 50,000 links and 40,000 revisions

Say = Callable[[str], None]


def subject(i: int) -> str:
    """Client ``i``'s id at the publisher (the events' ``subject_id``)."""
    return f"SBC-{i:06d}"


def local_id(recipient: str, i: int) -> str:
    """Client ``i``'s id at a subscribing program."""
    return f"{recipient[:4]}-{i:06d}"


def address_payload(i: int, person: int) -> dict[str, Any]:
    """The ``i``-th AddressChanged payload, about client ``person``."""
    return {
        "subject_id": subject(person),
        "effective_date": date(2025, 1, 1),
        "new_address": {
            "lines": [f"{i} Main St"],
            "municipality": "Victoria",
            "province": "BC",
            "postal_code": "V8W 1A1",
        },
        "mailing_address": None,
    }


def link_clients(app: App, people: int, say: Say) -> None:
    """``people`` clients linked and consenting through the hub's own use-cases."""
    started = time.perf_counter()
    service = app.consent()
    evidence = Evidence("counter", "staff-1", datetime.now(UTC))
    for i in range(people):
        person = service.link(PUBLISHER, subject(i), evidence)
        for recipient in CONSENTED:
            service.link(recipient, local_id(recipient, i), evidence, to=person)
            service.record(person, recipient, [EVENT_TYPE], ConsentState.GIVEN, evidence)
    say(f"  {people} clients linked and consenting in {time.perf_counter() - started:.1f} s")


def _rows(
    vault: Vault, start: int, stop: int, evidence: Evidence
) -> tuple[list[Any], list[Any], list[Any]]:
    """The persons, identity_links and consent_revisions rows of clients ``start``..``stop``."""
    persons, links, revisions = [], [], []
    for i in range(start, stop):
        person = str(uuid.uuid4())  # as ConsentService.link makes them
        key = vault.new_key(person)
        persons.append(
            {
                "person_id": person,
                "created_at": evidence.recorded_at,
                "kek_id": key.kek_id,
                "wrapped_key": key.wrapped,
            }
        )
        for program, local in [(PUBLISHER, subject(i))] + [(r, local_id(r, i)) for r in CONSENTED]:
            link = IdentityLink(person, program, local, evidence)
            sealed = sealed_local_id(vault, key, person, program, local)
            links.append(link_values(link, vault.index(program, local), sealed))
        for recipient in CONSENTED:
            revision = next_revision(
                [],
                person_id=person,
                recipient=recipient,
                event_type=EVENT_TYPE,
                state=ConsentState.GIVEN,
                evidence=evidence,
            )
            revisions.append(revision_values(revision))
    return persons, links, revisions


def seed_bulk(engine: Engine, vault: Vault, people: int, say: Say, deadline: float) -> float:
    """Write ``people`` clients into the (migrated, PostgreSQL) store by COPY, then ANALYZE
    the tables as autovacuum would; the seconds it took. Raises TimeoutError past ``deadline``
    (``time.monotonic()``)."""
    started = time.perf_counter()
    evidence = Evidence("counter", "staff-1", datetime.now(UTC))
    raw = engine.raw_connection()
    try:
        connection = raw.driver_connection
        assert connection is not None
        for start in range(0, people, SEED_CHUNK):
            if time.monotonic() > deadline:
                raise TimeoutError(f"seeding {people:,} clients ran out of time at {start:,}")
            tables = zip(
                ("persons", "identity_links", "consent_revisions"),
                _rows(vault, start, min(people, start + SEED_CHUNK), evidence),
                strict=True,
            )
            with connection.cursor() as cursor:
                for table, rows in tables:
                    columns = ", ".join(rows[0])
                    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(tuple(row.values()))
            connection.commit()
            done = min(people, start + SEED_CHUNK)
            if done == people or done % (10 * SEED_CHUNK) == 0:
                say(
                    f"    {done:,}/{people:,} clients seeded "
                    f"({time.perf_counter() - started:.0f} s)"
                )
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE persons, identity_links, consent_revisions")
        connection.commit()
    finally:
        raw.close()
    return time.perf_counter() - started
