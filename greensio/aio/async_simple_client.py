"""A client for asyncio scripts (``socketio.AsyncSimpleClient``).

Shell ring, the asyncio twin of ``simple_client.py``: the handlers, the
inbox and the docstrings are ``BaseSimpleClient``'s; waiting is on an
``asyncio.Event`` that every change sets.  Everything runs on one event
loop, so a condition checked and an event cleared with no ``await`` in
between cannot miss a change.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Any

from ..common.base_client import BaseSimpleClient
from ..common.twins import drive_async
from .async_client import AsyncClient


class AsyncSimpleClient(BaseSimpleClient):
    """A Socket.IO client with a handler-free asyncio API.

    The constructor's arguments go to :class:`greensio.AsyncClient` (a new
    one at every ``connect()``; subclasses may set ``client_class``)::

        async with greensio.AsyncSimpleClient() as sio:
            await sio.connect('http://localhost:5000')
            await sio.emit('hello', {'name': 'me'})
            event, *args = await sio.receive(timeout=5)
    """

    client_class = AsyncClient

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._changed = asyncio.Event()

    async def connect(self, url: Any, headers: Any = {}, auth: Any = None, transports: Any = None,  # noqa: B006
                      namespace: str = '/', socketio_path: str = 'socket.io', wait_timeout: float = 5) -> None:
        await drive_async(self._connect_flow(url, headers, auth, transports, namespace, socketio_path, wait_timeout))

    async def emit(self, event: str, data: Any = None) -> None:
        await drive_async(self._live_call_flow('emit', event, data))

    async def call(self, event: str, data: Any = None, timeout: float | None = 60) -> Any:
        return await drive_async(self._live_call_flow('call', event, data, timeout=timeout))

    async def receive(self, timeout: float | None = None) -> list[Any]:
        return await drive_async(self._receive_flow(timeout))

    async def disconnect(self) -> None:
        await drive_async(self._disconnect_flow())

    def _guard(self) -> contextlib.nullcontext:
        return contextlib.nullcontext()

    def _notify(self) -> None:
        self._changed.set()

    async def _wait_change(self, timeout: float | None) -> bool:
        """Wait for the next change; False on timeout."""
        self._changed.clear()
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except asyncio.TimeoutError:  # noqa: UP041 - not the builtin before Python 3.11
            return False
        return True

    async def __aenter__(self) -> AsyncSimpleClient:  # noqa: PYI034 - Self needs Python 3.11
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc_val: BaseException | None,
                        exc_tb: TracebackType | None) -> None:
        await self.disconnect()
