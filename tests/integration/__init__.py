"""Integration tier: the real Tansu broker, real SQLite files and the real PostgreSQL server."""
