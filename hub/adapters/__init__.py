"""Adapters: the only modules that import Kafka, SQL, Avro or crypto libraries.

Each implements ports of ``hub.ports`` or serves the composition root: ``kafka`` and
``kafka_headers`` (message source, producer), ``claims`` (the claim log on Kafka), ``topics``
(reading a topic without a group), ``avro``, ``avro_json`` and ``schema_check`` (the codec and
the schema catalog's checks), ``signing``, ``jws`` and ``pseudonym_key`` (keys, signatures),
``sql`` (the store on SQLite and PostgreSQL: ``store``, ``queries``, ``transaction``,
``mappers``, ``tables``, ``migrate``), ``memory``, ``memory_state`` and ``memory_claims`` (the
store, its data and the claim log in memory, real adapters for fast tests), ``broker`` (an
embedded broker for tests, demos).

May import: anything in ``hub`` below ``hub.bootstrap``, and the infrastructure libraries.
"""
