"""The join watch: which consumers count as stuck joining their group, and after how long."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

from kafka import KafkaConsumer
from kafka.coordinator.base import BaseCoordinator

from hub.adapters.kafka_join import JoinState, JoinWatch, join_limit_s, join_state


@dataclass
class Coordinator:
    stable: bool = False
    coordinator_id: str | None = "coordinator-1"

    def generation_if_stable(self) -> object | None:
        return object() if self.stable else None


@dataclass
class Consumer:
    assigned: set[str] = field(default_factory=set)
    _coordinator: Coordinator | None = field(default_factory=Coordinator)

    def assignment(self) -> set[str]:
        return self.assigned


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_consumer_with_partitions_or_a_stable_generation_is_joined() -> None:
    """Partitions assigned, or a stable generation with none (more members than partitions),
    is a joined member: an idle member is never replaced."""
    assert join_state(Consumer(assigned={"t-0"})) is JoinState.JOINED
    assert join_state(Consumer(_coordinator=Coordinator(stable=True))) is JoinState.JOINED


def test_a_consumer_rebalancing_with_a_known_coordinator_is_joining() -> None:
    """The state of the lost join: the coordinator known, no stable generation, nothing
    assigned."""
    assert join_state(Consumer()) is JoinState.JOINING


def test_an_unknown_coordinator_is_an_outage_not_a_join() -> None:
    """While the coordinator is unknown (the broker down) the time does not count."""
    assert join_state(Consumer(_coordinator=Coordinator(coordinator_id=None))) is (
        JoinState.NO_COORDINATOR
    )


def test_a_client_without_the_coordinator_attribute_reads_as_joined() -> None:
    """A kafka-python without the private coordinator never gets a consumer replaced."""
    assert join_state(Consumer(_coordinator=None)) is JoinState.JOINED


def test_the_watch_calls_a_join_stuck_only_after_the_limit_of_uninterrupted_joining() -> None:
    """Stuck after ``limit_s`` of joining in a row; any other state starts the count again."""
    clock = Clock()
    watch = JoinWatch(20.0, clock)
    assert not watch.stuck(JoinState.JOINING)
    clock.now += 15
    assert not watch.stuck(JoinState.JOINING)
    assert not watch.stuck(JoinState.NO_COORDINATOR)  # an outage: the count starts again
    clock.now += 15
    assert not watch.stuck(JoinState.JOINING)
    clock.now += 15
    assert not watch.stuck(JoinState.JOINING)
    clock.now += 6
    assert watch.stuck(JoinState.JOINING)
    assert watch.waited_s() == 21
    watch.restart()
    assert not watch.stuck(JoinState.JOINING)


def test_the_limit_is_twice_what_the_broker_may_wait_and_never_under_15_s() -> None:
    """Defaults (5 s poll interval, 6 s session) give 22 s; Kafka's own defaults far more."""
    assert join_limit_s(5_000, 6_000) == 22.0
    assert join_limit_s(1_000, 1_000) == 15.0
    assert join_limit_s(300_000, 45_000) == 690.0


def test_the_installed_kafka_python_has_the_state_the_watch_reads() -> None:
    """An upgrade that drops the private surface fails here instead of silently turning the
    watch off."""
    assert "self._coordinator = " in inspect.getsource(KafkaConsumer.__init__)
    assert callable(BaseCoordinator.generation_if_stable)
    assert "self.coordinator_id = None" in inspect.getsource(BaseCoordinator.__init__)
