"""The asyncio Engine.IO server: python-engineio's ``AsyncServer`` on greensio's sans-IO core.

Shell ring.  Every protocol decision (routing and the spec's refusals,
long-polling bodies, the upgrade probe, heartbeats, close) is made by
``_core.eio_server``; this module is the loop of I/O around it on one
asyncio event loop:

- a request goes to ``EngineCore.route`` and its answer is written by the
  web framework's driver (``async_drivers``: ASGI, aiohttp, tornado, sanic);
- one ``loop.call_at`` timer per session, armed at the core's deadline
  (no periodic sweep, so no deadline fires late);
- a waiting long-polling GET awaits one future, resolved by the core's
  ``wake_poll``; a websocket has a reader (this request's task, feeding
  ``receive_ws``) and a writer task draining the session's queue, because
  a framework's websocket send is a coroutine and ``send_nowait`` is not.

The asyncio process never imports gevent from here.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
from collections.abc import Callable
from typing import Any

from .._core import safejson
from .._core.eio_codec import CLOSE_PACKET, MESSAGE, PING_PACKET, OutPacket
from .._core.eio_http import (
    BAD_REQUEST,
    Handshake,
    HttpRefused,
    Poll,
    Post,
    Refusal,
    Response,
    WebSocketRequest,
    compress,
    content_length_of,
    refuse,
)
from .._core.eio_server import EngineCore, Reason, ServerSession
from .._core.websocket import CLOSE_TOO_BIG
from ..aio.runtime import AsyncioPrimitives, settle
from .base_server import BaseServer

_INF = float('inf')
#: python-engineio's asyncio modes, in the order it tries them when none is given.
ASYNC_MODES = ('aiohttp', 'sanic', 'tornado', 'asgi')


class AsyncSocket:
    """One Engine.IO session as the asyncio shell sees it (``server.sockets[sid]``)."""

    __slots__ = ('_polling', 'armed', 'closed', 'conn', 'disconnect_task', 'posted', 'probe_ws', 'queue', 'server',
                 'session', 'sid', 'timer', 'waiter', 'ws')

    def __init__(self, server: AsyncServer, conn: ServerSession) -> None:
        self.server = server
        self.conn = conn  # the core's session: its state and buffer
        self.sid = conn.sid
        self.session: dict = {}  # the application's (get_session / save_session)
        self.closed = False
        #: packets the websocket writer owes the peer
        self.queue: asyncio.Queue = asyncio.Queue()
        self.ws: Any = None  # the websocket carrying the session, once it does
        self.probe_ws: Any = None  # a websocket probing the upgrade
        self.waiter: asyncio.Future | None = None  # the waiting GET's
        self._polling = False  # a GET is waiting
        self.posted: list[str | bytes] = []  # MESSAGE payloads of the POST being read
        self.timer: asyncio.TimerHandle | None = None
        self.armed = _INF
        self.disconnect_task: asyncio.Future | None = None

    @property
    def upgraded(self) -> bool:
        return self.conn.transport == 'websocket'

    def send_nowait(self, pkt: OutPacket) -> None:
        """Queue a packet for the peer without awaiting."""
        if self.conn.send(pkt):
            self.queue.put_nowait(pkt)

    def hold_heartbeat(self, held: bool) -> None:
        """The server stops (``True``) or resumes reading this peer: it cannot time out meanwhile."""
        self.conn.hold_heartbeat(held, self.server._loop_time())
        self.server._arm(self)


class _Listener:
    """The core's three cross-request effects, for the shell."""

    __slots__ = ('server',)

    def __init__(self, server: AsyncServer) -> None:
        self.server = server

    def message(self, session: ServerSession, data: str | bytes) -> None:
        session.context.posted.append(data)

    def wake_poll(self, session: ServerSession) -> None:
        waiter = session.context.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def closed(self, session: ServerSession, reason: str) -> None:
        self.server._closed(session.context, reason)


class AsyncServer(BaseServer, AsyncioPrimitives):
    """An Engine.IO server for asyncio (python-engineio's ``AsyncServer``).

    :param async_mode: ``'aiohttp'``, ``'sanic'``, ``'tornado'`` or
        ``'asgi'``; by default the first of these whose framework is
        installed (``'asgi'`` needs none).
    :param ping_interval: seconds between the server's pings (default 25);
        ``(interval, grace)`` adds a grace period to what clients are told.
    :param ping_timeout: seconds a client has to answer a ping (default 20).
    :param max_http_buffer_size: the largest message or polling body
        accepted, in bytes (default 1,000,000).
    :param allow_upgrades: let long-polling clients upgrade to websocket.
    :param http_compression: compress long-polling bodies for clients that
        accept gzip or deflate.
    :param compression_threshold: compress only bodies of this many bytes or more.
    :param cookie: the name of a cookie carrying the sid, or a dict of its
        attributes (``name`` among them; a value may be a callable).
    :param cors_allowed_origins: the origins allowed to connect: same origin
        only by default, ``'*'`` any, ``[]`` turns CORS handling off; a
        callable gets the origin (and the environ) and says yes or no.
    :param cors_credentials: allow credentials (cookies) in CORS requests.
    :param logger: ``True`` logs at INFO, ``False`` only errors, or a logger.
    :param json: an alternative JSON module (``send`` encodes lists and dicts with it).
    :param async_handlers: run ``message`` handlers in their own task.
    :param monitor_clients: accepted for compatibility; heartbeats are one
        timer per session, always on.
    :param transports: the allowed transports (default both).
    """

    #: A coroutine function ``(sid, data)`` that, when set, gets every
    #: message instead of the ``message`` handler (a Socket.IO server on top sets it).
    message_handler: Callable[[str, Any], Any] | None = None

    def __init__(self, async_mode: str | None = None, ping_interval: Any = 25, ping_timeout: float = 20,
                 max_http_buffer_size: int = 1000000, allow_upgrades: bool = True, http_compression: bool = True,
                 compression_threshold: int = 1024, cookie: Any = None, cors_allowed_origins: Any = None,
                 cors_credentials: bool = True, logger: Any = False, json: Any = None, async_handlers: bool = True,
                 monitor_clients: Any = None, transports: Any = None, **kwargs: Any) -> None:
        super().__init__(ping_interval, ping_timeout, max_http_buffer_size, allow_upgrades, http_compression,
                         compression_threshold, cookie, cors_allowed_origins, cors_credentials, logger, json,
                         async_handlers, transports)
        self.sockets: dict[str, AsyncSocket] = {}
        self._tasks: set[asyncio.Future] = set()
        #: True when no async_mode was given: ``ASGIApp`` may then serve it through ASGI
        self.mode_detected = async_mode is None
        if async_mode is None:
            async_mode = detect_async_mode()
        elif async_mode not in ASYNC_MODES:
            raise ValueError('Invalid async_mode specified')
        self._use_driver(async_mode)
        self._core = EngineCore(self._config(), _Listener(self), websocket_available=True)
        self.logger.info('Server initialized for %s.', self.async_mode)

    def _use_driver(self, mode: str) -> None:
        """Serve through the driver of ``mode`` (``ASGIApp`` moves a detected server onto ASGI)."""
        self._driver = importlib.import_module(f'{__package__}.async_drivers.{mode}')
        self.async_mode = mode

    # -- python-engineio's public API ---------------------------------------------------------

    def is_asyncio_based(self) -> bool:
        return True

    def async_modes(self) -> list[str]:
        return list(ASYNC_MODES)

    def attach(self, app: Any, engineio_path: str = 'engine.io') -> None:
        """Attach the Engine.IO server to an aiohttp or sanic application."""
        create_route = getattr(self._driver, 'create_route', None)
        if create_route is None:
            raise ValueError(f'async_mode {self.async_mode!r} cannot attach to an application')
        create_route(app, self, f"/{engineio_path.strip('/')}/")

    async def send(self, sid: str, data: Any) -> None:
        """Send a message (``str``, ``bytes``; a ``list`` or ``dict`` travels as JSON) to a client."""
        if isinstance(data, (list, dict)):
            data = (self.json or safejson).dumps(data, separators=(',', ':'))
        await self.send_packet(sid, OutPacket(MESSAGE, data))

    async def send_packet(self, sid: str, pkt: Any) -> None:
        """Send a raw Engine.IO packet (``packet_type`` and ``data``) to a client."""
        socket = self.sockets.get(sid)
        if socket is None:
            self.logger.warning('Cannot send to sid %s', sid)
            return
        if not isinstance(pkt, OutPacket):
            pkt = OutPacket(pkt.packet_type, pkt.data)
        socket.send_nowait(pkt)

    async def get_session(self, sid: str) -> dict:
        """The user session of a client (see :meth:`session` to change it)."""
        return self.sockets[sid].session

    async def save_session(self, sid: str, session: dict) -> None:
        """Store the user session of a client."""
        self.sockets[sid].session = session

    def session(self, sid: str) -> Any:
        """``async with eio.session(sid) as session:`` reads the session and saves it back."""
        return _SessionContext(self, sid)

    def transport(self, sid: str) -> str:
        """``'polling'`` or ``'websocket'``."""
        return self.sockets[sid].conn.transport

    async def disconnect(self, sid: str | None = None) -> None:
        """Close one client's session, or every session; returns once their disconnect handlers ran."""
        if sid is not None:
            socket = self.sockets.get(sid)
            targets = [] if socket is None else [socket]
        else:
            targets = list(self.sockets.values())
        for socket in targets:
            self._core.close(socket.conn, Reason.SERVER_DISCONNECT)
        current = asyncio.current_task()
        for socket in targets:
            task = socket.disconnect_task
            if task is not None and task is not current:
                with contextlib.suppress(Exception):
                    await asyncio.shield(task)

    async def handle_request(self, *args: Any, **kwargs: Any) -> Any:
        """Handle an HTTP request (the framework's arguments); returns the framework's response."""
        request = await self._driver.translate(self, *args, **kwargs)
        if request is None:  # the client went away before its request arrived
            return None
        return await self._handle(request)

    async def shutdown(self) -> None:
        """Stop the server's background activity (its timers go with their sessions)."""
        self.logger.info('Engine.IO is shutting down')

    # -- requests -------------------------------------------------------------------------------------

    @staticmethod
    def _loop_time() -> float:
        return asyncio.get_running_loop().time()

    async def _handle(self, request: Any) -> Any:
        verdict = self._origin_verdict(request.headers.get('origin'), request.environ)
        route = self._core.route(request.method, request.query, request.headers, scheme=request.scheme,
                                 origin_verdict=verdict)
        if isinstance(route, Poll):
            return await self._poll(request, route)
        if isinstance(route, Post):
            return await self._post(request, route)
        if isinstance(route, WebSocketRequest):
            if route.session is None:
                return await self._open_websocket(request, route)
            return await self._upgrade(request, route, route.session)
        if isinstance(route, Handshake):
            return await self._handshake(request, route)
        if isinstance(route, Refusal):
            self._log_refusal(request, route)
            response = route.response()
            if request.websocket:
                return await request.refuse_websocket(response)
            if request.method == 'POST' and route.status != 413:
                # its body is left unread, so the connection cannot carry another request; one
                # over the limit gets what an HTTP server answers before any application would
                response.close_connection = True
                length = content_length_of(request.headers.get('content-length'))
                if length is not None and length > self.max_http_buffer_size:
                    response = Refusal(status=413, code=None, message='Payload Too Large', headers=route.headers,
                                       close_connection=True).response()
            return await request.respond(response)
        return await request.respond(route.response())  # a CORS preflight

    def _log_refusal(self, request: Any, refusal: Refusal) -> None:
        if refusal.closed is not None:
            self.logger.warning('%s: %s, closing session', refusal.closed.sid, refusal.message)
        else:
            self.logger.info('%s %s?%s refused: %s', request.method, request.path, request.query, refusal.message)

    async def _handshake(self, request: Any, route: Handshake) -> Any:
        socket, refusal = await self._open(request, route.transport)
        if socket is None:
            return await request.respond(self._core.unauthorized(refusal))
        body = socket.conn.poll(self._loop_time())
        response = route.response_for(socket.conn, body or '', self._cookie(route.cookie))
        return await request.respond(self._compressed(request, response))

    async def _open(self, request: Any, transport: str) -> tuple[AsyncSocket | None, Any]:
        """A new session if the connect handler accepts it, else None and the handler's refusal message."""
        sid = self.generate_id()
        conn, open_packet = self._core.open(sid, transport, self._loop_time())
        socket = conn.context = AsyncSocket(self, conn)
        if transport == 'websocket':
            socket.queue.put_nowait(open_packet)
        self.sockets[sid] = socket
        ret = await self._trigger_event('connect', sid, request.environ())
        if ret is not None and ret is not True:
            self._core.discard(conn)
            if self.sockets.get(sid) is socket:
                del self.sockets[sid]
            self.logger.warning('Application rejected connection')
            return None, ret or None
        self._arm(socket)
        return socket, None

    async def _poll(self, request: Any, route: Poll) -> Any:
        conn = route.session
        socket = conn.context
        try:
            body = conn.poll(self._loop_time())
        except HttpRefused as exc:
            refusal = exc.refusal
            if refusal.closed is not None:
                self.logger.warning('%s: overlapping polling GET, closing session', conn.sid)
            return await request.respond(refusal.response())
        if body is None:
            loop = asyncio.get_running_loop()
            waiter = socket.waiter = loop.create_future()
            socket._polling = True
            try:
                await waiter
            except asyncio.CancelledError:  # the framework cancels a request whose client went away
                conn.poll_aborted()
                raise
            finally:
                socket._polling = False
                socket.waiter = None
            body = conn.finish_poll()
        return await request.respond(self._compressed(request, route.response(body)))

    def _compressed(self, request: Any, response: Response) -> Response:
        if self.http_compression and len(response.body) >= self.compression_threshold:
            body, encoding = compress(response.body, request.headers.get('accept-encoding'),
                                      self.compression_methods, self.compression_threshold)
            if encoding is not None:
                response.body = body
                response.headers.append(('Content-Encoding', encoding))
        return response

    async def _post(self, request: Any, route: Post) -> Any:
        conn = route.session
        socket = conn.context
        limit = route.max_body if route.content_length is not None else route.max_body + 1
        try:
            body = await request.read_body(limit)
        except Exception:  # noqa: BLE001 - the peer went away inside the body (as the framework says it)
            # nothing of it arrived; the client sends it again, and the heartbeat watches it
            conn.post_aborted()
            return await request.respond(refuse(BAD_REQUEST, message='POST body cut').response())
        posted: list[str | bytes] = []
        socket.posted = posted
        try:
            conn.receive_post(body, self._loop_time(), post=route)
        except HttpRefused as exc:
            if exc.refusal.closed is not None:
                self.logger.warning('%s: malformed polling payload (%s), closing session', conn.sid, exc)
            return await request.respond(exc.refusal.response())
        self._arm(socket)
        for data in posted:
            await self._message(socket, data)
        return await request.respond(route.ok())

    # -- websockets ------------------------------------------------------------------------------------

    async def _open_websocket(self, request: Any, route: WebSocketRequest) -> Any:
        """A session that starts on a websocket: the connect handler decides before the 101."""
        socket, refusal = await self._open(request, 'websocket')
        if socket is None:
            return await request.refuse_websocket(self._core.unauthorized(refusal))
        ws = await request.accept_websocket(route.headers)
        if ws is None:
            socket.conn.transport_closed()
            return request.result()
        await self._serve_websocket(socket, ws)
        return request.result()

    async def _upgrade(self, request: Any, route: WebSocketRequest, conn: ServerSession) -> Any:
        socket = conn.context
        ws = await request.accept_websocket(route.headers)
        if ws is None:
            conn.abort_probe()
            return request.result()
        socket.probe_ws = ws
        try:
            upgraded = await self._probe(conn, ws)
        finally:
            socket.probe_ws = None
        if not upgraded:
            self.logger.info('%s: websocket upgrade failed', conn.sid)
            with contextlib.suppress(Exception):
                await ws.close(1000)
            return request.result()
        await self._serve_websocket(socket, ws)
        return request.result()

    async def _probe(self, conn: ServerSession, ws: Any) -> bool:
        """``2probe`` / ``3probe`` / ``5``; True once the websocket carries the session."""
        loop = asyncio.get_running_loop()
        limit = self.max_http_buffer_size
        timeout = self._core.config.upgrade_timeout
        while True:
            try:
                msg = await asyncio.wait_for(ws.receive(), timeout)
            except (asyncio.TimeoutError, OSError):  # noqa: UP041 - not the builtin before Python 3.11
                msg = None
            if msg is None or len(msg) > limit:
                conn.abort_probe()
                return False
            result = conn.receive_probe(msg, loop.time())
            if result is None:
                return False
            done, packets = result
            if done:
                queue = conn.context.queue
                for pkt in packets:  # before anything sent from now on
                    queue.put_nowait(pkt)
                return True
            for pkt in packets:
                await ws.send(pkt.message())
            timeout = max(conn.probe_deadline - loop.time(), 0)

    async def _serve_websocket(self, socket: AsyncSocket, ws: Any) -> None:
        """The websocket carries the session: read here, write in a task, until either side ends."""
        socket.ws = ws
        writer = asyncio.ensure_future(self._write_loop(socket, ws))
        conn = socket.conn
        error = False
        try:
            error = await self._read_loop(socket, ws)
        finally:
            conn.transport_closed(error=error)
            await writer

    async def _read_loop(self, socket: AsyncSocket, ws: Any) -> bool:
        """Feed the core until the peer goes; True when it went for a transport error."""
        conn = socket.conn
        receive, receive_ws = ws.receive, conn.receive_ws
        limit = self.max_http_buffer_size
        loop = asyncio.get_running_loop()
        while True:
            try:
                msg = await receive()
            except OSError:
                return False
            if msg is None:
                return False
            if len(msg) > limit:
                self.logger.warning('%s: websocket message too big, closing', socket.sid)
                with contextlib.suppress(Exception):
                    await ws.close(CLOSE_TOO_BIG)
                return True
            data = receive_ws(msg, loop.time())
            if data is None:
                if socket.closed:
                    return False
                if conn.deadline < socket.armed:
                    self._arm(socket)
                continue
            await self._message(socket, data)

    async def _write_loop(self, socket: AsyncSocket, ws: Any) -> None:
        queue, send = socket.queue, ws.send
        try:
            while True:
                pkt = await queue.get()
                if pkt is None:
                    break
                await send(pkt.message())
        except Exception:  # noqa: BLE001, S110 - the peer went away mid-write; the reader sees it too
            pass
        with contextlib.suppress(Exception):  # closed already: by the peer, or by the reader with a code
            await ws.close(1000)
        if not socket.closed:  # the writer failed first: end the reader as well
            socket.conn.transport_closed(error=True)

    # -- the session's lifetime -------------------------------------------------------------------------

    def _arm(self, socket: AsyncSocket) -> None:
        """One timer per session, at the core's deadline (re-armed only when the deadline moved earlier)."""
        deadline = socket.conn.deadline
        timer = socket.timer
        if timer is not None:
            if socket.armed <= deadline:
                return  # it fires first; handle_deadline then re-arms at the later deadline
            timer.cancel()
            socket.timer = None
        if deadline == _INF:
            socket.armed = _INF
            return
        socket.armed = deadline
        socket.timer = asyncio.get_running_loop().call_at(deadline, self._deadline, socket)

    def _deadline(self, socket: AsyncSocket) -> None:
        socket.timer = None
        socket.armed = _INF
        if socket.conn.handle_deadline(asyncio.get_running_loop().time()):
            socket.queue.put_nowait(PING_PACKET)
        self._arm(socket)

    def _closed(self, socket: AsyncSocket, reason: str) -> None:
        """The core ended the session: stop its timer, close its websocket, run the disconnect handler."""
        socket.closed = True
        if socket.timer is not None:
            socket.timer.cancel()
            socket.timer = None
        if socket.conn.close_packet_due:
            socket.queue.put_nowait(CLOSE_PACKET)
        socket.queue.put_nowait(None)  # the writer's last packet: then it closes the websocket
        if socket.probe_ws is not None:
            self._spawn(_close_quietly(socket.probe_ws))
        if socket.waiter is not None and not socket.waiter.done():
            socket.waiter.set_result(None)
        if self.sockets.get(socket.sid) is socket:
            del self.sockets[socket.sid]
        socket.disconnect_task = self._spawn(self._trigger_event('disconnect', socket.sid, reason))

    async def _message(self, socket: AsyncSocket, data: str | bytes) -> None:
        handler = self.message_handler
        if handler is not None:
            try:
                await handler(socket.sid, data)
            except Exception:
                self.logger.exception('%s: message handler error', socket.sid)
        elif self.async_handlers:
            self._spawn(self._trigger_event('message', socket.sid, data))
        else:
            await self._trigger_event('message', socket.sid, data)

    async def _trigger_event(self, event: str, *args: Any) -> Any:
        """Run the application's handler for ``event``; a failing connect handler refuses."""
        handler = self.handlers.get(event)
        if handler is None:
            return None
        if event == 'disconnect' and not self._reason_arg:
            args = args[:1]
        try:
            result = await settle(handler(*args))
        except Exception:
            self.logger.exception('%s handler error', event)
            return False if event == 'connect' else None
        return result

    def _spawn(self, coro: Any) -> asyncio.Future:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


class _SessionContext:
    def __init__(self, server: AsyncServer, sid: str) -> None:
        self.server, self.sid = server, sid
        self.session: dict | None = None

    async def __aenter__(self) -> dict:
        self.session = await self.server.get_session(self.sid)
        return self.session

    async def __aexit__(self, *exc: object) -> None:
        if self.session is not None:
            await self.server.save_session(self.sid, self.session)


def detect_async_mode() -> str:
    """The first of python-engineio's asyncio modes whose web framework is installed."""
    for mode in ASYNC_MODES[:-1]:
        if importlib.util.find_spec(mode) is not None:
            return mode
    return 'asgi'


async def _close_quietly(ws: Any) -> None:
    with contextlib.suppress(Exception):
        await ws.close(1000)
