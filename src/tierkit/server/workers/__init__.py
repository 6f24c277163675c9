"""Background work inside the server process: webhook delivery (and, later, timed jobs)."""
