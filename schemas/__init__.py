"""Avro schemas of tellonce's wire contract, shipped as data.

The ``.avsc`` files beside this module are the public contract; ``catalog.json`` gives each
(full name, version) its stable Confluent schema id and, once published, its fingerprint.
This package holds no code: it exists so the files install with tellonce.
"""
