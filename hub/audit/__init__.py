"""The audit trail: what was disclosed, withheld, refused and delivered, provably.

``log`` appends facts as leaves of a Merkle log (``merkle``, RFC 9162) and signs checkpoints;
``verification`` and ``bundle`` check the log offline with nothing but a public key;
``oversight`` and ``reports`` are what a privacy officer runs against the store; ``pseudonyms``
keys the hashes of publisher-supplied ids that leaves keep instead of the ids.

May import: ``hub.ports``, ``hub.wire``, ``hub.config``, ``hub.model``, ``hub.errors`` and the
other use-case packages' public names; never adapters, Kafka, SQL or crypto libraries.
"""
