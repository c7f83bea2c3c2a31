"""The integration tier's scenarios, unchanged, on Apache Kafka instead of Tansu.

Each test below is imported from its Tansu module and collected here again; pytest resolves
its fixtures from this folder, so ``harness``, ``app`` and ``broker`` run on the tier's Kafka
cluster (see conftest.py) while the stores are the integration tier's. A scenario changed there
is changed here too.

Not collected here, on purpose:

- ``test_dead_letters``' lost-broker test stops a memory-only broker and starts an empty one:
  a Kafka cluster keeps its records on disk, and what it does when brokers die is the fault
  tests' subject (``faults/``).
- ``test_sqltable_sink`` and ``test_webhook_sink`` test the sinks against their far side only;
  no broker takes part. The demo on Kafka (``test_demo_on_kafka``) runs both shipped sinks of
  the demo (staging table, file drop) end to end with receipts.
- The two-worker race needs its own store fixture (PostgreSQL only), so it has its own module
  here: ``test_two_workers_on_kafka``.
"""

from __future__ import annotations

import pytest

from ..test_consent_trail import (
    test_consent_receipt_verifies_and_tracks_withdrawal,
    test_portal_consent_events_decide_later_disclosures,
)
from ..test_crash_recovery import test_sigkill_mid_stream_then_restart_has_exactly_once_effect
from ..test_dead_letters import (
    test_a_retry_wait_longer_than_the_poll_interval_keeps_the_group_membership,
    test_refused_notification_is_dead_lettered_replayed_and_delivered_once,
)
from ..test_disclosure import (
    test_consenting_recipients_get_exactly_their_fields,
    test_withdrawn_consent_stops_later_disclosures,
)
from ..test_filedrop_batches import (
    test_sigkill_mid_stream_publishes_each_notification_once_in_whole_files,
)
from ..test_idempotency import (
    test_exact_duplicate_has_one_effect,
    test_new_worker_resumes_from_the_stored_offsets,
)
from ..test_poison_corpus import (
    test_poison_records_are_refused_by_code_and_the_good_ones_still_flow,
)
from ..test_untrusted_input import test_malformed_records_are_rejected_and_do_not_block

pytestmark = [pytest.mark.integration, pytest.mark.kafka]

__all__ = [
    "test_a_retry_wait_longer_than_the_poll_interval_keeps_the_group_membership",
    "test_consent_receipt_verifies_and_tracks_withdrawal",
    "test_consenting_recipients_get_exactly_their_fields",
    "test_exact_duplicate_has_one_effect",
    "test_malformed_records_are_rejected_and_do_not_block",
    "test_new_worker_resumes_from_the_stored_offsets",
    "test_poison_records_are_refused_by_code_and_the_good_ones_still_flow",
    "test_portal_consent_events_decide_later_disclosures",
    "test_refused_notification_is_dead_lettered_replayed_and_delivered_once",
    "test_sigkill_mid_stream_publishes_each_notification_once_in_whole_files",
    "test_sigkill_mid_stream_then_restart_has_exactly_once_effect",
    "test_withdrawn_consent_stops_later_disclosures",
]
