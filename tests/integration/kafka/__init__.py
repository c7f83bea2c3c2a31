"""Kafka tier: the integration scenarios on Apache Kafka (KRaft) started from Maven Central jars."""
