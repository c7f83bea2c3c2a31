"""The connector side: notices off a recipient's topic, into its sink, and a receipt back.

``runner`` is the loop; ``retries`` and ``dead_letters`` decide what happens when a sink cannot
take a notice (retry with backoff, or park it on the dead-letter topic).

May import: ``connectors.contract``, ``hub.audit``, ``hub.ports``, ``hub.wire``, ``hub.config``,
``hub.model``, ``hub.errors``; never ``hub.processing`` (a connector runs without the hub
worker, often on another machine) and never adapters.
"""
