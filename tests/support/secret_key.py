"""The key sealing webhook secrets at rest in every test (a fixed one, so a test's processes
agree: its CLI, its servers and its own services)."""

TEST_SECRET_KEY = "dGllcmtpdC10ZXN0LXNlY3JldC1rZXktMzItYnl0ZXM="
