"""The SDK client (remote and local evaluation). It imports the engine and httpx only."""

from tierkit.client.async_client import AsyncClient
from tierkit.client.errors import (
    ApiError,
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    NotReadyError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    TierkitError,
    TransportError,
)
from tierkit.client.event_worker import WorkerStats
from tierkit.client.options import ClientOptions
from tierkit.client.sync_client import Client

__all__ = [
    "ApiError",
    "AsyncClient",
    "AuthenticationError",
    "Client",
    "ClientOptions",
    "ConflictError",
    "InvalidRequestError",
    "NotFoundError",
    "NotReadyError",
    "PermissionDeniedError",
    "RateLimitedError",
    "ServerError",
    "TierkitError",
    "TransportError",
    "WorkerStats",
]
