"""The `railbook` command line and service wiring."""
