"""Tierkit: entitlements for SaaS. The SDK's public names live here (`pip install tierkit`
gives the engine and this client; `tierkit[server]` adds the server)."""

from tierkit.client import (
    ApiError,
    AsyncClient,
    AuthenticationError,
    Client,
    ClientOptions,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    NotReadyError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    TierkitError,
    TransportError,
    WorkerStats,
)
from tierkit.engine.evaluate import Decision, Reason, Usage

__version__ = "0.1.0"

__all__ = [
    "ApiError",
    "AsyncClient",
    "AuthenticationError",
    "Client",
    "ClientOptions",
    "ConflictError",
    "Decision",
    "InvalidRequestError",
    "NotFoundError",
    "NotReadyError",
    "PermissionDeniedError",
    "RateLimitedError",
    "Reason",
    "ServerError",
    "TierkitError",
    "TransportError",
    "Usage",
    "WorkerStats",
    "__version__",
]
