"""Integration tier: the real Tansu broker, real SQLite files and the real PostgreSQL server.

kafka-python 3.0.12 calls the deprecated ``importlib.resources.read_text`` and ``open_text``
while its modules load, which the suite's ``filterwarnings = error`` turns into a collection
error. Importing it here, once, with those warnings silenced keeps every other warning an error.
"""

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", r"(read|open)_text is deprecated", DeprecationWarning)
    import kafka  # noqa: F401
