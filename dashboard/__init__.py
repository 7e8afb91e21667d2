"""dashboard package (see docs/design/dashboard.md)."""
