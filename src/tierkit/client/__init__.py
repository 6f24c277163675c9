"""The SDK client (remote and local evaluation). It imports the engine and httpx only."""
