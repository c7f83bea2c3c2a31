"""The SQL store keeps personal data sealed at rest, on SQLite and PostgreSQL: what its tables
hold, what a swapped or altered row does, KEK rotation, and the upgrade of a 0003 database."""

from __future__ import annotations

import base64
import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from structlog.testing import capture_logs

from consent.model import IdentityLink
from hub.adapters.keys import AesGcmSealer, FileKeyWrapper
from hub.adapters.sql import SqlStore, migrate, tables
from hub.adapters.sql.mappers import decision_values, event_values, outbox_values
from hub.adapters.sql.sealing import opened_local_id
from hub.errors import ConfigError, DecryptionError
from hub.model import OutboxMessage, WrappedKey
from hub.privacy.blind_index import BlindIndex
from hub.privacy.vault import Vault
from hub.processing.relay import Relay
from hub.testing.fakes import RecordingProducer
from hub.testing.privacy_contract import notice, rejection, two_persons
from hub.testing.records import EVIDENCE, MINUTE, T0, decision, event
from hub.testing.vaults import throwaway_vault

# Values no table may hold in plaintext once linked or queued.
LOCAL_ID = "MSP-CANARY-7731"
NAME = "Zebulon Quixote-Canary"
ADDRESS = "4417 Canary Crescent, V8W 9Z9"


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    """A vault on a KEK folder of this test only."""
    return throwaway_vault(tmp_path / "keks")


@pytest.fixture
def store(store_url: str, vault: Vault) -> Iterator[SqlStore]:
    """A new, migrated SQL store on each backend, sealing with ``vault``."""
    store = SqlStore.open(store_url, vault=vault)
    yield store
    store.close()


def canary_notice(message_id: str, person: str = "p-1") -> OutboxMessage:
    body = f"{NAME}|{ADDRESS}".encode()
    return dataclasses.replace(
        notice(message_id, person, LOCAL_ID), value=b"\x00\x00\x00\x00\x07" + body
    )


def dump(engine: sa.Engine) -> str:
    """Every row of every table, as text: what a backup or a stolen disk would show."""
    lines = []
    with engine.connect() as connection:
        for table in tables.metadata.sorted_tables:
            for row in connection.execute(sa.select(table)):
                lines.append(repr(tuple(row)))
    return "\n".join(lines)


def raw(engine: sa.Engine, query: Any) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [tuple(r) for r in connection.execute(query)]


def test_tables_match_the_migrated_database(store: SqlStore) -> None:
    """tables.py, which the store queries with, describes exactly what the migrations built."""
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), tables.metadata)
    assert differences == []


def test_no_local_id_name_or_address_is_stored_in_plaintext(store: SqlStore) -> None:
    """After linking a local id and queuing notices about its person (one published), no
    table holds the local id, the name or the address, as text, bytes or base64."""
    with store.transaction() as tx:
        tx.add_person("p-1", T0)
        tx.add_link(IdentityLink("p-1", "bc-msp", LOCAL_ID, EVIDENCE))
        tx.add_outbox([canary_notice("n-1"), canary_notice("n-2")])
        tx.mark_published(["n-1"], T0)
    text = dump(store.engine)
    assert "n-2" in text  # the dump does hold the rows
    for canary in (LOCAL_ID, NAME, ADDRESS, "Canary"):
        assert canary not in text
        assert base64.b64encode(canary.encode()).decode() not in text
    with store.transaction() as tx:  # and all of it still opens
        assert tx.persons_for("bc-msp", [LOCAL_ID]) == {LOCAL_ID: "p-1"}
        assert tx.links_of(["p-1"]) == {"p-1": {"bc-msp": LOCAL_ID}}
        assert tx.pending_outbox(10)[0].value.endswith(ADDRESS.encode())


def test_swapped_outbox_values_are_left_out_and_the_relay_goes_on(store: SqlStore) -> None:
    """Two notices whose sealed values were swapped no longer open: the relay publishes the
    rows around them, each is named once by message id at warning (never its content), and
    they stay queued for an operator to look at."""
    with store.transaction() as tx:
        tx.add_person("p-1", T0)
        tx.add_outbox([canary_notice(n) for n in ("n-1", "n-2", "n-3")] + [rejection("r-1")])
    outbox = tables.outbox
    values = dict(raw(store.engine, sa.select(outbox.c.message_id, outbox.c.value)))
    with store.engine.begin() as connection:
        for mine, theirs in (("n-1", "n-2"), ("n-2", "n-1")):
            connection.execute(
                sa.update(outbox).where(outbox.c.message_id == mine).values(value=values[theirs])
            )
    producer = RecordingProducer()
    relay = Relay(store, producer, lambda: T0, batch=2)
    with capture_logs() as logs:
        assert relay.publish_pending() == 2
        assert relay.publish_pending() == 0  # read again: no second warning
    assert [s.header("ce_id") for s in producer.sent] == ["n-3", "r"]
    assert producer.sent[0].value.endswith(ADDRESS.encode())
    warned = [e for e in logs if e["log_level"] == "warning"]
    assert sorted(e["message_id"] for e in warned) == ["n-1", "n-2"]
    assert not any(canary in repr(logs) for canary in (LOCAL_ID, NAME, ADDRESS))
    assert store.outbox_backlog() == 2


def test_swapped_sealed_local_ids_read_as_no_link(store: SqlStore, vault: Vault) -> None:
    """Two links' sealed local ids swapped by hand no longer open, even under the right
    person's key (DecryptionError: each is bound to its row); the store reads them as no link,
    names each once at warning without the ids, and the other links still open."""
    with store.transaction() as tx:
        two_persons(tx)
    links = tables.identity_links
    query = sa.select(links.c.id, links.c.person_id, links.c.local_id_sealed)
    rows = raw(store.engine, query.order_by(links.c.id))
    first, third = rows[0], rows[2]  # p-1 at bc-msp, p-2 at bc-msp
    with store.engine.begin() as connection:
        for (link, _, _), (_, _, sealed) in ((first, third), (third, first)):
            connection.execute(
                sa.update(links).where(links.c.id == link).values(local_id_sealed=sealed)
            )
    persons = tables.persons
    own_key = sa.select(persons.c.kek_id, persons.c.wrapped_key).where(persons.c.person_id == "p-1")
    moved = raw(store.engine, query.where(links.c.id == first[0]))[0][2]
    with pytest.raises(DecryptionError):  # under p-1's own key, at p-1's own row
        opened_local_id(vault, WrappedKey(*raw(store.engine, own_key)[0]), "p-1", "bc-msp", moved)
    with capture_logs() as logs, store.transaction() as tx:
        assert tx.links_of(["p-1", "p-2"]) == {"p-1": {"cpp": "C-1"}}
        assert tx.link_records("p-2") == []
        assert tx.persons_for("bc-msp", ["MSP-1"]) == {"MSP-1": "p-1"}  # the index still finds
    warned = [e for e in logs if e["log_level"] == "warning"]
    assert sorted(e["person"] for e in warned) == ["p-1", "p-2"]
    assert "MSP" not in repr(logs)


def test_rotation_rewraps_data_keys_and_changes_no_ciphertext(
    store: SqlStore, vault: Vault, tmp_path: Path
) -> None:
    """Rotating the KEK rewrites every wrapped data key and nothing else: sealed local ids and
    notices are byte for byte the same, and open once the old KEK is gone."""
    with store.transaction() as tx:
        two_persons(tx)
        tx.add_outbox([canary_notice("n-1"), canary_notice("n-2", "p-2")])
    links, outbox, persons = tables.identity_links, tables.outbox, tables.persons
    sealed = sa.select(links.c.local_id_sealed).order_by(links.c.id)
    notices = sa.select(outbox.c.key, outbox.c.value, outbox.c.headers).order_by(outbox.c.seq)
    keys = sa.select(persons.c.kek_id, persons.c.wrapped_key).order_by(persons.c.person_id)
    before = raw(store.engine, sealed), raw(store.engine, notices), raw(store.engine, keys)
    old_kek, new_kek = vault.wrapper.current_kek(), vault.wrapper.new_kek()
    with store.transaction() as tx:
        assert tx.rewrap_data_keys(100) == 2
    after = raw(store.engine, sealed), raw(store.engine, notices), raw(store.engine, keys)
    assert after[:2] == before[:2]
    assert [kek for kek, _ in after[2]] == [new_kek, new_kek]
    assert not {wrapped for _, wrapped in after[2]} & {wrapped for _, wrapped in before[2]}
    (tmp_path / "keks" / f"{old_kek}.kek").unlink()
    fresh = Vault(  # nothing cached, and only the new KEK on disk
        FileKeyWrapper(tmp_path / "keks", create=False), AesGcmSealer(), BlindIndex(bytes(32))
    )
    reader = SqlStore.open(str(store.engine.url), vault=fresh, migrate_schema=False)
    try:
        with reader.transaction() as tx:
            assert tx.links_of(["p-2"]) == {"p-2": {"bc-msp": "MSP-2"}}
            assert len(tx.pending_outbox(10)) == 2
    finally:
        reader.close()


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
def test_two_rotations_take_different_keys_on_postgres(store: SqlStore, vault: Vault) -> None:
    """A rotation skips the keys another open rotation holds instead of waiting on them, and
    no key is rewrapped twice."""
    with store.transaction() as tx:
        for n in range(5):
            tx.add_person(f"p-{n}", T0)
    new_kek = vault.wrapper.new_kek()
    done = threading.Event()
    counts: list[int] = []
    with store.transaction() as first:
        counts.append(first.rewrap_data_keys(2))

        def second() -> None:
            with store.transaction() as tx:
                counts.append(tx.rewrap_data_keys(10))
            done.set()

        thread = threading.Thread(target=second)
        thread.start()
        assert done.wait(10), "the second rotation waited on the first one's keys"
    thread.join()
    assert counts == [2, 3]
    with store.transaction() as tx:
        assert tx.data_keys_by_kek() == {new_kek: 5}


# -- upgrading a 0003 database ---------------------------------------------------------------

# identity_links as schema 0003 had it: the local id in plaintext.
LINKS_0003 = sa.table(
    "identity_links",
    sa.column("person_id", sa.String),
    sa.column("program", sa.String),
    sa.column("local_id", sa.String),
    sa.column("channel", sa.String),
    sa.column("actor", sa.String),
    sa.column("recorded_at", sa.String),
)


def database_at_0003(url: str, vault: Vault) -> list[OutboxMessage]:
    """A database at schema 0003 with two persons, their links, a disclosed notice (published)
    and a rejection (queued), as an earlier tellonce left them; the outbox messages."""
    store = SqlStore.open(url, vault=vault, migrate_schema=False)
    try:
        migrate.upgrade(store.engine, None, to="0003")
        queued = [canary_notice("n-1"), rejection("r-1")]
        with store.engine.begin() as connection:
            for person in ("p-1", "p-2"):
                connection.execute(
                    sa.insert(tables.persons).values(person_id=person, created_at=T0)
                )
            for person, program, local_id in (
                ("p-1", "bc-service-bc", "SBC-1"),
                ("p-1", "bc-msp", LOCAL_ID),
                ("p-2", "bc-msp", "MSP-2"),
            ):
                connection.execute(
                    sa.insert(LINKS_0003).values(
                        person_id=person,
                        program=program,
                        local_id=local_id,
                        channel=EVIDENCE.channel,
                        actor=EVIDENCE.actor,
                        recorded_at=EVIDENCE.recorded_at.isoformat(),
                    )
                )
            connection.execute(sa.insert(tables.events).values(event_values(event())))
            for made in (decision("bc-msp", "n-1"), decision("cra", None)):
                values = decision_values(made)
                del values["notice_digest"]  # no such column before 0005
                connection.execute(sa.insert(tables.decisions).values(values))
            for message in queued:
                values = outbox_values(message)
                del values["person_id"]  # no such column at 0003
                connection.execute(sa.insert(tables.outbox).values(values))
            connection.execute(
                sa.update(tables.outbox)
                .where(tables.outbox.c.message_id == "n-1")
                .values(published_at=T0)
            )
        return queued
    finally:
        store.close()


def test_a_0003_database_upgrades_with_its_links_and_messages(store_url: str, vault: Vault) -> None:
    """Upgrading seals what 0003 kept in plaintext and loses nothing: the same links resolve
    both ways and the same messages come back, while no local id or address stays readable."""
    notice_0003, rejection_0003 = database_at_0003(store_url, vault)
    store = SqlStore.open(store_url, vault=vault)  # migrates to the newest schema
    try:
        with store.transaction() as tx:
            found = tx.persons_for("bc-msp", [LOCAL_ID, "MSP-2"])
            assert found == {LOCAL_ID: "p-1", "MSP-2": "p-2"}
            assert tx.persons_for("bc-service-bc", ["SBC-1"]) == {"SBC-1": "p-1"}
            assert tx.links_of(["p-1", "p-2"]) == {
                "p-1": {"bc-service-bc": "SBC-1", "bc-msp": LOCAL_ID},
                "p-2": {"bc-msp": "MSP-2"},
            }
            assert tx.link_records("p-2") == [IdentityLink("p-2", "bc-msp", "MSP-2", EVIDENCE)]
            assert [dataclasses.replace(m, seq=None) for m in tx.pending_outbox(10)] == [
                rejection_0003
            ]
            again = tx.unreceipted_outbox(T0 + MINUTE, 10, 5)
            assert [dataclasses.replace(m, seq=None) for m in again] == [notice_0003]
            assert set(tx.data_keys_by_kek().values()) == {2}
            # A notice sent before 0005 kept no digest: its receipt is checked for the rest.
            assert tx.decisions_by_notification(["n-1"]) == {"n-1": decision("bc-msp", "n-1")}
        text = dump(store.engine)
        for canary in (LOCAL_ID, "SBC-1", NAME, ADDRESS):
            assert canary not in text
            assert base64.b64encode(canary.encode()).decode() not in text
        columns = {c["name"] for c in sa.inspect(store.engine).get_columns("identity_links")}
        assert "local_id" not in columns
    finally:
        store.close()


def test_a_0003_database_with_persons_needs_the_keys_to_upgrade(
    store_url: str, vault: Vault
) -> None:
    """Without the hub's keys the upgrade stops with a ConfigError that says what to run,
    and leaves the database at 0003, its data untouched."""
    database_at_0003(store_url, vault)
    store = SqlStore.open(store_url, vault=vault, migrate_schema=False)
    try:
        with pytest.raises(ConfigError, match="tellonce db upgrade"):
            migrate.upgrade(store.engine, None)
        with store.engine.connect() as connection:
            assert migrate.current_revision(connection) == "0003"
        rows = raw(store.engine, sa.select(LINKS_0003.c.local_id))
        assert sorted(r[0] for r in rows) == sorted(["SBC-1", LOCAL_ID, "MSP-2"])
        outbox = tables.outbox
        query = sa.select(outbox.c.headers).where(outbox.c.message_id == "n-1")
        subject = dict(raw(store.engine, query)[0][0])["ce_subject"]
        assert base64.b64decode(subject).decode() == LOCAL_ID
    finally:
        store.close()
