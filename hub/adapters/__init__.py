"""Adapters: the only modules that import Kafka, SQL, Avro or crypto libraries."""
