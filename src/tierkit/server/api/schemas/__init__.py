"""Request and response bodies. They mirror API.md and convert to and from engine types."""
