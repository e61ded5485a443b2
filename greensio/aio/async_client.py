"""The asyncio Socket.IO client (``socketio.AsyncClient``).

Shell ring, the asyncio twin of ``client.py``.  :class:`greensio.engineio.AsyncClient`
(aiohttp, around the sans-IO Engine.IO core) carries the transport;
``BaseClient`` holds the options, registration, docstrings and flows;
``_core.client_session`` the protocol state and ``_core.reconnect`` the
backoff.  Messages are decoded in order on the Engine.IO reader task
(binary attachments included); each handler runs in its own task, so a
handler that awaits ``call()`` never stops acks from arriving.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..common.base_client import BaseClient, CallWaiter, Flow
from ..common.twins import drive_async
from ..engineio.async_client import AsyncClient as EngineIOAsyncClient
from .runtime import settle

#: How long ``wait()`` lets the Engine.IO client finish closing its transport
#: (websocket, aiohttp session) once the Socket.IO client is disconnected for good.
CLOSE_SECONDS = 5.0


class AsyncClient(BaseClient):
    """A Socket.IO client for asyncio; drop-in for ``socketio.AsyncClient``.

    The arguments are those of :class:`greensio.Client`.  Needs aiohttp
    (``pip install greensio[asyncio]``).
    """

    _engine_base = EngineIOAsyncClient

    def __init__(self, reconnection: bool = True, reconnection_attempts: int = 0, reconnection_delay: float = 1,
                 reconnection_delay_max: float = 5, randomization_factor: float = 0.5, logger: Any = False,
                 serializer: Any = 'default', json: Any = None, handle_sigint: bool = True, **kwargs: Any) -> None:
        super().__init__(reconnection, reconnection_attempts, reconnection_delay, reconnection_delay_max,
                         randomization_factor, logger, serializer, json, handle_sigint, **kwargs)
        self._answer = asyncio.Event()
        self._finished = asyncio.Event()
        self._finished.set()
        self._reconnect_task: asyncio.Task | None = None
        self._reconnect_abort = asyncio.Event()
        self._reconnect_idle = asyncio.Event()  # set while no reconnection loop runs
        self._reconnect_idle.set()
        self._tasks: set[asyncio.Task] = set()  # handler tasks, referenced until done

    # -- the public API (flows and docstrings on BaseClient) ----------------------------------------

    async def connect(self, url: Any, headers: Any = {}, auth: Any = None, transports: Any = None,  # noqa: B006
                      namespaces: Any = None, socketio_path: str = 'socket.io', wait: bool = True,
                      wait_timeout: float = 1, retry: bool = False) -> None:
        await drive_async(self._connect_flow(url, headers, auth, transports, namespaces, socketio_path, wait,
                                             wait_timeout, retry))

    async def wait(self) -> None:
        await self._finished.wait()
        # the Engine.IO client may still be closing its transport in another
        # task (a disconnect from the server, or from the Ctrl-C handler):
        # returning first would let asyncio.run() cancel it halfway, leaving
        # the aiohttp session unclosed
        try:
            await asyncio.wait_for(self.eio.wait(), CLOSE_SECONDS)
        except asyncio.TimeoutError:  # noqa: UP041 - not the builtin before Python 3.11
            self.logger.warning('the Engine.IO connection did not close in time')

    async def emit(self, event: str, data: Any = None, namespace: str | None = None,
                   callback: Callable | None = None) -> None:
        self._emit(event, data, namespace, callback)

    async def send(self, data: Any, namespace: str | None = None, callback: Callable | None = None) -> None:
        await self.emit('message', data=data, namespace=namespace, callback=callback)

    async def call(self, event: str, data: Any = None, namespace: str | None = None,
                   timeout: float | None = 60) -> Any:
        return await drive_async(self._call_flow(CallWaiter(asyncio.Event()), event, data, namespace, timeout))

    async def disconnect(self) -> None:
        await drive_async(self._disconnect_flow())

    async def shutdown(self) -> None:
        await self.disconnect()

    async def sleep(self, seconds: float = 0) -> None:
        await asyncio.sleep(seconds)

    # -- how this twin waits, spawns and sends --------------------------------------------------------

    _run_flow = staticmethod(drive_async)

    def _current(self) -> Any:
        return asyncio.current_task()

    async def _wait(self, event: asyncio.Event, timeout: float | None) -> bool:
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except asyncio.TimeoutError:  # noqa: UP041 - not the builtin before Python 3.11
            return False
        return True

    def _submit(self, flow: Flow) -> None:
        task = asyncio.ensure_future(drive_async(flow))
        self._tasks.add(task)  # referenced until done
        task.add_done_callback(self._tasks.discard)

    def _queue_message(self, data: str | bytes) -> None:
        self.eio._send_nowait(data)  # nothing yields between a packet's parts

    async def _handle_eio_connect(self) -> None:
        # a coroutine function (python-engineio awaits this handler): ``auth`` may be one
        await drive_async(self._eio_connect_flow())

    async def _handle_eio_message(self, data: str | bytes) -> None:
        await drive_async(self._message_flow(data))

    async def _handle_eio_disconnect(self, reason: str | None = None) -> None:
        await drive_async(self._eio_disconnect_flow(reason))

    # -- reconnection --------------------------------------------------------------------------------

    async def _reconnect_loop(self, namespaces: list[str]) -> bool:
        self._reconnect_idle.clear()
        try:
            return await drive_async(self._reconnect_flow(namespaces))
        finally:
            self._reconnect_idle.set()

    async def _join_reconnect(self, task: Any, timeout: float) -> None:
        if not await self._wait(self._reconnect_idle, timeout):
            self.logger.warning('the reconnection loop did not stop in time')

    # -- handlers --------------------------------------------------------------------------------------

    async def _trigger_event(self, event: str, namespace: str, *args: Any) -> Any:
        return await settle(super()._trigger_event(event, namespace, *args))
