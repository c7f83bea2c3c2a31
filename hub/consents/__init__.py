"""Identity links and consents as the hub records them: the use-cases over ``consent``.

``service`` links program ids to persons and records consent changes (from the command line or a
portal) in one transaction with their audit leaves; ``notices`` holds the privacy-notice texts
and the hashes that pin them; ``receipts`` builds and checks the signed consent receipts a client
keeps.

May import: ``consent``, ``hub.audit``, ``hub.ports``, ``hub.wire``, ``hub.config``,
``hub.model``, ``hub.errors``; never adapters.
"""
