"""Personal data at rest: per-person data keys, the blind index, erasure and KEK rotation.

``vault`` seals and opens values under a person's data key, kept wrapped by a key-encryption
key (through the ``KeyWrapper`` and ``Sealer`` ports); ``blind_index`` finds sealed local ids
by a keyed hash. Store adapters seal with the vault, so what reaches a table, a dump or a
backup is ciphertext; erasing a person destroys their data key (crypto-shredding).
``erasure`` is that use-case, with its audit leaves.

May import: ``hub.ports``, ``hub.model``, ``hub.errors``, ``hub.audit`` (leaves and pseudonyms
of the erasure) and the standard library; no adapters,
no infrastructure library (``cryptography`` lives in ``hub.adapters.keys``).
"""
