"""Use cases per domain. They own transactions and raise domain errors (`errors.py`)."""
