"""The connector side: notices off a recipient's topic, into its sink, and a receipt back.

``runner`` is the loop and only the loop; ``middleware`` holds the hooks around each delivery
and the two middlewares that decide what happens when a sink cannot take a notice: ``Retries``
(try again after the backoff of the ``retries`` policy) and ``DeadLetters`` (park it on the
dead-letter topic with the headers ``dead_letters`` writes, or stop the connector).

May import: ``connectors.contract``, ``hub.audit``, ``hub.ports``, ``hub.wire``, ``hub.config``,
``hub.model``, ``hub.errors``; never ``hub.processing`` (a connector runs without the hub
worker, often on another machine) and never adapters.
"""
