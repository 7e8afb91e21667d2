"""ingest package (see docs/design/ingest.md)."""
