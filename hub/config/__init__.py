"""Configuration: settings, the directory of programs and agreements, TOML files, logging.

``settings`` is read once by the composition root (``hub.bootstrap``) and never changed after
(``broker`` holds its Kafka part, transport security included);
``directory`` and ``tomlfiles`` load the operator's TOML files or the examples shipped in
``resources/``; ``logs`` sets up the JSON log lines (ids, never payloads).

May import: ``hub.wire``, ``hub.model``, ``hub.errors``, pydantic and structlog; nothing that
opens a connection.
"""
