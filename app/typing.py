"""ASGI types shared by the service's middleware.

Hypercorn's ``TypedDict`` scopes are exact; the middleware here adds its own keys to a copy of
the scope (``app.request_id``), so they work with plain mappings.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeAlias

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]
HeaderList: TypeAlias = list[tuple[bytes, bytes]]

#: The scope key under which :mod:`app.requestid` stores the request's id.
REQUEST_ID_KEY = "app.request_id"
