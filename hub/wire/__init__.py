"""The wire contract: what a publisher or a connector in any language must follow.

``topics`` names every topic, ``cloudevents`` every header and its checks, ``schemas`` the Avro
full names the hub writes by name, ``catalog`` the schema ids, ``events`` the life-event types and
their payload rules, ``limits`` the bounds on untrusted bytes, ``inbound`` the checks an inbound
life event must pass, ``publishing`` what a publisher sends. Each name is spelled here once.

May import: ``hub.ports``, ``hub.config``, ``hub.model``, ``hub.errors``; no adapters and no
Kafka, SQL, Avro or crypto library (the catalog reads ``schemas/`` as files).
"""
