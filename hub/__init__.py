"""tellonce hub: validates life events, decides per recipient under consent, notifies.

Importing this package has no side effects; the composition root is ``hub.bootstrap``.
"""

__version__ = "0.1.0"
