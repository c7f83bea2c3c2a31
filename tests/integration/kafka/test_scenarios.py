"""The integration tier's scenarios, unchanged, on Apache Kafka instead of Tansu.

Each test below is imported from its Tansu module and collected here again; pytest resolves
its fixtures from this folder, so ``harness`` and ``app`` run on the tier's Kafka cluster
(see conftest.py) while the stores are the integration tier's. A scenario changed there is
changed here too.
"""

from __future__ import annotations

import pytest

from ..test_crash_recovery import test_sigkill_mid_stream_then_restart_has_exactly_once_effect
from ..test_disclosure import (
    test_consenting_recipients_get_exactly_their_fields,
    test_withdrawn_consent_stops_later_disclosures,
)
from ..test_idempotency import (
    test_exact_duplicate_has_one_effect,
    test_new_worker_resumes_from_the_stored_offsets,
)

pytestmark = [pytest.mark.integration, pytest.mark.kafka]

__all__ = [
    "test_consenting_recipients_get_exactly_their_fields",
    "test_exact_duplicate_has_one_effect",
    "test_new_worker_resumes_from_the_stored_offsets",
    "test_sigkill_mid_stream_then_restart_has_exactly_once_effect",
    "test_withdrawn_consent_stops_later_disclosures",
]
