"""The hub worker: inbound records in, decisions, notices, rejections and audit leaves out.

``worker`` is the loop (poll a micro-batch, process it in one transaction, relay the outbox);
``life_events``, ``consent_events`` and ``receipts`` handle one inbound topic each;
``rejections`` refuses one record the same way on all of them; ``rows`` gathers a batch's rows
per table and writes each table once; ``relay`` publishes committed outbox rows; ``fence`` keeps
one consumer group on one store.

May import: ``consent``, ``hub.audit``, ``hub.consents``, ``hub.ports``, ``hub.wire``,
``hub.config``, ``hub.model``, ``hub.errors``; never adapters (they arrive through ports) and
never ``hub.delivery``'s internals.
"""
