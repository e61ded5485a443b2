"""The green Engine.IO server: python-engineio's ``Server`` on greensio's sans-IO core.

Shell ring (gevent; also Python threads for ``async_mode='threading'``,
long-polling only, as Flask's ``flask run`` serves).  The core
(``_core.eio_server``) decides everything about the protocol; this module
owns the I/O around it:

- HTTP requests come as WSGI calls (:meth:`Server.handle_request`) or, from
  greensio's own server, as already parsed polling requests
  (:meth:`Server.handle_polling`), which skip building a WSGI environ;
- a websocket is taken over from gevent-websocket after its upgrade and read
  by the request's greenlet (``websocket.WebSocketTransport``); writes go
  straight to the socket from the emitting greenlet;
- a long-polling GET with nothing to send waits on an event the core's
  ``wake_poll`` sets;
- each session has one timer, armed at the core's ``deadline`` (never a
  sweep over all sessions, which would make a deadline late).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket as _socket
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from .._core import eio_http
from .._core import websocket as wsproto
from .._core.eio_codec import CLOSE_PACKET, MESSAGE, PING_PACKET, OutPacket
from .._core.eio_http import HttpRefused, Response
from .._core.eio_server import CLOSED, EngineCore, Reason, ServerSession, generate_sid
from .._core.safejson import dumps as json_dumps
from . import exceptions
from .base_server import BaseServer
from .direct import KeptAlive, PollingRoute

_INF = float('inf')
_monotonic = time.monotonic


class Socket:
    """One Engine.IO session as the application sees it (``Server.sockets[sid]``)."""

    __slots__ = ('__weakref__', '_armed', '_cancel_timer', '_poll_event', '_polling', 'closed', 'connected', 'probe_ws',
                 'server', 'session', 'sid', 'state', 'ws')

    def __init__(self, server: Server, state: ServerSession) -> None:
        self.server = server
        self.sid = state.sid
        #: the core's session: protocol state, buffer, heartbeat deadline
        self.state = state
        #: python-engineio's per-session dict (``get_session`` / ``save_session``)
        self.session: dict = {}
        self.closed = False
        self.connected = True
        #: the websocket carrying the session, once it does
        self.ws: Any = None
        #: a websocket probing an upgrade of this polling session
        self.probe_ws: Any = None
        self._poll_event: Any = None
        self._polling = False  # a long-polling GET waits for packets
        self._cancel_timer: Callable[[], None] | None = None
        self._armed = _INF
        state.context = self

    @property
    def upgraded(self) -> bool:
        return self.state.transport == 'websocket'

    @property
    def upgrading(self) -> bool:
        return self.probe_ws is not None

    def send(self, packet: OutPacket) -> None:
        """Send an Engine.IO packet (one encoding, shared by every recipient of a broadcast)."""
        if self.state.send(packet):
            self.ws.send(packet.frame())

    def hold_heartbeat(self, held: bool) -> None:
        """Say that the server stops (``True``) or resumes reading this peer.

        While a hold lasts the peer cannot time out: its PONG may be waiting,
        unread, behind its other packets; it is pinged all the same, so it
        does not time the server out either.  When the last hold ends, a
        pending ping gets a full ``ping_timeout`` again, counted from now.
        """
        self.state.hold_heartbeat(held, _monotonic())
        self.server._arm(self)

    def close(self, wait: bool = True, abort: bool = False, reason: str | None = None) -> None:
        self.server._close(self, reason or Reason.SERVER_DISCONNECT)


class _ThreadedSocket(Socket):
    """A session of the threading mode: the core is shared between threads, so calls take the lock."""

    __slots__ = ()

    def send(self, packet: OutPacket) -> None:
        with self.server._lock:
            self.state.send(packet)  # long-polling only: never a websocket write

    def hold_heartbeat(self, held: bool) -> None:
        with self.server._lock:
            Socket.hold_heartbeat(self, held)


class _WaitingWebSocket:
    """Collects the frames sent to a websocket-only session while its connect handler runs."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.closed = False

    def send(self, frame: bytes) -> None:
        self.frames.append(frame)

    def close(self, *args: Any) -> None:
        self.closed = True


def _framing_fault(environ: dict) -> str | None:
    """What makes the length of a request's body doubtful, if anything.

    A proxy in front may frame such a request otherwise than the server, and
    what one takes for body the other serves as a request of its own
    (request smuggling); the answer then closes the connection, so nothing
    after it is served.  Engine.IO clients always send a Content-Length, and
    a chunked request cannot be told apart from one that also sent a
    Content-Length: gevent's pywsgi drops that header before the application
    sees it, and keeps the connection open.
    """
    if 'HTTP_TRANSFER_ENCODING' in environ:
        return 'a Transfer-Encoding'
    length = environ.get('CONTENT_LENGTH')
    if length and not (length.isascii() and length.isdigit()):  # int() takes '+5' and '5_0'
        return 'an invalid Content-Length'
    return None


class _EnvironHeaders:
    """A WSGI environ's request headers, looked up by lower-case name (what the core reads)."""

    __slots__ = ('environ',)

    def __init__(self, environ: dict) -> None:
        self.environ = environ

    def get(self, name: str, default: Any = None) -> Any:
        key = _ENVIRON_KEYS.get(name)
        if key is None:
            key = _ENVIRON_KEYS[name] = 'HTTP_' + name.upper().replace('-', '_')
        return self.environ.get(key) or default


#: header name -> WSGI environ key (the few the core asks about, filled as asked)
_ENVIRON_KEYS = {'content-length': 'CONTENT_LENGTH', 'content-type': 'CONTENT_TYPE'}


#: connections whose TCP_NODELAY is set, by their reader (one per connection under pywsgi)
_nodelay_done: weakref.WeakSet = weakref.WeakSet()


def _set_nodelay(environ: dict) -> None:
    """TCP_NODELAY on the connection of a request served by a server greensio does not own.

    pywsgi writes a response's headers and its body with two sends; without
    TCP_NODELAY the body waits for the client's delayed ACK, ~40 ms, and a
    long-polling round trip, two such responses, can never be faster.  The
    option is set on a duplicate of the connection's descriptor (the same
    socket), once per connection.
    """
    if 'greensio.nodelay' in environ:  # greensio's own server set it when it accepted the connection
        return
    sock = environ.get('gunicorn.sock') or environ.get('gunicorn.socket')  # gunicorn's gevent / sync workers
    stream = environ.get('wsgi.input')
    key = getattr(stream, 'rfile', stream)  # pywsgi's input wraps the connection's reader
    if key is None:
        return
    try:
        if key in _nodelay_done:
            return
        _nodelay_done.add(key)
    except TypeError:  # not weakly referenceable: no way to do it once per connection
        return
    try:
        if sock is not None:
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            return
        fd = key.fileno()
        with _socket.socket(fileno=os.dup(fd)) as dup:
            if dup.family in (_socket.AF_INET, _socket.AF_INET6):
                dup.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
    except (OSError, ValueError, AttributeError):  # not a socket, or not TCP
        pass


class Server(BaseServer):
    """An Engine.IO server (python-engineio's ``engineio.Server``).

    :param async_mode: ``'gevent'`` (default) or ``'threading'`` (Python
        threads, long-polling only, for Werkzeug's development server).
    :param ping_interval: seconds between pings (default 25), or a tuple
        ``(interval, grace_period)``.
    :param ping_timeout: seconds the client has to answer a ping (default 20).
    :param max_http_buffer_size: the largest message or polling POST, in bytes.
    :param allow_upgrades: let long-polling clients upgrade to websocket.
    :param http_compression: gzip/deflate long-polling responses of at least
        ``compression_threshold`` bytes.
    :param cookie: the name of the sid cookie, or a dict of its attributes.
    :param cors_allowed_origins: ``None`` (same origin only), ``'*'``, an
        origin, a list of origins, a callable ``(origin[, environ])``, or
        ``[]`` to leave CORS to the application.
    :param cors_credentials: send ``Access-Control-Allow-Credentials``.
    :param logger: ``True`` logs at INFO, ``False`` errors only, or a logger.
    :param json: an alternative JSON module (used to encode ``send()`` data).
    :param async_handlers: run ``message`` handlers on their own greenlets.
    :param monitor_clients: accepted for compatibility; every session's
        heartbeat is watched by its own timer.
    :param transports: ``['polling', 'websocket']`` or a subset.
    """

    def __init__(self, async_mode: str | None = None, ping_interval: float | tuple[float, float] = 25,
                 ping_timeout: float = 20, max_http_buffer_size: int = 1000000, allow_upgrades: bool = True,
                 http_compression: bool = True, compression_threshold: int = 1024, cookie: Any = None,
                 cors_allowed_origins: Any = None, cors_credentials: bool = True, logger: Any = False,
                 json: Any = None, async_handlers: bool = True, monitor_clients: Any = None,
                 transports: Any = None, **kwargs: Any) -> None:
        if async_mode is None:
            async_mode = 'gevent'
        if async_mode not in ('gevent', 'threading'):
            raise ValueError('Invalid async_mode specified')
        self.async_mode = async_mode
        if isinstance(logger, bool):
            logger = _default_logger(logger)
        super().__init__(ping_interval, ping_timeout, max_http_buffer_size, allow_upgrades, http_compression,
                         compression_threshold, cookie, cors_allowed_origins, cors_credentials, logger, json,
                         async_handlers, transports)
        self.sockets: dict[str, Socket] = {}
        #: called with ``(sid, data)`` for each message, in the reader's
        #: greenlet; greensio's Socket.IO server sets it to its own dispatch
        self.message_handler: Callable[[str, Any], Any] = self._dispatch_message
        self._callable_origins = callable(cors_allowed_origins)
        green = async_mode == 'gevent'
        self._core = EngineCore(self._config(), self, websocket_available=green)
        self._in_timer = False
        self._threaded = not green
        if green:
            import gevent

            self._gevent = gevent
            self._loop = gevent.get_hub().loop
            self._lock: Any = contextlib.nullcontext()
            self._socket_class: type[Socket] = Socket
        else:
            import threading

            self._gevent = None
            self._loop = None
            self._lock = threading.RLock()
            self._socket_class = _ThreadedSocket
        self.logger.info('Server initialized for %s.', self.async_mode)

    # -- python-engineio's public API ---------------------------------------------------------------

    def is_asyncio_based(self) -> bool:
        return False

    def async_modes(self) -> list[str]:
        return ['gevent', 'threading']

    def send(self, sid: str, data: Any) -> None:
        """Send a message: ``str`` as text, ``bytes`` as binary, anything else as JSON."""
        if not isinstance(data, (str, bytes, bytearray)):
            data = self.json.dumps(data, separators=(',', ':')) if self.json is not None else \
                json_dumps(data, separators=(',', ':'))
        self.send_packet(sid, OutPacket(MESSAGE, data))

    def send_packet(self, sid: str, pkt: Any) -> None:
        """Send an Engine.IO packet (an ``OutPacket``, or any object with ``packet_type`` and ``data``)."""
        socket = self.sockets.get(sid)
        if socket is None or socket.closed:
            self.logger.warning('Cannot send to sid %s', sid)
            return
        if not isinstance(pkt, OutPacket):
            pkt = OutPacket(pkt.packet_type, pkt.data)
        socket.send(pkt)

    def get_session(self, sid: str) -> dict:
        """The user session of ``sid`` (a dict kept for the life of the connection)."""
        socket = self.sockets.get(sid)
        if socket is None:
            raise KeyError('Session not found')
        return socket.session

    def save_session(self, sid: str, session: dict) -> None:
        socket = self.sockets.get(sid)
        if socket is None:
            raise KeyError('Session not found')
        socket.session = session

    @contextlib.contextmanager
    def session(self, sid: str) -> Iterator[dict]:
        """``with eio.session(sid) as session:`` changes are saved when the block ends."""
        session = self.get_session(sid)
        yield session
        self.save_session(sid, session)

    def disconnect(self, sid: str | None = None) -> None:
        """Close one session, or all of them; the peer is told with a CLOSE packet."""
        sockets = [self.sockets.get(sid)] if sid is not None else list(self.sockets.values())
        for socket in sockets:
            if socket is not None:
                # a socket object of greensio.testing's in-process client closes itself too
                socket.close(wait=False, reason=Reason.SERVER_DISCONNECT)
                if self.sockets.get(socket.sid) is socket:
                    del self.sockets[socket.sid]

    def transport(self, sid: str) -> str:
        """``'polling'`` or ``'websocket'``."""
        socket = self.sockets.get(sid)
        if socket is None:
            raise KeyError('Session not found')
        return 'websocket' if socket.upgraded else 'polling'

    def shutdown(self) -> None:
        """Close every session."""
        self.logger.info('Engine.IO is shutting down')
        self.disconnect()

    def start_background_task(self, target: Callable, *args: Any, **kwargs: Any) -> Any:
        """Run ``target`` on a greenlet (a thread in threading mode); returns it (``join()`` waits)."""
        if self._gevent is not None:
            return self._gevent.spawn(target, *args, **kwargs)
        import threading

        thread = threading.Thread(target=target, args=args, kwargs=kwargs, daemon=True)
        thread.start()
        return thread

    def sleep(self, seconds: float = 0) -> None:
        if self._gevent is not None:
            return self._gevent.sleep(seconds)
        time.sleep(seconds)
        return None

    def create_queue(self, *args: Any, **kwargs: Any) -> Any:
        if self._gevent is not None:
            import gevent.queue

            return gevent.queue.JoinableQueue(*args, **kwargs)
        import queue

        return queue.Queue(*args, **kwargs)

    def get_queue_empty_exception(self) -> type[Exception]:
        if self._gevent is not None:
            import gevent.queue

            return gevent.queue.Empty
        import queue

        return queue.Empty

    def create_event(self, *args: Any, **kwargs: Any) -> Any:
        if self._gevent is not None:
            import gevent.event

            return gevent.event.Event(*args, **kwargs)
        import threading

        return threading.Event(*args, **kwargs)

    # -- requests ------------------------------------------------------------------------------------

    def handle_request(self, environ: dict, start_response: Callable) -> list[bytes]:
        """Serve an HTTP request to the Engine.IO path (the WSGI application)."""
        gevent = self._gevent
        if gevent is not None:
            if gevent.getcurrent().parent is None and not _on_main_thread():
                # a plain OS thread: its greenlets would never run, and every request would hang
                raise RuntimeError(
                    "greensio's gevent mode needs a gevent server (greensio.run/make_server, gunicorn with "
                    "greensio.gunicorn.GeventWebSocketWorker), or gevent.monkey.patch_all() first thing; "
                    "this request came from an OS thread of a threading server (such as 'flask run' or "
                    "Django's runserver): to keep that server, create greensio.Server(async_mode='threading')")
            _set_nodelay(environ)
        fault = _framing_fault(environ)
        if fault is not None:
            self.logger.warning('refused a request with %s (its body length is in doubt), closing the connection',
                                fault)
            r = eio_http.refuse(eio_http.BAD_REQUEST, message='Bad framing', close_connection=True).response()
            return self._wsgi_answer(start_response, r, environ)
        headers = _EnvironHeaders(environ)
        method = environ['REQUEST_METHOD']
        verdict = self._origin_verdict(headers.get('origin'), environ)
        with self._lock:
            route = self._core.route(method, environ.get('QUERY_STRING', ''), headers,
                                     scheme=environ.get('wsgi.url_scheme', 'http'), origin_verdict=verdict)
        if isinstance(route, eio_http.Poll):
            r = self._poll(route, headers.get('accept-encoding'))
            return self._wsgi_answer(start_response, r, environ, keep_alive=True)
        if isinstance(route, eio_http.Post):
            posted = self._post(route, lambda size: environ['wsgi.input'].read(size))
            # no body: nobody to answer either
            r = posted or eio_http.refuse(eio_http.BAD_REQUEST, close_connection=True).response()
            return self._wsgi_answer(start_response, r, environ, keep_alive=True)
        if isinstance(route, eio_http.Handshake):
            r = self._handshake(route, environ)
        elif isinstance(route, eio_http.WebSocketRequest):
            return self._websocket(route, environ, start_response)
        elif isinstance(route, eio_http.Refusal):
            r = self._refused(route, method, headers)
        else:  # Preflight
            r = route.response()
        return self._wsgi_answer(start_response, r, environ)

    def handle_polling(self, method: str, query: str, headers: Any, scheme: str,
                       read: Callable[[int], bytes]) -> Any:
        """Serve a long-polling request of an existing session from a server's parsed request.

        greensio's server calls this instead of ``handle_request`` for
        requests that carry a ``sid`` and no upgrade: no WSGI environ is
        built.  ``headers.get`` takes lower-case names; ``read(n)`` reads the
        body.  Returns the answer, which the caller writes in one send (if
        that fails, it calls :meth:`polling_lost`); ``NotImplemented`` when
        the request needs the WSGI path (an Origin to ask a callable about);
        None when the body could not be read (close the connection, no
        answer).
        """
        if self._callable_origins and headers.get('origin') is not None:
            return NotImplemented
        with self._lock:
            route = self._core.route(method, query, headers, scheme=scheme)
        if isinstance(route, eio_http.Poll):
            return self._poll(route, headers.get('accept-encoding'))
        if isinstance(route, eio_http.Post):
            return self._post(route, read)
        if isinstance(route, eio_http.Refusal):
            return self._refused(route, method, headers)
        if isinstance(route, eio_http.Preflight):
            return route.response()
        return NotImplemented  # a handshake or a websocket: the caller checked it is not

    def _refused(self, refusal: eio_http.Refusal, method: str, headers: Any) -> Response:
        if refusal.closed is not None:
            what = 'polling POST over maxPayload' if refusal.status == 413 else 'overlapping polling POST'
            self.logger.warning('%s: %s, closing session', refusal.closed.sid, what)
        r = refusal.response()
        if method == 'POST':
            length = eio_http.content_length_of(headers.get('content-length'))
            if length:
                # the body is not read: the connection cannot carry another request
                r.close_connection = True
                if length > self.max_http_buffer_size:
                    r.status, r.body = 413, b'Payload Too Large'
                    r.headers = [*refusal.headers, ('Content-Type', 'text/plain')]
        return r

    def polling_lost(self, sid: str) -> None:
        """The answer to a long-polling GET could not be written: what it carried is lost."""
        socket = self.sockets.get(sid)
        if socket is not None:
            with self._lock:
                socket.state.poll_aborted()

    def _wsgi_answer(self, start_response: Callable, r: Response, environ: dict, keep_alive: bool = False) -> Any:
        """Answer through WSGI; ``keep_alive``: a polling request, whose connection may then be kept (``direct``)."""
        headers = r.headers
        if keep_alive and not r.close_connection:
            kept = self._kept_alive(start_response, environ, r.body)
            if kept is not None:
                start_response(r.status_line, [*headers, ('Content-Length', str(len(r.body)))])
                return kept
        if r.close_connection:
            headers = [*headers, ('Connection', 'close')]
            body = environ.get('wsgi.input')
            if body is not None and hasattr(body, 'chunked_input'):
                # pywsgi would read (and discard) the whole announced body
                # before closing: a peer that never sends it held the
                # connection and its greenlet
                body.content_length = body.position
                body.chunked_input = False
        start_response(r.status_line, headers)
        return [r.body]

    def _kept_alive(self, start_response: Callable, environ: dict, body: bytes) -> KeptAlive | None:
        """A result that serves the connection's next polling requests itself, when pywsgi calls this directly.

        Not under greensio's own server, which answers them without WSGI from the start.
        """
        if self._gevent is None or 'greensio.nodelay' in environ or environ.get('SERVER_PROTOCOL') != 'HTTP/1.1':
            return None
        from gevent.pywsgi import WSGIHandler

        handler = getattr(start_response, '__self__', None)
        if not isinstance(handler, WSGIHandler):
            return None
        route = PollingRoute.of(handler.application)
        if route is None or route.engine is not self:
            return None
        return KeptAlive(body, handler, route, environ.get('wsgi.url_scheme', 'http'))

    def _handshake(self, route: eio_http.Handshake, environ: dict) -> Response:
        sid = generate_sid()
        with self._lock:
            state, _ = self._core.open(sid, route.transport, _monotonic())
            socket = self.sockets[sid] = self._socket_class(self, state)
            self._arm(socket)
        refusal = self._connect(socket, environ)
        if refusal is not None:
            return refusal
        cookie = self._cookie(route.cookie)
        with self._lock:
            try:
                body = state.poll(_monotonic())
            except HttpRefused as exc:  # the connect handler closed it
                return exc.refusal.response()
        return route.response_for(state, body or '', cookie)

    def _connect(self, socket: Socket, environ: dict) -> Response | None:
        """Run the connect handler; the refusal to answer if it refused."""
        handler = self.handlers.get('connect')
        if handler is None:
            return None
        try:
            ret = handler(socket.sid, environ)
        except Exception:
            self.logger.exception('connect handler error')
            ret = False
        if ret is None or ret is True:
            return None
        self.logger.warning('Application rejected connection')
        with self._lock:
            self._core.discard(socket.state)
            self._forget(socket)
        return self._core.unauthorized(ret or None)

    def _poll(self, route: eio_http.Poll, accept_encoding: str | None) -> Response:
        state = route.session
        socket: Socket = state.context
        with self._lock:
            try:
                body = state.poll(_monotonic())
            except HttpRefused as exc:
                if exc.refusal.closed is not None:
                    self.logger.warning('%s: overlapping polling GET, closing session', state.sid)
                return exc.refusal.response()
            if body is None:
                event = socket._poll_event
                if event is None:
                    event = socket._poll_event = self.create_event()
                else:
                    event.clear()
        if body is None:
            socket._polling = True
            try:
                event.wait()
            finally:
                socket._polling = False
            with self._lock:
                body = state.finish_poll()
        r = route.response(body)
        if self.http_compression:
            r.body, encoding = eio_http.compress(r.body, accept_encoding, self.compression_methods,
                                                 self.compression_threshold)
            if encoding is not None:
                r.headers.append(('Content-Encoding', encoding))
        return r

    def _post(self, route: eio_http.Post, read: Callable[[int], bytes]) -> Response | None:
        length = route.content_length
        state = route.session
        try:
            body = read(route.max_body + 1 if length is None else min(length, route.max_body))
        except OSError:  # the body stalled past the server's timeout, or the peer left inside it
            with self._lock:
                state.post_aborted()
            return None
        with self._lock:
            try:
                state.receive_post(body, _monotonic(), post=route)
            except HttpRefused as exc:
                self.logger.warning('%s: malformed polling payload (%s), closing session', state.sid,
                                    exc.refusal.message)
                r = exc.refusal.response()
                if length is not None and len(body) < length:
                    r.close_connection = True  # the body was cut: the framing is lost
                return r
        return route.ok()

    # -- websockets (gevent) --------------------------------------------------------------------------

    def _websocket(self, route: eio_http.WebSocketRequest, environ: dict, start_response: Callable) -> list:
        from .websocket import TakenOverWebSocket, WebSocketTransport

        state = route.session
        original = environ.get('wsgi.websocket')
        if original is None:
            # no websocket-capable server in front (not gevent-websocket's handler)
            if state is not None:
                state.abort_probe()
            r = eio_http.refuse(eio_http.UNKNOWN_TRANSPORT, headers=route.headers).response()
            return self._wsgi_answer(start_response, r, environ)
        transport = WebSocketTransport.take_over(original, self.max_http_buffer_size)
        environ['wsgi.websocket'] = TakenOverWebSocket(original, transport)
        if state is None:
            socket = self._open_websocket(transport, environ)
            if socket is None:
                return []
        else:
            socket = state.context
            if not self._probe(socket, transport):
                self.logger.info('%s: websocket upgrade failed', state.sid)
                return []
            self.logger.info('%s: websocket transport ready', state.sid)
        self._read_websocket(socket, transport)
        return []

    def _open_websocket(self, transport: Any, environ: dict) -> Socket | None:
        sid = generate_sid()
        state, open_packet = self._core.open(sid, 'websocket', _monotonic())
        socket = self.sockets[sid] = Socket(self, state)
        waiting = socket.ws = _WaitingWebSocket()
        self._arm(socket)
        if self._connect(socket, environ) is not None:
            transport.close()
            return None
        transport.send(open_packet.frame())
        for frame in waiting.frames:
            transport.send(frame)
        socket.ws = transport
        if waiting.closed or socket.closed:  # closed by the connect handler
            self._closed_websocket(socket, transport)
            return None
        return socket

    def _probe(self, socket: Socket, transport: Any) -> bool:
        """The polling → websocket upgrade (``2probe`` / ``3probe`` / ``5``), with its timeouts."""
        state = socket.state
        socket.probe_ws = transport
        try:
            transport.settimeout(self._core.config.upgrade_timeout)
            while True:
                try:
                    msg = transport.receive()
                except Exception:  # noqa: BLE001 - a timeout, a socket or protocol error: the probe failed
                    msg = None
                if msg is None:
                    state.abort_probe()
                    transport.close()
                    return False
                result = state.receive_probe(msg, _monotonic())
                if result is None:
                    transport.close()
                    return False
                done, packets = result
                for packet in packets:
                    transport.send(packet.frame())
                if done:
                    socket.ws = transport
                    transport.settimeout(None)
                    return True
                transport.settimeout(max(state.probe_deadline - _monotonic(), 0.001))
        finally:
            socket.probe_ws = None

    def _read_websocket(self, socket: Socket, transport: Any) -> None:
        state = socket.state
        receive_ws = state.receive_ws
        receive = transport.receive
        on_message = self.message_handler
        sid = socket.sid
        error = False
        try:
            while True:
                try:
                    msg = receive()
                except wsproto.WebSocketError as exc:
                    self.logger.warning('%s: websocket protocol error: %s', sid, exc)
                    transport.close(exc.code)
                    error = True
                    return
                except OSError:  # a silent peer is closed by the heartbeat, as a ping timeout
                    return
                if msg is None:
                    return
                data = receive_ws(msg, _monotonic())
                if data is None:
                    if state.state == CLOSED:
                        if state.close_reason == Reason.TRANSPORT_ERROR:
                            self.logger.warning('%s: invalid Engine.IO packet, closing', sid)
                        return
                    if state.deadline < socket._armed:
                        self._arm(socket)
                    continue
                on_message(sid, data)
        finally:
            self._closed_websocket(socket, transport, error)

    def _closed_websocket(self, socket: Socket, transport: Any, error: bool = False) -> None:
        socket.state.transport_closed(error)
        transport.close()

    # -- the core's listener --------------------------------------------------------------------------

    def message(self, session: ServerSession, data: str | bytes) -> None:
        self.message_handler(session.sid, data)

    def wake_poll(self, session: ServerSession) -> None:
        event = session.context._poll_event
        if event is not None:
            event.set()

    def closed(self, session: ServerSession, reason: str) -> None:
        socket: Socket = session.context
        if socket is None or socket.closed:
            return
        self._forget(socket)
        # a websocket carrying an invalid Engine.IO packet ends as a protocol error
        code = wsproto.CLOSE_PROTOCOL_ERROR if reason == Reason.TRANSPORT_ERROR else wsproto.CLOSE_NORMAL
        for ws in (socket.ws, socket.probe_ws):
            if ws is not None:
                if session.close_packet_due and ws is socket.ws:
                    ws.send(CLOSE_PACKET.frame())
                ws.close(code)
        handler = self.handlers.get('disconnect')
        if handler is None:
            return
        args = (socket.sid, reason) if self._reason_arg else (socket.sid,)
        if self._in_timer or self._threaded:
            # the hub (a timer) must not run user code; in threading mode the caller holds the lock
            self.start_background_task(self._run_disconnect, handler, args)
        else:
            self._run_disconnect(handler, args)

    def _run_disconnect(self, handler: Callable, args: tuple) -> None:
        try:
            handler(*args)
        except Exception:
            self.logger.exception('disconnect handler error')

    def _forget(self, socket: Socket) -> None:
        socket.closed = True
        socket.connected = False
        if self.sockets.get(socket.sid) is socket:
            del self.sockets[socket.sid]
        if socket.state.deadline == _INF:
            # else the core keeps a closing long-polling session until a GET
            # takes its CLOSE, or until this timer
            cancel, socket._cancel_timer = socket._cancel_timer, None
            socket._armed = _INF
            if cancel is not None:
                cancel()

    def _close(self, socket: Socket, reason: str) -> None:
        with self._lock:
            self._core.close(socket.state, reason)

    def _dispatch_message(self, sid: str, data: Any) -> None:
        handler = self.handlers.get('message')
        if handler is None:
            return
        if self.async_handlers:
            self.start_background_task(self._run_message, handler, sid, data)
        else:
            self._run_message(handler, sid, data)

    def _run_message(self, handler: Callable, sid: str, data: Any) -> None:
        try:
            handler(sid, data)
        except Exception:
            self.logger.exception('message handler error')

    # -- timers ---------------------------------------------------------------------------------------

    def _arm(self, socket: Socket) -> None:
        """Have ``_on_deadline`` run at the session's deadline (a timer that fires early re-arms itself)."""
        deadline = socket.state.deadline
        if deadline >= socket._armed:
            return
        cancel = socket._cancel_timer
        if cancel is not None:
            cancel()
        socket._armed = deadline
        if deadline == _INF:
            socket._cancel_timer = None
            return
        delay = max(deadline - _monotonic(), 0.0)
        if self._loop is not None:
            timer = self._loop.timer(delay)
            timer.start(self._on_deadline, socket)
            socket._cancel_timer = timer.close
        else:
            import threading

            thread_timer = threading.Timer(delay, self._on_deadline, (socket,))
            thread_timer.daemon = True
            thread_timer.start()
            socket._cancel_timer = thread_timer.cancel

    def _on_deadline(self, socket: Socket) -> None:
        cancel, socket._cancel_timer = socket._cancel_timer, None
        socket._armed = _INF
        if self._loop is not None and cancel is not None:
            cancel()  # frees the libev watcher
        with self._lock:
            self._in_timer = True
            try:
                if socket.state.handle_deadline(_monotonic()) and socket.ws is not None:
                    socket.ws.send(PING_PACKET.frame())
            finally:
                self._in_timer = False
            self._arm(socket)


def _default_logger(verbose: bool) -> logging.Logger:
    """python-engineio's logger: applications configure it by this name."""
    logger = logging.getLogger('engineio.server')
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO if verbose else logging.ERROR)
        logger.addHandler(logging.StreamHandler())
    return logger


def _on_main_thread() -> bool:
    """Whether this is the process's main OS thread, even when gevent has patched ``threading``."""
    from gevent.monkey import get_original

    return get_original('_thread', 'get_ident')() == get_original('threading', 'main_thread')().ident


__all__ = ['Server', 'exceptions']
