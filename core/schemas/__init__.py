"""Versioned Avro schemas (data files)."""
