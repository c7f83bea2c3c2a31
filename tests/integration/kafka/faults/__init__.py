"""Fault tests of the Kafka tier on three nodes: partition leaders killed, the whole cluster
restarted, while tellonce runs as in production (hub and connectors as processes)."""
