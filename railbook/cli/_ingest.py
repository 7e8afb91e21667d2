"""``railbook ingest``, ``why``, ``violations``, ``demo`` (filled in by the integrator)."""
