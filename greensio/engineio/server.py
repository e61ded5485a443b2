"""The green Engine.IO server: python-engineio's ``Server`` on greensio's sans-IO core.

Shell ring (gevent; also Python threads for ``async_mode='threading'``,
long-polling only, as Flask's ``flask run`` serves).  The core
(``_core.eio_server``) decides everything about the protocol; the server
owns the I/O around it, in parts:

- ``wsgi``: HTTP requests, as WSGI calls or, from greensio's own server, as
  already parsed polling requests (``direct``); the handshake; a
  long-polling GET with nothing to send waits on an event the core's
  ``wake_poll`` sets;
- ``websocket_sessions``: a websocket taken over after its upgrade and read
  by the request's greenlet; writes go straight to the socket from the
  emitting greenlet;
- ``sessions``: the application's handlers, and one timer per session,
  armed at the core's ``deadline``;
- ``socket``: a session as the application sees it (``Server.sockets``);
- this module: python-engineio's public API, and the async-mode helpers.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from .._core.eio_codec import MESSAGE, OutPacket
from .._core.eio_server import EngineCore, Reason
from .._core.safejson import dumps as json_dumps
from . import exceptions
from .base_server import BaseServer
from .sessions import SessionLife
from .socket import Socket, _ThreadedSocket
from .websocket_sessions import WebSocketSessions
from .wsgi import HttpRequests


class Server(HttpRequests, WebSocketSessions, SessionLife, BaseServer):
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
        self._idle_readers: list = []  # reader greenlets of detached websockets, parked (websocket_sessions)
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

def _default_logger(verbose: bool) -> logging.Logger:
    """python-engineio's logger: applications configure it by this name."""
    logger = logging.getLogger('engineio.server')
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO if verbose else logging.ERROR)
        logger.addHandler(logging.StreamHandler())
    return logger


__all__ = ['Server', 'exceptions']

