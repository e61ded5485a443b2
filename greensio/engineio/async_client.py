"""The asyncio Engine.IO client (``engineio.AsyncClient``): aiohttp around the core.

Shell ring, the twin of ``client.py``: a reader task (long-polling GETs or
the websocket, its timeout the core's heartbeat deadline) and a writer task
(POST bodies batched by the core, or websocket messages), the upgrade probe
inside ``connect()``.  Everything runs on one event loop and no core call
awaits, so there is no lock.  If the loop cancels the tasks (``asyncio.run()``
ending after Ctrl-C), the reader still closes the websocket and the aiohttp
session, which aiohttp would otherwise report as unclosed.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import signal
import ssl
import threading
import time
import weakref
from http.cookies import SimpleCookie
from typing import Any

from .._core.eio_client import CLOSED, EngineClient
from .._core.eio_codec import CLOSE_PACKET, OutPacket
from .._core.handlers import call_trimmed
from ..aio.runtime import AsyncioPrimitives
from . import exceptions
from .base_client import MIN_WAIT, BaseClient, Inbox

try:
    import aiohttp
except ImportError:  # no 'asyncio' extra: connect() says so
    aiohttp = None  # type: ignore[assignment]

#: How long ``disconnect()`` waits for the connection's tasks.
JOIN_SECONDS = 10.0

# Clients with a connection; Ctrl-C disconnects them (handle_sigint).
_connected: set[AsyncClient] = set()
# Event loops whose SIGINT this module handles, and the handler tasks (asyncio keeps weak references).
_sigint_loops: weakref.WeakSet = weakref.WeakSet()
_tasks: set[asyncio.Task] = set()


def _keep(task: asyncio.Task) -> asyncio.Task:
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return task


def _sigint() -> None:
    """python-engineio's Ctrl-C: disconnect every client, cancel every task, stop the loop."""
    async def handler() -> None:
        for client in list(_connected):
            await client.disconnect()
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        asyncio.get_running_loop().stop()

    _keep(asyncio.ensure_future(handler()))


class _Link:
    """One connection: its core and what the tasks share."""

    __slots__ = ('core', 'drained', 'http', 'inbox', 'reader', 'url', 'wake', 'writer', 'ws', 'ws_out')

    def __init__(self) -> None:
        self.wake = asyncio.Event()
        self.drained = asyncio.Event()  # set while the writer has sent everything queued
        self.drained.set()
        self.inbox = Inbox(self._woken)
        self.core: EngineClient = None  # type: ignore[assignment]
        self.ws: Any = None
        self.ws_out: list[OutPacket] = []
        self.http: Any = None  # this connection's aiohttp session: its tasks outlive a disconnect(abort=True)
        self.url = ''  # the long-polling URL, with the session id
        self.reader: asyncio.Task | None = None
        self.writer: asyncio.Task | None = None

    def _woken(self) -> None:
        self.drained.clear()
        self.wake.set()


class AsyncClient(BaseClient):
    """An Engine.IO client for asyncio; drop-in for ``engineio.AsyncClient``.

    The arguments are those of :class:`greensio.engineio.Client`, with an
    ``aiohttp.ClientSession`` (or a function, possibly a coroutine function,
    returning one) as ``http_session`` and ``websocket_extra_options`` for
    ``aiohttp``'s ``ws_connect()``.  Needs aiohttp (``pip install greensio[asyncio]``).
    """

    def __init__(self, logger: Any = False, json: Any = None, request_timeout: float = 5, http_session: Any = None,
                 ssl_verify: bool = True, handle_sigint: bool = True, websocket_extra_options: dict | None = None,
                 timestamp_requests: bool = True) -> None:
        super().__init__(logger, json, request_timeout, http_session, ssl_verify, handle_sigint,
                         websocket_extra_options, timestamp_requests)
        self._link: _Link | None = None

    def is_asyncio_based(self) -> bool:
        return True

    # -- the public API (docstrings on BaseClient) ---------------------------------------------------

    async def connect(self, url: str, headers: dict | None = None, transports: Any = None,
                      engineio_path: str = 'engine.io') -> bool:
        loop = asyncio.get_running_loop()
        if self.handle_sigint and loop not in _sigint_loops and threading.current_thread() is threading.main_thread():
            try:
                loop.add_signal_handler(signal.SIGINT, _sigint)
            except NotImplementedError:  # not on Windows' event loops
                self.logger.warning('Signal handler is unsupported')
            _sigint_loops.add(loop)
        if self.state != 'disconnected':
            raise ValueError('Client is not in a disconnected state')
        if aiohttp is None:
            raise exceptions.ConnectionError("greensio.engineio.AsyncClient needs aiohttp: pip install 'greensio[asyncio]'")
        transports = self._valid_transports(transports)
        headers = dict(headers or {})
        link = _Link()
        link.core = core = self._new_core(transports, link.inbox)
        self._link = link
        try:
            if transports[0] == 'polling':
                await self._open_polling(link, url, headers, engineio_path)
            else:
                await self._open_websocket(link, url, headers, engineio_path)
            self.state = 'connected'
            _connected.add(self)
            try:
                await self._trigger_event('connect', reraise=True)
            except Exception as exc:
                raise exceptions.ConnectionError(f'Connect handler failed: {exc}') from exc
            await self._deliver(link.inbox.take())
            if core.upgrade_possible():
                await self._upgrade(link, url, headers, engineio_path)
        except BaseException:
            if link.ws is not None:
                await link.ws.close()
            await self._teardown(link)
            raise
        link.writer = self.write_loop_task = asyncio.ensure_future(self._write_loop(link))
        link.reader = self.read_loop_task = asyncio.ensure_future(self._read_loop(link))
        return True

    async def wait(self) -> None:
        task = self.read_loop_task  # the last connection's reader: it ends last, session closed
        if task is not None and not task.done():
            await asyncio.wait([task])

    async def send(self, data: Any) -> None:
        self._send_nowait(data)

    async def disconnect(self, abort: bool = False, reason: str | None = None) -> None:
        link = self._link
        if link is not None and not abort and link.writer is not None and link.core.transport == 'polling':
            # what is queued goes first, in POSTs of its own, as engine.io-client does: a
            # server may act on the CLOSE before the packets that share its payload
            try:
                await asyncio.wait_for(link.drained.wait(), self.request_timeout)
            except asyncio.TimeoutError:  # noqa: UP041 - not the builtin before Python 3.11
                pass
        if link is None or self.state != 'connected':
            if self.state == 'disconnected':
                self._reset()
            return
        self.state = 'disconnecting'
        link.core.close()  # polling: the writer POSTs the CLOSE; websocket: it writes it
        link.wake.set()
        await self._trigger_event('disconnect', reason or self.reason.CLIENT_DISCONNECT)
        if not abort:
            me = asyncio.current_task()
            tasks = [t for t in (link.writer, link.reader) if t is not None and t is not me and not t.done()]
            if tasks:
                await asyncio.wait(tasks, timeout=JOIN_SECONDS)
        await self._teardown(link)

    start_background_task = AsyncioPrimitives.start_background_task
    sleep = AsyncioPrimitives.sleep
    create_queue = AsyncioPrimitives.create_queue
    get_queue_empty_exception = AsyncioPrimitives.get_queue_empty_exception

    def create_event(self) -> asyncio.Event:  # type: ignore[override]  # python-engineio's signature
        return asyncio.Event()

    def _send_nowait(self, data: Any) -> None:
        """``send`` without yielding: a Socket.IO packet's parts stay together."""
        link = self._link
        if link is None or self.state != 'connected':
            return
        packet = self._packet(data)
        if link.core.send(packet):
            link.ws_out.append(packet)
            link.wake.set()

    # -- opening ------------------------------------------------------------------------------------

    async def _session(self, link: _Link) -> Any:
        if link.http is None:
            if self.http is None or self.http.closed:
                if self.http_factory:
                    http = self.http_factory()
                    self.http = await http if inspect.isawaitable(http) else http
                else:
                    self.http = aiohttp.ClientSession()
            link.http = self.http
        return link.http

    async def _request(self, link: _Link, method: str, url: str, headers: dict | None = None,
                       body: bytes | None = None, timeout: float | None = None) -> tuple[int, bytes, str] | str:
        """``(status, body, content type)``, or the error as a string."""
        http = await self._session(link)
        options: dict[str, Any] = {'headers': headers, 'data': body, 'timeout': aiohttp.ClientTimeout(total=timeout)}
        if not self.ssl_verify:
            options['ssl'] = False
        try:
            async with http.request(method, url, **options) as r:
                return r.status, await r.read(), r.headers.get('Content-Type', '')
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:  # noqa: UP041 - 3.10's is not the builtin
            self.logger.info('HTTP %s request to %s failed with error %s.', method, url, exc)
            return str(exc) or type(exc).__name__

    async def _open_polling(self, link: _Link, url: str, headers: dict, engineio_path: str) -> None:
        core = link.core
        self.base_url = self._url(core, url, engineio_path, 'polling')
        self.logger.info('Attempting polling connection to %s', self.base_url)
        r = await self._request(link, 'GET', self.base_url + self._timestamp(), headers=headers,
                                timeout=self.request_timeout)
        if isinstance(r, str):
            raise exceptions.ConnectionError(r or 'Connection refused by the server')
        status, body, _ = r
        if not 200 <= status < 300:
            try:
                detail = json.loads(body)
            except ValueError:
                detail = None
            raise self._handshake_refused(status, detail)
        self._accept(core, body, time.monotonic())
        self.base_url = link.url = self._url(core, url, engineio_path, 'polling')

    async def _open_websocket(self, link: _Link, url: str, headers: dict, engineio_path: str) -> None:
        core = link.core
        self.base_url = self._url(core, url, engineio_path, 'websocket')
        self.logger.info('Attempting WebSocket connection to %s', self.base_url)
        ws = await self._websocket(link, self.base_url, headers)
        if ws is None:
            raise exceptions.ConnectionError('Connection error')
        link.ws = self.ws = ws
        try:
            msg = await ws.receive(timeout=self.request_timeout)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:  # noqa: UP041
            raise exceptions.ConnectionError(f'Unexpected recv exception: {exc}') from None
        if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            raise exceptions.ConnectionError('no OPEN packet')
        self._accept(core, msg.data, time.monotonic())

    async def _websocket(self, link: _Link, url: str, headers: dict) -> Any:
        http = await self._session(link)
        headers = dict(headers)
        for name in list(headers):
            if name.lower() == 'cookie':  # the jar sends them, on this request and the next ones
                cookies = SimpleCookie(headers.pop(name))
                http.cookie_jar.update_cookies({key: morsel.value for key, morsel in cookies.items()})
                break
        options: dict[str, Any] = {}
        if hasattr(aiohttp, 'ClientWSTimeout'):
            options['timeout'] = aiohttp.ClientWSTimeout(ws_close=self.request_timeout)
        if not self.ssl_verify:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            options['ssl'] = context
        extra = dict(self.websocket_extra_options)
        headers.update(extra.pop('headers', {}))
        options['headers'] = headers
        options.update(extra)  # the caller's options take precedence
        try:
            return await asyncio.wait_for(http.ws_connect(url + self._timestamp(), **options), self.request_timeout)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:  # noqa: UP041
            self.logger.info('WebSocket connection to %s failed: %s', url, exc)
            return None

    async def _upgrade(self, link: _Link, url: str, headers: dict, engineio_path: str) -> None:
        """The upgrade probe, before the reader and writer start: no GET or POST is in flight."""
        core = link.core
        ws_url = self._url(core, url, engineio_path, 'websocket')
        self.logger.info('Attempting WebSocket upgrade to %s', ws_url)
        ws = await self._websocket(link, ws_url, headers)
        if ws is None:
            self.logger.warning('WebSocket upgrade failed: connection error')
            return
        try:
            await ws.send_str(core.start_probe().message())
            msg = await ws.receive(timeout=self.request_timeout)
            reply = msg.data if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY) else None
            ok = reply is not None and core.receive_probe(reply)
            if not ok or not core.upgrade_ready:
                core.abort_probe()
                self.logger.warning('WebSocket upgrade failed: no PONG packet')
                await ws.close()
                return
            link.ws = self.ws = ws
            self.current_transport = 'websocket'
            for packet in core.finish_upgrade():
                await self._ws_write(ws, packet)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:  # noqa: UP041
            if core.transport == 'websocket':  # upgraded: the websocket is the connection now
                core.transport_failed()
            else:  # the probe failed: carry on over long-polling
                core.abort_probe()
            self.logger.warning('WebSocket upgrade failed: %s', exc)
            await ws.close()
            return
        self.logger.info('WebSocket upgrade was successful')

    # -- the reader ---------------------------------------------------------------------------------

    async def _read_loop(self, link: _Link) -> None:
        try:
            if link.core.transport == 'websocket':
                await self._read_websocket(link)
            else:
                await self._read_polling(link)
        except asyncio.CancelledError:
            # the loop is going away (asyncio.run() ending): close what is open, run no handler
            link.core.transport_failed()
            if link.writer is not None:
                link.writer.cancel()
            if link.ws is not None:
                await link.ws.close()
            await self._teardown(link)
            await self._close_http(link)
            raise
        link.core.transport_failed()  # a no-op unless the loop ended on its own
        link.wake.set()  # the writer ends too
        mine = self._link is link and self.state == 'connected'
        if mine:
            self.state = 'disconnecting'
        if link.writer is not None and not link.writer.done():
            await asyncio.wait([link.writer], timeout=JOIN_SECONDS)
        if link.ws is not None:
            await link.ws.close()
        if mine:
            self.logger.info('Engine.IO connection ended: %s', link.inbox.reason)
            await self._trigger_event('disconnect', link.inbox.reason or self.reason.TRANSPORT_ERROR)
            await self._teardown(link)
        await self._close_http(link)

    async def _read_polling(self, link: _Link) -> None:
        core = link.core
        while core.may_poll():
            core.poll_started()
            r = await self._request(link, 'GET', link.url + self._timestamp(),
                                    timeout=max(core.deadline - time.monotonic(), MIN_WAIT))
            now = time.monotonic()
            if isinstance(r, str) or not 200 <= r[0] < 300:
                core.handle_deadline(now)
                self.logger.warning('polling request failed: %s', r if isinstance(r, str) else r[0])
                core.transport_failed()
            else:
                core.receive_poll(r[1], now, binary=r[2] == 'application/octet-stream')
            messages = link.inbox.take()
            if messages:
                await self._deliver(messages)

    async def _read_websocket(self, link: _Link) -> None:
        core, ws = link.core, link.ws
        text, binary = aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY
        while core.state != CLOSED:
            try:
                msg = await ws.receive(timeout=max(core.deadline - time.monotonic(), MIN_WAIT))
            except asyncio.TimeoutError:  # noqa: UP041
                core.handle_deadline(time.monotonic())
                continue
            except (aiohttp.ClientError, OSError) as exc:
                self.logger.info('WebSocket connection was closed: %s', exc or type(exc).__name__)
                return
            if msg.type is not text and msg.type is not binary:
                return  # closed by the server, or failed
            data = core.receive_ws(msg.data, time.monotonic())
            if data is not None:
                await self._deliver((data,))

    async def _deliver(self, messages: Any) -> None:
        handler = self.handlers.get('message')
        if handler is None:
            return
        for data in messages:
            if self._raw_messages:  # on the reader, in order
                result = handler(data)
                if inspect.isawaitable(result):
                    await result
            else:  # python-engineio's way: a task each
                _keep(asyncio.ensure_future(self._trigger_event('message', self._user_data(data))))

    # -- the writer ---------------------------------------------------------------------------------

    async def _write_loop(self, link: _Link) -> None:
        core = link.core
        while True:
            link.wake.clear()
            if core.transport == 'websocket':
                packets = core.take_ws_packets()
                if link.ws_out:
                    packets += link.ws_out
                    link.ws_out = []
                closing = core.state == CLOSED
                if packets or closing:
                    if not await self._write_websocket(link, packets, closing):
                        return
                    continue
            else:
                body = core.take_post_body()
                if body is not None:
                    closing = core.state == CLOSED
                    r = await self._request(link, 'POST', link.url, body=body.encode('utf-8'),
                                            headers={'Content-Type': 'text/plain;charset=UTF-8'},
                                            timeout=self.request_timeout)
                    ok = not isinstance(r, str) and 200 <= r[0] < 300
                    if not ok and not closing:
                        self.logger.warning('polling POST failed: %s', r if isinstance(r, str) else r[0])
                    core.post_done(ok)
                    continue
                if core.state == CLOSED:
                    return
                link.drained.set()
            await link.wake.wait()

    async def _write_websocket(self, link: _Link, packets: list[OutPacket], closing: bool) -> bool:
        """Write ``packets``; once the connection ended, the CLOSE too if it was ours, then close."""
        ws = link.ws
        try:
            for packet in packets:
                await self._ws_write(ws, packet)
            if not closing:
                return True
            if link.inbox.reason == self.reason.CLIENT_DISCONNECT:
                await self._ws_write(ws, CLOSE_PACKET)
        except (aiohttp.ClientError, OSError) as exc:
            if link.core.state != CLOSED:
                self.logger.warning('WebSocket write failed: %s', exc or type(exc).__name__)
            link.core.transport_failed()
        await ws.close()  # wakes the reader
        return False

    @staticmethod
    async def _ws_write(ws: Any, packet: OutPacket) -> None:
        if packet.binary:
            await ws.send_bytes(packet.message())
        else:
            await ws.send_str(packet.message())

    # -- handlers and the end ---------------------------------------------------------------------------

    async def _trigger_event(self, event: str, *args: Any, reraise: bool = False) -> Any:
        handler = self.handlers.get(event)
        if handler is None:
            return None
        try:
            if event == 'disconnect':  # the reason is optional (legacy handlers take none)
                result = call_trimmed(handler, args, 1)
            else:
                result = handler(*args)
            if inspect.isawaitable(result):
                result = await result
            return result
        except asyncio.CancelledError:
            return None
        except Exception:
            self.logger.exception('%s handler error', event)
            if reraise:
                raise
            return None

    async def _teardown(self, link: _Link) -> None:
        """The connection is over: forget it (unless a new one started meanwhile)."""
        if link.reader is None:  # connect() failed: no reader owns it
            await self._close_http(link)
        if self._link is not link:
            return
        _connected.discard(self)
        self._link = None
        self.ws = None
        self._reset()
        if not self.external_http:
            self.http = None  # the next connection gets a new one; the reader closes this one

    async def _close_http(self, link: _Link) -> None:
        http, link.http = link.http, None
        if http is not None and not self.external_http:
            await http.close()
