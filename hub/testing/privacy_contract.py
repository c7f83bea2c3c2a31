"""The privacy contract: what every store adapter must do with personal data, beside the
store contract (``hub.testing.store_contract``) and in the same way::

    class TestMyStorePrivacy(PrivacyContract):
        @pytest.fixture
        def store(self, vault: Vault) -> Iterator[Store]:
            store = MyStore.open(..., vault=vault)
            yield store
            store.close()

The ``vault`` fixture is a real one on a throwaway KEK folder (``hub.testing.vaults``); the
cases rotate its KEK. They go through the ports only: erasure hides a person's links but still
resolves their local ids, deletes their queued messages and nothing else; messages about a
person come back whole; the outbox purge keeps what may still be needed; a person's unsettled
notices are listed; KEK rotation moves every data key and every value still opens. Needs
pytest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from consent.model import IdentityLink
from hub.model import OutboxMessage
from hub.ports import Store, Transaction
from hub.privacy.vault import Vault
from hub.testing.records import EVIDENCE, MINUTE, T0, decided, decision, delivery, event
from hub.testing.vaults import throwaway_vault
from hub.wire.topics import REJECTED_TOPIC, notify_topic

__all__ = ["PrivacyContract", "notice", "rejection", "two_persons"]

_HOUR = 60 * MINUTE


def notice(message_id: str, person: str = "p-1", local_id: str = "MSP-1") -> OutboxMessage:
    """A notice about ``person`` to bc-msp, as the hub queues one: the recipient's local id
    as key and subject, personal values in the body."""
    return OutboxMessage(
        message_id,
        notify_topic("bc-msp"),
        local_id.encode(),
        b"\x00\x00\x00\x00\x07" + b"Ada Lovelace, 12 Analytical Way, V8W 1A1",
        [("ce_id", message_id.encode()), ("ce_subject", local_id.encode())],
        T0,
        person_id=person,
    )


def rejection(message_id: str) -> OutboxMessage:
    """A rejection notice: no person, nothing sealed."""
    return OutboxMessage(message_id, REJECTED_TOPIC, None, b"bad", [("ce_id", b"r")], T0)


def two_persons(tx: Transaction) -> None:
    """p-1 known to bc-msp and cpp, p-2 to bc-msp."""
    tx.add_person("p-1", T0)
    tx.add_person("p-2", T0)
    tx.add_link(IdentityLink("p-1", "bc-msp", "MSP-1", EVIDENCE))
    tx.add_link(IdentityLink("p-1", "cpp", "C-1", EVIDENCE))
    tx.add_link(IdentityLink("p-2", "bc-msp", "MSP-2", EVIDENCE))


def _ids(messages: list[OutboxMessage]) -> list[str]:
    return [m.message_id for m in messages]


class PrivacyContract:
    """The cases; subclass it and override the ``store`` fixture (built with ``vault``)."""

    @pytest.fixture
    def vault(self, tmp_path: Path) -> Vault:
        """A vault on a KEK folder of this test only."""
        return throwaway_vault(tmp_path / "keks")

    @pytest.fixture
    def store(self, vault: Vault) -> Iterator[Store]:
        """A new, empty store of the adapter under test sealing with ``vault``."""
        raise NotImplementedError("a PrivacyContract subclass provides the store fixture")

    # -- erasure -----------------------------------------------------------------------------

    def test_an_erased_person_has_no_links_but_their_ids_still_resolve(self, store: Store) -> None:
        """After erasure links_of and link_records leave the person out, while persons_for
        still finds them by local id (so later events are recognised) and others are intact."""
        with store.transaction() as tx:
            two_persons(tx)
        with store.transaction() as tx:
            tx.erase_person("p-1", T0 + MINUTE)
        with store.transaction() as tx:
            assert tx.links_of(["p-1", "p-2"]) == {"p-2": {"bc-msp": "MSP-2"}}
            assert tx.link_records("p-1") == []
            assert tx.link_records("p-2") == [IdentityLink("p-2", "bc-msp", "MSP-2", EVIDENCE)]
            found = tx.persons_for("bc-msp", ["MSP-1", "MSP-2", "MSP-3"])
            assert found == {"MSP-1": "p-1", "MSP-2": "p-2"}
            assert tx.persons_for("cpp", ["C-1"]) == {"C-1": "p-1"}
            assert tx.person_exists("p-1")
        assert store.link_count() == 3

    def test_erased_persons_are_named_and_erasing_again_changes_nothing(self, store: Store) -> None:
        """erased_persons answers exactly the erased ones; erasing an erased or an unknown
        person is harmless and erases nobody else."""
        with store.transaction() as tx:
            two_persons(tx)
            assert tx.erased_persons(["p-1", "p-2"]) == set()
            tx.erase_person("p-1", T0)
        with store.transaction() as tx:
            tx.erase_person("p-1", T0 + _HOUR)
            tx.erase_person("p-9", T0)
        with store.transaction() as tx:
            assert tx.erased_persons(["p-1", "p-2", "p-9"]) == {"p-1"}
            assert tx.links_of(["p-2"]) == {"p-2": {"bc-msp": "MSP-2"}}

    def test_erasure_deletes_the_persons_queued_messages_and_nothing_else(
        self, store: Store
    ) -> None:
        """The erased person's messages, published or not, never come back; the other
        person's and the rejections stay queued."""
        with store.transaction() as tx:
            two_persons(tx)
            tx.add_outbox([notice("n-1"), notice("n-2", "p-2", "MSP-2"), rejection("r-1")])
            tx.add_outbox([notice("n-3")])
            tx.mark_published(["n-3"], T0)
            tx.erase_person("p-1", T0 + MINUTE)
        with store.transaction() as tx:
            assert _ids(tx.pending_outbox(10)) == ["n-2", "r-1"]
            assert tx.unreceipted_outbox(T0 + _HOUR, 10, 5) == []
        assert store.outbox_backlog() == 2

    def test_a_persons_messages_come_back_whole(self, store: Store) -> None:
        """A notice queued for a person (its key, value and subject sealed at rest) is given
        back to the relay as it was queued, pending and when republished."""
        queued = [notice("n-1"), notice("n-2", "p-2", "MSP-2"), rejection("r-1")]
        with store.transaction() as tx:
            two_persons(tx)
            tx.add_outbox(queued)
        with store.transaction() as tx:
            pending = tx.pending_outbox(10)
            assert [dataclasses.replace(m, seq=None) for m in pending] == queued
            tx.mark_published(["n-1", "n-2"], T0)
        with store.transaction() as tx:
            again = tx.unreceipted_outbox(T0 + MINUTE, 10, 5)
            assert [dataclasses.replace(m, seq=None) for m in again] == queued[:2]

    # -- outbox purge ------------------------------------------------------------------------

    def test_the_purge_deletes_only_messages_no_longer_needed(self, store: Store) -> None:
        """A notice goes once its receipt is older than the cut-off, a message without a
        person once published before it; unreceipted notices and unpublished messages stay,
        and ``limit`` bounds each call."""
        with store.transaction() as tx:
            decided(tx, "n-1", "n-2", "n-3")
            tx.add_outbox([notice("n-1"), notice("n-2"), notice("n-3")])
            tx.add_outbox([rejection("r-1"), rejection("r-2")])
            tx.mark_published(["n-1", "n-2", "n-3", "r-1"], T0)
            tx.save_deliveries([delivery("n-1"), delivery("n-3", minutes=10)], new=True)
        with store.transaction() as tx:
            assert tx.purge_outbox(T0 + MINUTE, 10) == 2  # n-1 and r-1
            assert tx.purge_outbox(T0 + MINUTE, 10) == 0
            assert _ids(tx.unreceipted_outbox(T0 + MINUTE, 10, 5)) == ["n-2"]
            assert _ids(tx.pending_outbox(10)) == ["r-2"]
        with store.transaction() as tx:
            assert tx.purge_outbox(T0 + _HOUR, 1) == 1  # n-3
            assert tx.purge_outbox(T0 + _HOUR, 1) == 0
            assert tx.purge_outbox(T0 + _HOUR, 0) == 0
        with store.transaction() as tx:
            assert _ids(tx.unreceipted_outbox(T0 + _HOUR, 10, 5)) == ["n-2"]
        assert store.outbox_backlog() == 1

    # -- notices erasure would strand --------------------------------------------------------

    def test_undelivered_notifications_are_those_no_receipt_settled(self, store: Store) -> None:
        """A person's notices count as undelivered until delivered or dead-lettered (a
        failed attempt does not settle one), oldest first, and only theirs."""
        other = dataclasses.replace(event("evt-9", 9), person_id="p-2")
        with store.transaction() as tx:
            decided(tx, "n-1", "n-2", "n-3", None)
            tx.add_person("p-2", T0)
            tx.add_events([other])
            tx.add_decisions([decision("bc-msp", "n-9", "evt-9")])
            tx.save_deliveries([delivery("n-1"), delivery("n-2", "failed")], new=True)
        with store.transaction() as tx:
            assert tx.undelivered_notifications("p-1") == ["n-2", "n-3"]
            assert tx.undelivered_notifications("p-2") == ["n-9"]
            assert tx.undelivered_notifications("p-3") == []
            tx.save_deliveries([delivery("n-3", "dead_lettered")], new=True)
        with store.transaction() as tx:
            assert tx.undelivered_notifications("p-1") == ["n-2"]

    # -- KEK rotation ------------------------------------------------------------------------

    def test_rotation_rewraps_every_data_key_and_values_still_open(
        self, store: Store, vault: Vault
    ) -> None:
        """After a new KEK, rewrap moves up to ``limit`` keys per call until none is left
        under the old one; erased persons have no key; links and messages still open."""
        with store.transaction() as tx:
            two_persons(tx)
            tx.add_person("p-3", T0)
            tx.add_outbox([notice("n-1"), notice("n-2", "p-2", "MSP-2")])
            tx.erase_person("p-3", T0)
            first = vault.wrapper.current_kek()
            assert tx.data_keys_by_kek() == {first: 2}
            assert tx.rewrap_data_keys(10) == 0  # all under the current KEK already
        second = vault.wrapper.new_kek()
        with store.transaction() as tx:
            assert tx.rewrap_data_keys(1) == 1
            assert tx.data_keys_by_kek() == {first: 1, second: 1}
        with store.transaction() as tx:
            assert tx.rewrap_data_keys(10) == 1
            assert tx.rewrap_data_keys(10) == 0
            assert tx.data_keys_by_kek() == {second: 2}
        with store.transaction() as tx:
            assert tx.links_of(["p-1", "p-2"]) == {
                "p-1": {"bc-msp": "MSP-1", "cpp": "C-1"},
                "p-2": {"bc-msp": "MSP-2"},
            }
            pending = tx.pending_outbox(10)
            assert [dataclasses.replace(m, seq=None) for m in pending] == [
                notice("n-1"),
                notice("n-2", "p-2", "MSP-2"),
            ]
