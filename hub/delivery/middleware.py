"""Middleware around each delivery: hooks the runner calls, and the two that decide.

The runner (``hub.delivery.runner``) only moves notices: poll, decode, hand to the sink, flush,
send receipts, commit. What happens when a sink does not take a notice is decided here, by
middleware, as dramatiq's ``Retries`` middleware decides for its actors:

- ``Retries`` answers whether a failed attempt is tried again, and after how long, from the
  ``RetryPolicy`` (``hub.delivery.retries``);
- ``DeadLetters`` parks a notice given up on: on the recipient's dead-letter topic with the
  ``tellonce.errors.*`` headers (``hub.delivery.dead_letters``, errors.tolerance=all), or it
  stops the connector (errors.tolerance=none).

Every hook of ``Middleware`` is a no-op, and each decision hook answers None ("no opinion"),
so a middleware overrides only what it cares about. ``Chain`` runs several as one, in order;
the first decision given wins, and the runner puts its own ``Retries`` and ``DeadLetters`` last.
"""

from __future__ import annotations

from connectors.contract import DeliveryResult, Notification, Outcome
from hub.delivery.dead_letters import dead_letter_headers, minted_id
from hub.delivery.retries import RetryPolicy
from hub.errors import ConnectorStopped, RejectedEvent, TellonceError
from hub.model import InboundMessage
from hub.ports import Clock, Producer
from hub.wire.cloudevents import CE_ID
from hub.wire.topics import dlq_topic


class Middleware:
    """Hooks around each delivery; every hook is a no-op unless a subclass overrides it."""

    def before_delivery(self, notification: Notification, attempt: int) -> None:
        """Called before each attempt (1-based)."""

    def after_delivery(
        self, notification: Notification, result: DeliveryResult, attempt: int
    ) -> None:
        """Called with what the sink answered."""

    def retry_delay(
        self, notification: Notification, result: DeliveryResult, attempt: int, elapsed_s: float
    ) -> float | None:
        """Seconds to wait before trying a notice the sink did not take again, or None: no
        opinion (when no middleware has one, the runner gives up on the notice)."""
        return None

    def after_retry_scheduled(
        self, notification: Notification, result: DeliveryResult, delay_s: float
    ) -> None:
        """Called when another attempt will follow after ``delay_s``."""

    def dead_letter(
        self, message: InboundMessage, notification_id: str, result: DeliveryResult, attempts: int
    ) -> str | None:
        """Park a record given up on; the topic it went to, or None: this middleware parks
        nothing. May raise ConnectorStopped instead, to stop the connector."""
        return None

    def after_dead_letter(
        self, notification_id: str, result: DeliveryResult, attempts: int
    ) -> None:
        """Called once a notification went to the dead-letter topic."""


class Chain(Middleware):
    """Runs several middlewares in order, as one; the first decision given wins."""

    def __init__(self, *middlewares: Middleware) -> None:
        self.middlewares = list(middlewares)

    def before_delivery(self, notification: Notification, attempt: int) -> None:
        for m in self.middlewares:
            m.before_delivery(notification, attempt)

    def after_delivery(
        self, notification: Notification, result: DeliveryResult, attempt: int
    ) -> None:
        for m in self.middlewares:
            m.after_delivery(notification, result, attempt)

    def retry_delay(
        self, notification: Notification, result: DeliveryResult, attempt: int, elapsed_s: float
    ) -> float | None:
        for m in self.middlewares:
            delay = m.retry_delay(notification, result, attempt, elapsed_s)
            if delay is not None:
                return delay
        return None

    def after_retry_scheduled(
        self, notification: Notification, result: DeliveryResult, delay_s: float
    ) -> None:
        for m in self.middlewares:
            m.after_retry_scheduled(notification, result, delay_s)

    def dead_letter(
        self, message: InboundMessage, notification_id: str, result: DeliveryResult, attempts: int
    ) -> str | None:
        for m in self.middlewares:
            topic = m.dead_letter(message, notification_id, result, attempts)
            if topic is not None:
                return topic
        return None

    def after_dead_letter(
        self, notification_id: str, result: DeliveryResult, attempts: int
    ) -> None:
        for m in self.middlewares:
            m.after_dead_letter(notification_id, result, attempts)


class Retries(Middleware):
    """A RETRY answer is tried again after the policy's backoff while its time budget lasts;
    FAILED, or RETRY once the budget is spent, is given up on."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy

    def retry_delay(
        self, notification: Notification, result: DeliveryResult, attempt: int, elapsed_s: float
    ) -> float | None:
        if result.outcome is not Outcome.RETRY:
            return None
        delay = self.policy.delay_s(attempt, result.retry_after)
        return delay if self.policy.allows(elapsed_s, delay) else None


class DeadLetters(Middleware):
    """A record given up on goes to ``tellonce.notify.<id>.dlq`` unchanged, with the error
    headers (errors.tolerance=all), or the connector stops without committing (none)."""

    def __init__(
        self, recipient: str, producer: Producer, clock: Clock, *, tolerate_all: bool = True
    ) -> None:
        self.recipient = recipient
        self.topic = dlq_topic(recipient)
        self._producer = producer
        self._clock = clock
        self._tolerate_all = tolerate_all

    def dead_letter(
        self, message: InboundMessage, notification_id: str, result: DeliveryResult, attempts: int
    ) -> str:
        if not self._tolerate_all:
            what = result.error or result.outcome.value
            raise ConnectorStopped(
                f"notification {notification_id} could not be delivered ({what}: "
                f"{result.reason}) and errors.tolerance is none; nothing was committed: fix "
                "the back office and restart the connector"
            )
        self._producer.send(
            self.topic,
            message.key,
            message.value or b"",
            dead_letter_headers(
                message,
                error=result.error or result.outcome.value,
                reason=result.reason,
                attempts=attempts,
                at=self._clock(),
            ),
        )
        return self.topic


def unreadable(exc: Exception) -> DeliveryResult:
    """The dead-letter outcome of a record that could not be read as a notice; the error class
    is named, never the exception's text (it may quote the value). A retriable TellonceError
    (the broker, say) is re-raised: the batch is redelivered instead."""
    if isinstance(exc, RejectedEvent):
        return DeliveryResult(Outcome.FAILED, f"undecodable: {exc.reason}", "DecodeError")
    if isinstance(exc, TellonceError) and exc.retriable:
        raise exc
    name = type(exc).__name__
    return DeliveryResult(Outcome.FAILED, f"undecodable: the notice raised {name}", name)


def unverified(exc: RejectedEvent) -> DeliveryResult:
    """The dead-letter outcome of a notice whose signature did not pass: the reason code and
    its detail (key ids and program ids, never the value)."""
    return DeliveryResult(Outcome.FAILED, f"{exc.reason}: {exc.detail}", "NoticeSignatureError")


def misdirected() -> DeliveryResult:
    """The dead-letter outcome of a notice made for another recipient than this connector's
    (copied onto its topic): the recipient it names is not quoted, it may be anything."""
    return DeliveryResult(
        Outcome.FAILED,
        "misdirected: the notice names another recipient than this connector's; it was "
        "copied onto this topic, and delivering it would disclose it to a program the client "
        "did not consent to",
        "MisdirectedNotice",
    )


def unread_id(message: InboundMessage) -> str:
    """How logs and errors name a record that could not be read: its ce_id when that is a
    notification id the hub minted (a UUID), else its position. A record's other text came
    from whoever wrote it and may hold anything."""
    return minted_id(message.header(CE_ID)) or message.position
