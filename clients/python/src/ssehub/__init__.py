"""A Python client for ssehub: publish over HTTP, subscribe over Server-Sent Events with
automatic reconnect and ``Last-Event-ID`` resume, and mint the JWTs the hub accepts."""

from .client import AsyncClient, AsyncSubscription, Client, SSEHubError, Subscription
from .sse import RESET_EVENT, Event, SSEParser
from .token import mint_token

__all__ = [
    "AsyncClient",
    "AsyncSubscription",
    "Client",
    "Event",
    "RESET_EVENT",
    "SSEHubError",
    "SSEParser",
    "Subscription",
    "mint_token",
]
__version__ = "0.1.0"
