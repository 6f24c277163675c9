"""Tierkit: entitlements for SaaS. The SDK's public names live here."""

__version__ = "0.1.0"

__all__ = ["__version__"]
