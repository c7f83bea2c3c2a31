"""What the project ships for tests, its own and those of outside adapters and plug-ins.

The store contract suites every store adapter must pass (``store_contract``, and
``privacy_contract`` for erasure, rotation and purging; as connectors pass
``connectors.testing``), and the fakes the test tiers share. Importing this package needs
pytest only where a module says so.

May import: ``hub.ports``, ``hub.model``, ``hub.wire``, ``hub.config``, ``hub.errors``,
``hub.privacy`` and ``consent``; adapters only where a fake stands beside a real one, or for
the throwaway vault (``vaults``) a store under test seals with.
"""
