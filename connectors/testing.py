"""Contract tests every sink must pass: built-in sinks run them, and so should yours.

Subclass :class:`SinkContract` in a test module, name the subclass ``Test...`` so pytest collects
it, and implement two hooks; pytest then runs every ``test_*`` below on your sink::

    import json
    from pathlib import Path

    import pytest
    from connectors.testing import SinkContract

    from my_package import MySink


    class TestMySink(SinkContract):
        @pytest.fixture(autouse=True)
        def far_side(self, tmp_path: Path) -> None:
            self.folder = tmp_path / "inbox"  # a new far side for every test

        def make_sink(self) -> MySink:
            return MySink("bc-msp", {"directory": str(self.folder)})

        def delivered(self) -> list[str]:
            files = self.folder.glob("*.json")
            return [json.loads(p.read_text())["notification_id"] for p in files]

The hooks:

``make_sink()`` (required)
    A new sink over the SAME far side each call: the contract closes one and opens another to
    check that redelivery after a restart is still a DUPLICATE. Set the far side up in an
    autouse fixture (pytest makes a new instance of the class for every test, so ``self`` is
    per test); sinks the contract opens are closed before that fixture's teardown runs. (The
    contract's own fixture is called ``open_sink``: leave that name to it.)
``delivered()`` (required)
    The notification ids the back office can see now, one entry per record it would read
    (a duplicate write shows up twice). Read the far side as the back office does, and fail
    (raise) on a record it could not read whole: that is how a partial write shows.
``break_far_side()`` (optional)
    A context manager: inside it the far side fails (folder gone, table renamed, server 503),
    on leaving it the far side works again. Without it, the test that needs it is skipped.
``crash_mid_delivery(sink)`` (optional)
    A context manager: inside it, ``sink.deliver`` is interrupted by :class:`SimulatedCrash`
    after it began writing to the far side and before it finished (patch the sink's last step
    to call :func:`crash`). Without it, the test that needs it is skipped.

What the contract pins:

- a first delivery is DELIVERED and visible once;
- a redelivery, on the same sink or a new one, is DUPLICATE and still visible once;
- every answer is a ``DeliveryResult`` with an ``Outcome``, and its ``reason`` and ``error``
  never quote the notification's personal values;
- a failing far side answers RETRY or FAILED and leaves nothing behind, and the same sink
  delivers exactly once when the far side is back;
- a crash leaves no partial record, and the retry after a restart leaves the record visible
  exactly once, never zero times (DUPLICATE only for a record already visible);
- ``close()`` keeps what was DELIVERED and is safe to call twice.

Where a test checks what the back office sees, it first flushes (if the sink has ``flush()``)
and closes the sink, so a sink that publishes in batches passes as well as one that writes
through; ``delivered()`` should show published records only.

This module imports pytest. tellonce's ``test`` extra installs it; tellonce itself never
imports this module at run time.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime
from typing import Any, NoReturn

import pytest

from connectors.contract import DeliveryResult, Notification, Outcome, Sink

__all__ = ["SimulatedCrash", "SinkContract", "crash", "personal_values", "sample_notification"]


class SimulatedCrash(BaseException):
    """The process died here. A BaseException, so a sink's ``except Exception`` cannot eat it."""


def crash(*_args: object, **_kwargs: object) -> NoReturn:
    """Stand-in for any call in a sink: patch it in to simulate a crash at that point."""
    raise SimulatedCrash


def sample_notification(**overrides: Any) -> Notification:
    """A realistic AddressChanged notice with a new id each call; keyword arguments replace
    attributes. Its personal values are distinctive, so they can be looked for in messages."""
    values: dict[str, Any] = {
        "notification_id": str(uuid.uuid4()),
        "recipient": "bc-msp",
        "subject_id": "MSP-7310-QUILLIQ",
        "event_type": "AddressChanged",
        "event_id": str(uuid.uuid4()),
        "event_source": "bc-service-bc",
        "event_time": datetime(2025, 3, 14, 15, 9, 26, tzinfo=UTC),
        "consent_revision": "sha256:5c1f0d9e2b7a",
        "fields": {
            "effective_date": date(2025, 4, 1),
            "new_address": {
                "lines": ["Apt 4B, 1187 Qamutiik Crescent", "ᐃᖃᓗᐃᑦ Road"],
                "municipality": "Wapekeka-Thornbury",
                "province": "BC",
                "postal_code": "V8W 9Z7",
            },
        },
    }
    values.update(overrides)
    return Notification(**values)


def personal_values(notification: Notification) -> set[str]:
    """Every value in the notice that says something about the client, as text."""
    found = {notification.subject_id}

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)
        elif isinstance(value, date | datetime):
            found.add(value.isoformat())
        elif value is not None and not isinstance(value, bool):
            found.add(str(value))

    walk(notification.fields)
    return {value for value in found if len(value) >= 4}  # "BC" is too common to look for


class SinkContract:
    """The tests every sink passes. Not collected itself: subclass it as ``Test<YourSink>``."""

    # -- hooks ------------------------------------------------------------------------------

    def make_sink(self) -> Sink:
        """A new sink over this test's far side (the same far side on every call)."""
        raise NotImplementedError(f"{type(self).__name__} must implement make_sink()")

    def delivered(self) -> list[str]:
        """Notification ids visible at the far side now, one per record (duplicates repeat)."""
        raise NotImplementedError(f"{type(self).__name__} must implement delivered()")

    def break_far_side(self) -> AbstractContextManager[None]:
        """Inside the block the far side fails; after it, it works again."""
        pytest.skip(f"{type(self).__name__} does not implement break_far_side()")

    def crash_mid_delivery(self, sink: Sink) -> AbstractContextManager[None]:
        """Inside the block, ``sink.deliver`` raises SimulatedCrash part-way through its write."""
        pytest.skip(f"{type(self).__name__} does not implement crash_mid_delivery()")

    # -- plumbing ---------------------------------------------------------------------------

    @pytest.fixture
    def open_sink(self) -> Iterator[Callable[[], Sink]]:
        """Opens sinks through make_sink() and closes every one after the test."""
        opened: list[Sink] = []

        def open_() -> Sink:
            sink = self.make_sink()
            opened.append(sink)
            return sink

        yield open_
        for sink in opened:
            sink.close()

    def deliver_checked(
        self, sink: Sink, notification: Notification, *expected: Outcome
    ) -> DeliveryResult:
        """Deliver, check the shape of the answer and, if given, that its outcome is expected.

        Assertions here carry their own messages: pytest rewrites asserts in test modules, not
        in an installed library like this one.
        """
        result = sink.deliver(notification)
        assert isinstance(result, DeliveryResult), f"deliver() returned {result!r}"
        assert isinstance(result.outcome, Outcome), f"outcome {result.outcome!r} is no Outcome"
        said = f"{result.reason}\n{result.error}"
        leaked = sorted(value for value in personal_values(notification) if value in said)
        assert not leaked, f"the {result.outcome} answer quotes personal values {leaked}"
        if expected:
            assert result.outcome in expected, (
                f"expected {' or '.join(o.name for o in expected)}, got {result.outcome.name}"
                f" (reason {result.reason!r}, error {result.error!r})"
            )
        return result

    def visible_after_close(self, sink: Sink) -> list[str]:
        """What the back office sees once ``sink`` flushed (if it buffers) and closed."""
        flush: Callable[[], object] | None = getattr(sink, "flush", None)
        if flush is not None:
            flush()
        sink.close()
        return self.delivered()

    def assert_shown_once(self, shown: list[str], *notices: Notification) -> None:
        expected = sorted(n.notification_id for n in notices)
        assert sorted(shown) == expected, f"the far side shows {sorted(shown)}, not {expected}"

    # -- the contract -----------------------------------------------------------------------

    def test_first_delivery_is_delivered_and_visible_once(
        self, open_sink: Callable[[], Sink]
    ) -> None:
        """A new notification is DELIVERED and the far side shows it exactly once."""
        sink = open_sink()
        notice = sample_notification()

        self.deliver_checked(sink, notice, Outcome.DELIVERED)

        self.assert_shown_once(self.visible_after_close(sink), notice)

    def test_redelivery_on_the_same_sink_is_duplicate(self, open_sink: Callable[[], Sink]) -> None:
        """Delivering the same notification again answers DUPLICATE and writes nothing more."""
        sink = open_sink()
        notice = sample_notification()
        self.deliver_checked(sink, notice, Outcome.DELIVERED)

        self.deliver_checked(sink, notice, Outcome.DUPLICATE)

        self.assert_shown_once(self.visible_after_close(sink), notice)

    def test_redelivery_after_reopening_is_duplicate(self, open_sink: Callable[[], Sink]) -> None:
        """After close and a new sink over the same far side, a redelivery is still DUPLICATE."""
        first = open_sink()
        notice = sample_notification()
        self.deliver_checked(first, notice, Outcome.DELIVERED)
        first.close()

        second = open_sink()
        self.deliver_checked(second, notice, Outcome.DUPLICATE)

        self.assert_shown_once(self.visible_after_close(second), notice)

    def test_distinct_notifications_are_each_delivered_once(
        self, open_sink: Callable[[], Sink]
    ) -> None:
        """Notices about the same client with different ids are all DELIVERED, each visible once."""
        sink = open_sink()
        notices = [sample_notification() for _ in range(3)]

        for notice in notices:
            self.deliver_checked(sink, notice, Outcome.DELIVERED)
        self.deliver_checked(sink, notices[1], Outcome.DUPLICATE)  # changes nothing

        self.assert_shown_once(self.visible_after_close(sink), *notices)

    def test_answers_never_quote_personal_values(self, open_sink: Callable[[], Sink]) -> None:
        """Every answer is a DeliveryResult whose reason and error carry no field values."""
        sink = open_sink()
        notice = sample_notification()

        results = [
            self.deliver_checked(sink, notice, Outcome.DELIVERED),
            self.deliver_checked(sink, notice, Outcome.DUPLICATE),
        ]

        waits = [r.retry_after for r in results]
        assert waits == [None, None], f"only a RETRY may ask for a wait, got {waits}"

    def test_far_side_failure_is_retry_and_leaves_nothing(
        self, open_sink: Callable[[], Sink]
    ) -> None:
        """A failing far side answers RETRY or FAILED, shows nothing, and the same sink then
        delivers exactly once when it is back."""
        sink = open_sink()
        notice = sample_notification()

        with self.break_far_side():
            self.deliver_checked(sink, notice, Outcome.RETRY, Outcome.FAILED)
        shown = self.delivered()
        assert notice.notification_id not in shown, "a failed delivery left a record behind"

        self.deliver_checked(sink, notice, Outcome.DELIVERED)
        self.deliver_checked(sink, notice, Outcome.DUPLICATE)
        self.assert_shown_once(self.visible_after_close(sink), notice)

    def test_crash_mid_delivery_leaves_no_partial_record(
        self, open_sink: Callable[[], Sink]
    ) -> None:
        """A crash part-way through leaves the record whole or absent, and the retry after a
        restart leaves it visible exactly once: DUPLICATE only if it was visible already."""
        sink = open_sink()
        notice = sample_notification()

        with self.crash_mid_delivery(sink), pytest.raises(SimulatedCrash):
            sink.deliver(notice)
        after_crash = self.delivered().count(notice.notification_id)  # raises if partial
        assert after_crash <= 1, f"the crash left {after_crash} records"

        sink.close()  # the process is gone; as its exit would, this frees what it held (locks)
        restarted = open_sink()  # a sink may finish an interrupted write when it opens
        seen = self.delivered().count(notice.notification_id)
        assert seen <= 1, f"after the restart the far side shows {seen} records"
        if seen:
            self.deliver_checked(restarted, notice, Outcome.DELIVERED, Outcome.DUPLICATE)
        else:  # DUPLICATE here would mean the notification is lost
            self.deliver_checked(restarted, notice, Outcome.DELIVERED)

        self.assert_shown_once(self.visible_after_close(restarted), notice)

    def test_close_keeps_deliveries_and_is_safe_twice(self, open_sink: Callable[[], Sink]) -> None:
        """What was DELIVERED before close() is visible after it, and a second close() is fine."""
        sink = open_sink()
        notices = [sample_notification(), sample_notification()]
        for notice in notices:
            self.deliver_checked(sink, notice, Outcome.DELIVERED)

        sink.close()
        sink.close()

        self.assert_shown_once(self.delivered(), *notices)
