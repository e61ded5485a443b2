"""The asyncio Socket.IO client (``socketio.AsyncClient``).

Shell ring, the asyncio twin of ``client.py``.  python-engineio's
``engineio.AsyncClient`` (aiohttp) carries the transport; ``BaseClient``
holds the options, registration, docstrings and flows; ``_core.client_session``
the protocol state and ``_core.reconnect`` the backoff.  Messages are
decoded in order on the Engine.IO reader task (binary attachments
included); each handler runs in its own task, so a handler that awaits
``call()`` never stops acks from arriving.

``_AsyncEngineClient`` corrects python-engineio's asyncio client where the
green client's ``_EngineClient`` corrects the threaded one: a task per
message (which reorders packets and splits a binary packet's parts), a
polling response of more than 16 packets refused, every queued packet put
in one POST (python-engineio servers refuse more than 16), and a writer
left waiting after a disconnect made on the reader.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import engineio
from engineio import base_client as eio_base_client
from engineio import packet as eio_packet
from engineio import payload as eio_payload

from ._asyncio import settle
from ._twins import drive_async
from .base_client import (  # noqa: F401 - the limits re-exported
    FLUSH_SECONDS,
    MAX_PACKETS_PER_POST,
    BaseClient,
    CallWaiter,
    Flow,
    take_batch,
)

try:
    import aiohttp
except ImportError:  # no 'asyncio' extra: python-engineio reports it when connecting
    aiohttp = None


_SEND_ERRORS: tuple[type[BaseException], ...] = (OSError,)
if aiohttp is not None:
    _SEND_ERRORS = (OSError, aiohttp.ClientError)

#: How long ``wait()`` lets the Engine.IO client finish closing its transport
#: (websocket, aiohttp session) once the Socket.IO client is disconnected for good.
CLOSE_SECONDS = 5.0


#: Each connection's ``_close_if_abandoned`` task, referenced until done (asyncio keeps weak references).
_guards: set[asyncio.Task] = set()


class _AsyncEngineClient(engineio.AsyncClient):
    """``engineio.AsyncClient`` that hands messages over on its reader, in order."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.closed = asyncio.Event()  # set while no connection holds a transport or a session
        self.closed.set()

    async def connect(self, *args: Any, **kwargs: Any) -> Any:
        if self.state != 'disconnected':  # python-engineio refuses it
            return await super().connect(*args, **kwargs)
        # a fresh queue per connection: packets of the last one (and its
        # sentinel) can never reach this one's writer
        self.queue = self.create_queue()
        self.closed.clear()
        try:
            return await super().connect(*args, **kwargs)
        finally:
            if self.state == 'connected':
                guard = asyncio.ensure_future(self._close_if_abandoned())
                _guards.add(guard)  # referenced until done
                guard.add_done_callback(_guards.discard)
            else:
                self.closed.set()

    async def _close_if_abandoned(self) -> None:
        """Wait for the connection's end; if the event loop is torn down first, close the session.

        ``asyncio.run()`` cancels the tasks still running when its coroutine
        ends (Ctrl-C cancels that coroutine): python-engineio's reader and
        writer then stop without closing the aiohttp session, which aiohttp
        reports as unclosed.  This task is cancelled with them and closes it.
        """
        try:
            await self.closed.wait()
        except asyncio.CancelledError:
            http = self.http
            if not self.external_http and http is not None and not http.closed:
                await http.close()
            raise

    def send_nowait(self, data: str | bytes) -> None:
        """Queue a MESSAGE without yielding, so a packet's parts stay together."""
        if self.state == 'connected':
            self.queue.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, data=data))

    async def _reset(self) -> None:
        writer = self.write_loop_task
        await super()._reset()
        if writer is not None and writer is not asyncio.current_task() and not writer.done():
            # python-engineio drained the queue, sentinel included: the writer
            # would wait for ping_interval + ping_timeout
            self.queue.put_nowait(None)
        self.closed.set()
        # one turn of the loop, so that a wait() this releases returns now:
        # python-engineio's Ctrl-C handler cancels every other task as soon as
        # its disconnect() returns, and would interrupt it
        await asyncio.sleep(0)

    async def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        if event == 'message':  # inline, on the reader: python-engineio started a task per message
            handler = self.handlers.get('message')
            if handler is not None:
                await handler(*args)
            return None
        return await super()._trigger_event(event, *args, **kwargs)

    async def _read_loop_polling(self) -> None:
        """Long-poll until the connection ends (python-engineio's decoder refused more than 16 packets)."""
        while self.state == 'connected' and self.write_loop_task:
            response = await self._send_request('GET', self.base_url + self._get_url_timestamp(),
                                                timeout=max(self.ping_interval, self.ping_timeout) + 5)
            packets = await self._poll_packets(response)
            if packets is None:
                self.queue.put_nowait(None)  # ends the writer too
                break
            for pkt in packets:
                await self._receive_packet(pkt)
        if self.write_loop_task is not None:
            await self.write_loop_task
        if self.state == 'connected':
            await self._trigger_event('disconnect', self.reason.TRANSPORT_ERROR, run_async=False)
            if self in eio_base_client.connected_clients:
                eio_base_client.connected_clients.remove(self)
            await self._reset()

    async def _poll_packets(self, response: Any) -> list[Any] | None:
        """The packets of a polling response, or None when the connection is unusable."""
        if response is None or isinstance(response, str):
            self.logger.warning('polling request failed: %s', response or 'connection refused')
            return None
        if not 200 <= response.status < 300:
            self.logger.warning('polling request failed with status %s', response.status)
            return None
        try:
            body = (await response.read()).decode('utf-8')
            return [eio_packet.Packet(encoded_packet=part) for part in body.split('\x1e')] if body else []
        except ValueError as exc:  # UnicodeDecodeError and binascii.Error included
            self.logger.warning('invalid polling response: %s', exc)
            return None
        except _SEND_ERRORS as exc:
            self.logger.warning('polling response lost: %s', exc)
            return None

    async def _write_loop(self) -> None:
        """Send what is queued until the connection ends, at most ``MAX_PACKETS_PER_POST`` per POST."""
        timeout = max(self.ping_interval, self.ping_timeout) + 5
        while self.state == 'connected':
            try:
                first = await asyncio.wait_for(self.queue.get(), timeout)
            except asyncio.TimeoutError:  # noqa: UP041 - not the builtin before Python 3.11
                self.logger.error('packet queue is empty, aborting')
                break
            batch, last = take_batch(self.queue, first, asyncio.QueueEmpty)
            if batch and not await self._send_batch(batch):
                break
            if last:
                break
        self.write_loop_task = None

    async def _send_batch(self, batch: list[Any]) -> bool:
        """Send packets on the current transport; False once it failed."""
        try:
            if self.current_transport == 'polling':
                body = eio_payload.Payload(packets=batch).encode()
                response = await self._send_request('POST', self.base_url, body=body,
                                                    headers={'Content-Type': 'text/plain'},
                                                    timeout=self.request_timeout)
                if response is None or isinstance(response, str) or not 200 <= response.status < 300:
                    self.logger.warning('polling POST failed (%s), aborting', getattr(response, 'status', response))
                    return False
                response.release()
                return True
            for pkt in batch:
                if pkt.binary:
                    await self.ws.send_bytes(pkt.encode())
                else:
                    await self.ws.send_str(pkt.encode())
            return True
        except _SEND_ERRORS:
            self.logger.warning('WebSocket connection was closed, aborting')
            return False
        finally:
            for _ in batch:
                self.queue.task_done()


class AsyncClient(BaseClient):
    """A Socket.IO client for asyncio; drop-in for ``socketio.AsyncClient``.

    The arguments are those of :class:`greensio.Client`.  Needs aiohttp
    (``pip install greensio[asyncio]``).
    """

    _engine_base = engineio.AsyncClient

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

    def _create_engine(self, options: dict[str, Any]) -> _AsyncEngineClient:
        return _AsyncEngineClient(**options)

    # -- the public API (flows and docstrings on BaseClient) ----------------------------------------

    async def connect(self, url: Any, headers: Any = {}, auth: Any = None, transports: Any = None,  # noqa: B006
                      namespaces: Any = None, socketio_path: str = 'socket.io', wait: bool = True,
                      wait_timeout: float = 1, retry: bool = False) -> None:
        await drive_async(self._connect_flow(url, headers, auth, transports, namespaces, socketio_path, wait,
                                             wait_timeout, retry))

    async def wait(self) -> None:
        await self._finished.wait()
        # the Engine.IO client may still be closing its transport in another
        # task (a disconnect from the server, or from python-engineio's Ctrl-C
        # handler): returning first would let asyncio.run() cancel it halfway,
        # leaving the aiohttp session unclosed
        if not await self._wait(self.eio.closed, CLOSE_SECONDS):
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
        self.eio.send_nowait(data)  # nothing yields between a packet's parts

    async def _flush(self, timeout: float) -> None:
        if self.eio.state != 'connected' or asyncio.current_task() is self.eio.write_loop_task:
            return
        try:
            await asyncio.wait_for(self.eio.queue.join(), timeout)
        except asyncio.TimeoutError:  # noqa: UP041 - not the builtin before Python 3.11
            pass

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
