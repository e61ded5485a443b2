"""A client for asyncio scripts (``socketio.AsyncSimpleClient``).

Shell ring, the asyncio twin of ``simple_client.py``: the handlers, the
inbox and the docstrings are ``BaseSimpleClient``'s; waiting is on an
``asyncio.Event`` that every change sets.  Everything runs on one event
loop, so a condition checked and an event cleared with no ``await`` in
between cannot miss a change.
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType
from typing import Any

from . import exceptions
from .async_client import AsyncClient
from .simple_client import BaseSimpleClient


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
        if self.connected:
            raise RuntimeError('Already connected')
        client = self._new_client(namespace)
        try:
            await client.connect(url, headers=headers, auth=auth, transports=transports, namespaces=[namespace],
                                 socketio_path=socketio_path, wait_timeout=wait_timeout)
        except BaseException:
            self.client = None
            self._update(live=False, connected=False)
            raise
        self._update(live=True, connected=True)

    def _update(self, **state: Any) -> None:
        self._live = state.get('live', self._live)
        self.connected = state.get('connected', self.connected)
        if 'event' in state:
            self.input_buffer.append(state['event'])
        self._changed.set()

    async def _changes(self, timeout: float | None = None) -> bool:
        """Wait for the next change; False on timeout."""
        self._changed.clear()
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except asyncio.TimeoutError:  # noqa: UP041 - not the builtin before Python 3.11
            return False
        return True

    async def _wait_live(self) -> AsyncClient:
        """Wait through a reconnection; ``DisconnectedError`` once it gave up."""
        while self.connected and not self._live:
            await self._changes()
        client = self.client
        if not self.connected or client is None:
            raise exceptions.DisconnectedError()
        return client

    async def emit(self, event: str, data: Any = None) -> None:
        while True:
            client = await self._wait_live()
            try:
                return await client.emit(event, data, namespace=self.namespace)
            except exceptions.BadNamespaceError:
                self._update(live=False)  # lost just now: wait for the reconnection

    async def call(self, event: str, data: Any = None, timeout: float | None = 60) -> Any:
        while True:
            client = await self._wait_live()
            try:
                return await client.call(event, data, namespace=self.namespace, timeout=timeout)
            except exceptions.BadNamespaceError:
                self._update(live=False)

    async def receive(self, timeout: float | None = None) -> list[Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.input_buffer:
            if not self.connected:
                raise exceptions.DisconnectedError()
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise exceptions.TimeoutError()
            await self._changes(remaining)
        return self.input_buffer.pop(0)

    async def disconnect(self) -> None:
        client = self.client
        if client is not None:
            await client.disconnect()
        self.client = None
        self._update(live=False, connected=False)

    async def __aenter__(self) -> AsyncSimpleClient:  # noqa: PYI034 - Self needs Python 3.11
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc_val: BaseException | None,
                        exc_tb: TracebackType | None) -> None:
        await self.disconnect()
