"""The connector retry policy: exponential backoff with full jitter, within a time budget.

Sinks only say RETRY or FAILED; how long to wait and when to give up is decided here, once, for
every sink, and applied by the ``Retries`` middleware (``hub.delivery.middleware``). The knobs
are Kafka Connect's: ``errors.retry.timeout`` (the budget for one notification),
``errors.retry.delay.max.ms`` (the longest single wait) and ``errors.tolerance`` (dead-letter
and go on, or stop).

Full jitter (a uniform wait between 0 and the exponential cap) spreads the retries of many
connectors hitting one recovering back office, which fixed exponential delays would synchronise.
A ``Retry-After`` from the far side is honoured but never beyond the longest wait.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    timeout_ms: int = 300_000  # -1: forever; 0: never retry
    delay_max_ms: int = 60_000
    delay_initial_ms: int = 200
    tolerate_all: bool = True  # errors.tolerance=all: dead-letter and go on
    jitter: Callable[[float], float] = field(default=lambda cap: random.uniform(0.0, cap))

    def delay_s(self, attempt: int, retry_after: float | None) -> float:
        """Wait before attempt ``attempt + 1``."""
        cap = min(self.delay_initial_ms * 2 ** (attempt - 1), self.delay_max_ms) / 1000
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.delay_max_ms / 1000)
        return self.jitter(cap)

    def allows(self, elapsed_s: float, delay_s: float) -> bool:
        """True when another attempt after ``delay_s`` still fits the budget."""
        if self.timeout_ms < 0:
            return True
        if self.timeout_ms == 0:  # never retry, not even at once (jitter may draw 0)
            return False
        return elapsed_s + delay_s <= self.timeout_ms / 1000
