"""Integration tests (real Kafka, DuckDB on disk, HTTP on loopback); a package so that
``tests/integration/kafka`` and ``tests/integration/ledger`` do not shadow ``kafka`` and ``ledger``."""
