"""ledger package (see docs/design/ledger.md)."""
