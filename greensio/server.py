"""The green Socket.IO server (``socketio.Server``).

Shell ring.  Engine.IO messages go into a ``_core.session.ServerConnection``;
the events that come out run user handlers (events on reused greenlets,
connects inline, as python-socketio does) and whatever must be sent is
encoded by the packet class and written through ``EngineServer``.
"""

from __future__ import annotations

import builtins
import logging
from collections import deque
from typing import Any, Callable

from . import exceptions
from ._core import packet as pk
from ._core.errors import RemoteProtocolError
from ._core.events import AckReceived, ConnectRequested, DisconnectRequested, EventReceived
from ._core.handlers import HandlerRegistry, call_trimmed
from ._core.session import ServerConnection
from .engine import MESSAGE, EngineServer, OutPacket
from .manager import Manager
from .namespace import Namespace

try:  # the OS thread id, even when gevent has patched threading
    from gevent.monkey import get_original

    _thread_ident = get_original('_thread', 'get_ident')
except ImportError:  # pragma: no cover
    from _thread import get_ident as _thread_ident

default_logger = logging.getLogger('socketio.server')

#: Events a server handler registered for ``'*'`` never receives.
SERVER_RESERVED_EVENTS = frozenset({'connect', 'disconnect'})


def _setup_logger(logger: Any, default: logging.Logger) -> logging.Logger:
    """python-socketio's ``logger=`` convention: bool or a logger object."""
    if not isinstance(logger, bool):
        return logger
    if default.level == logging.NOTSET:
        default.setLevel(logging.INFO if logger else logging.ERROR)
        default.addHandler(logging.StreamHandler())
    return default


def _packet_class(serializer: Any) -> type[pk.Packet]:
    if serializer == 'default':
        return pk.Packet
    if serializer == 'msgpack':
        from .msgpack_packet import MsgPackPacket

        return MsgPackPacket
    if isinstance(serializer, type) and issubclass(serializer, pk.Packet):
        return serializer
    raise ValueError(f"serializer must be 'default', 'msgpack' or a Packet subclass, not {serializer!r}")


class _SessionContext:
    def __init__(self, server: Any, sid: str, namespace: str | None) -> None:
        self.server, self.sid, self.namespace = server, sid, namespace
        self.session: dict | None = None

    def __enter__(self) -> dict:
        self.session = self.server.get_session(self.sid, namespace=self.namespace)
        return self.session

    def __exit__(self, *exc: Any) -> None:
        self.server.save_session(self.sid, self.session, namespace=self.namespace)


class Server:
    """A Socket.IO server for WSGI applications, running on gevent.

    :param client_manager: keeps track of clients and rooms; default an
        in-memory :class:`Manager`, use :class:`KombuManager` or
        :class:`RedisManager` to run several worker processes.
    :param logger: ``True`` logs at INFO, ``False`` (default) only errors,
        or pass a :class:`logging.Logger`.
    :param serializer: ``'default'``, ``'msgpack'`` or a ``Packet`` subclass.
    :param json: an alternative JSON module (process-wide, as in python-socketio).
    :param async_handlers: run event handlers off the connection's reader
        (default ``True``), so a blocking handler never stops acks arriving.
        ``'ordered'`` does the same but runs one client's events one after
        the other, in arrival order, while different clients run concurrently.
    :param always_connect: send the connect acknowledgement before the
        connect handler runs (a refusal then becomes a disconnect).
    :param namespaces: namespaces accepted besides those with handlers;
        ``'*'`` accepts any.
    :param kwargs: Engine.IO options (``ping_interval``, ``ping_timeout``,
        ``max_http_buffer_size``, ``cors_allowed_origins``, ``transports``,
        ``engineio_logger``, ...); ``async_mode`` defaults to ``'gevent'``.
    """

    reason = EngineServer.reason
    reserved_events = ['connect', 'disconnect']

    class _NotHandled:
        pass

    not_handled = _NotHandled()

    def __init__(self, client_manager: Any = None, logger: Any = False, serializer: Any = 'default',
                 json: Any = None, async_handlers: bool = True, always_connect: bool = False,
                 namespaces: Any = None, **kwargs: Any) -> None:
        engineio_options = dict(kwargs)
        if 'engineio_logger' in engineio_options:
            engineio_options['logger'] = engineio_options.pop('engineio_logger')
        engineio_options.setdefault('async_mode', 'gevent')
        self.packet_class = _packet_class(serializer)
        if json is not None:
            self.packet_class.json = json
            engineio_options['json'] = json
        self.eio = EngineServer(**engineio_options)
        self.eio.on('connect', self._handle_eio_connect)
        self.eio.on('message', self._handle_eio_message)
        self.eio.on('disconnect', self._handle_eio_disconnect)
        self.eio.message_handler = self._handle_eio_message
        self.environ: dict[str, dict] = {}
        self._registry = HandlerRegistry(SERVER_RESERVED_EVENTS)
        self.handlers = self._registry.handlers
        self.namespace_handlers = self._registry.namespace_handlers
        self._connections: dict[str, ServerConnection] = {}
        self._ordered: dict[str, deque] = {}  # eio_sid -> events waiting their turn
        self.logger = _setup_logger(logger, default_logger)
        self.async_handlers = async_handlers
        self.always_connect = always_connect
        self.namespaces = namespaces or ['/']
        self.async_mode = self.eio.async_mode
        self._pool: Any = None
        if self.async_mode == 'gevent':
            from ._green import WorkerPool

            self._pool = WorkerPool()
        self._hub_thread = _thread_ident()
        self.manager = client_manager if client_manager is not None else Manager()
        self.manager.set_server(self)
        self.manager_initialized = False

    def is_asyncio_based(self) -> bool:
        return False

    # -- handler registration ---------------------------------------------------

    def on(self, event: str, handler: Callable | None = None, namespace: str | None = None) -> Any:
        """Register a handler for ``event`` (as a decorator or with ``handler``).

        ``event='*'`` catches every event without its own handler (it gets
        the event name first); ``namespace='*'`` catches every namespace.
        """
        namespace = namespace or '/'

        def set_handler(handler: Callable) -> Callable:
            self.handlers.setdefault(namespace, {})[event] = handler
            return handler

        if handler is None:
            return set_handler
        set_handler(handler)
        return None

    def event(self, *args: Any, **kwargs: Any) -> Any:
        """Register a handler named after the decorated function."""
        if len(args) == 1 and not kwargs and callable(args[0]):
            return self.on(args[0].__name__)(args[0])

        def set_handler(handler: Callable) -> Callable:
            return self.on(handler.__name__, *args, **kwargs)(handler)

        return set_handler

    def register_namespace(self, namespace_handler: Any) -> None:
        """Register a class-based :class:`Namespace` instance."""
        if not isinstance(namespace_handler, Namespace):
            if hasattr(namespace_handler, 'trigger_event') and hasattr(namespace_handler, 'namespace'):
                raise ValueError('Not a valid namespace class for this server')
            raise ValueError('Not a namespace instance')
        if namespace_handler.is_asyncio_based() != self.is_asyncio_based():
            raise ValueError('Not a valid namespace class for this server')
        namespace_handler._set_server(self)
        self.namespace_handlers[namespace_handler.namespace] = namespace_handler

    # -- emitting ---------------------------------------------------------------

    def emit(self, event: str, data: Any = None, to: Any = None, room: Any = None, skip_sid: Any = None,
             namespace: str | None = None, callback: Callable | None = None, ignore_queue: bool = False) -> None:
        """Emit an event to one client, a room, a list of rooms/sids, or everyone.

        ``data`` may be a tuple for several arguments; bytes anywhere inside
        travel as binary attachments.  ``callback`` receives the client's ack.
        """
        if self._off_hub():
            return self._to_hub(self.emit, event, data, to, room, skip_sid, namespace, callback, ignore_queue)
        namespace = namespace or '/'
        room = to or room
        if self.logger.isEnabledFor(logging.INFO):
            self.logger.info('emitting event "%s" to %s [%s]', event, room or 'all', namespace)
        self.manager.emit(event, data, namespace, room=room, skip_sid=skip_sid, callback=callback,
                          ignore_queue=ignore_queue)

    def send(self, data: Any, to: Any = None, room: Any = None, skip_sid: Any = None,
             namespace: str | None = None, callback: Callable | None = None, ignore_queue: bool = False) -> None:
        """Send a ``message`` event."""
        self.emit('message', data=data, to=to, room=room, skip_sid=skip_sid, namespace=namespace,
                  callback=callback, ignore_queue=ignore_queue)

    def call(self, event: str, data: Any = None, to: str | None = None, sid: str | None = None,
             namespace: str | None = None, timeout: float | None = 60, ignore_queue: bool = False) -> Any:
        """Emit to one client and block the calling greenlet until it acks.

        Returns ``None``, the single value, or a tuple of values the client
        acked with; raises :class:`exceptions.TimeoutError` after ``timeout``
        seconds (``None`` waits forever).  Other greenlets keep running.
        """
        if to is None and sid is None:
            raise ValueError('Cannot use call() to broadcast.')
        if not self.async_handlers:
            raise RuntimeError('Cannot use call() when async_handlers is False.')
        done = self.eio.create_event()
        result: list[tuple] = []

        def callback(*args: Any) -> None:
            result.append(args)
            done.set()

        self.emit(event, data=data, room=to or sid, namespace=namespace, callback=callback,
                  ignore_queue=ignore_queue)
        if not done.wait(timeout=timeout):
            raise exceptions.TimeoutError()
        args = result[0]
        return args[0] if len(args) == 1 else (args or None)

    # -- rooms and sessions -------------------------------------------------------

    def enter_room(self, sid: str, room: Any, namespace: str | None = None) -> None:
        """Put a client in a room."""
        self.manager.enter_room(sid, namespace or '/', room)

    def leave_room(self, sid: str, room: Any, namespace: str | None = None) -> None:
        """Take a client out of a room."""
        self.manager.leave_room(sid, namespace or '/', room)

    def close_room(self, room: Any, namespace: str | None = None) -> None:
        """Take every client out of a room."""
        self.manager.close_room(room, namespace or '/')

    def rooms(self, sid: str, namespace: str | None = None) -> list:
        """Rooms the client is in, including the room named by its sid."""
        return self.manager.get_rooms(sid, namespace or '/')

    def _connection_of(self, sid: str, namespace: str | None) -> ServerConnection:
        eio_sid = self.manager.eio_sid_from_sid(sid, namespace or '/')
        conn = self._connections.get(eio_sid) if eio_sid else None
        if conn is None:
            raise KeyError('Session not found')
        return conn

    def get_session(self, sid: str, namespace: str | None = None) -> dict:
        """The user session of a client in a namespace (a dict)."""
        return self._connection_of(sid, namespace).sessions.setdefault(namespace or '/', {})

    def save_session(self, sid: str, session: dict, namespace: str | None = None) -> None:
        """Replace the user session of a client."""
        self._connection_of(sid, namespace).sessions[namespace or '/'] = session

    def session(self, sid: str, namespace: str | None = None) -> _SessionContext:
        """``with sio.session(sid) as session:`` reads and saves the session."""
        return _SessionContext(self, sid, namespace)

    def disconnect(self, sid: str, namespace: str | None = None, ignore_queue: bool = False) -> None:
        """Disconnect a client from a namespace (its disconnect handler runs)."""
        namespace = namespace or '/'
        if ignore_queue:
            act = self.manager.is_connected(sid, namespace)
        else:
            act = self.manager.can_disconnect(sid, namespace)
        if not act:
            return
        self.logger.info('Disconnecting %s [%s]', sid, namespace)
        eio_sid = self.manager.pre_disconnect(sid, namespace)
        conn = self._connections.get(eio_sid) if eio_sid else None
        if conn is not None:
            conn.forget_pending()
            self._send_packet(eio_sid, self.packet_class(pk.DISCONNECT, namespace=namespace))
        self._finish_disconnect(conn, sid, namespace, self.reason.SERVER_DISCONNECT)

    def transport(self, sid: str, namespace: str | None = None) -> str:
        """``'polling'`` or ``'websocket'``."""
        eio_sid = self.manager.eio_sid_from_sid(sid, namespace or '/')
        return self.eio.transport(eio_sid)

    def get_environ(self, sid: str, namespace: str | None = None) -> dict | None:
        """The WSGI environ of the client's connection request."""
        eio_sid = self.manager.eio_sid_from_sid(sid, namespace or '/')
        return self.environ.get(eio_sid)

    # -- runtime ------------------------------------------------------------------

    def handle_request(self, environ: dict, start_response: Callable) -> Any:
        """The WSGI entry point."""
        return self.eio.handle_request(environ, start_response)

    def start_background_task(self, target: Callable, *args: Any, **kwargs: Any) -> Any:
        """Start a greenlet (an object with ``join()``)."""
        return self.eio.start_background_task(target, *args, **kwargs)

    def sleep(self, seconds: float = 0) -> None:
        """Sleep without blocking other greenlets."""
        return self.eio.sleep(seconds)

    def shutdown(self) -> None:
        """Stop background tasks; call before stopping the web server."""
        self.logger.info('Socket.IO is shutting down')
        self.eio.shutdown()

    def _off_hub(self) -> bool:
        return self._pool is not None and _thread_ident() != self._hub_thread

    def _to_hub(self, fn: Callable, *args: Any) -> None:
        """Run ``fn`` in the gevent hub's thread (called from a native thread)."""
        self._hub.loop.run_callback_threadsafe(lambda: self._pool.spawn(fn, *args))

    @property
    def _hub(self) -> Any:
        hub = getattr(self, '_hub_ref', None)
        if hub is None:
            from gevent import get_hub

            hub = self._hub_ref = get_hub()
        return hub

    # -- sending --------------------------------------------------------------------

    def _encode(self, packet_type: int, namespace: str, data: Any, ack_id: int | None = None) -> list[OutPacket]:
        """Encode once; the Engine.IO packets can go to any number of clients."""
        return self._eio_packets(self.packet_class(packet_type, data, namespace, ack_id))

    @staticmethod
    def _eio_packets(pkt: pk.Packet) -> list[OutPacket]:
        encoded = pkt.encode()
        if isinstance(encoded, list):
            return [OutPacket(MESSAGE, part) for part in encoded]
        return [OutPacket(MESSAGE, encoded)]

    def _send_packet(self, eio_sid: str, pkt: pk.Packet) -> None:
        for eio_pkt in self._eio_packets(pkt):
            self._send_eio_packet(eio_sid, eio_pkt)

    def _send_eio_packet(self, eio_sid: str, eio_pkt: OutPacket) -> None:
        socket = self.eio.sockets.get(eio_sid)
        if socket is not None and not socket.closed:
            socket.send(eio_pkt)

    # -- inbound ----------------------------------------------------------------------

    def _handle_eio_connect(self, eio_sid: str, environ: dict) -> None:
        if not self.manager_initialized:
            self.manager_initialized = True
            self._hub  # noqa: B018 - remember the hub of the serving thread
            self._hub_thread = _thread_ident()
            self.manager.initialize()
        self.environ[eio_sid] = environ
        self._connections[eio_sid] = ServerConnection(eio_sid, self.packet_class)

    def _handle_eio_message(self, eio_sid: str, data: str | bytes) -> None:
        conn = self._connections.get(eio_sid)
        if conn is None:
            return
        try:
            event = conn.receive(data)
        except RemoteProtocolError as exc:
            self.logger.warning('%s: protocol violation, closing the connection: %s', eio_sid, exc)
            self.eio.disconnect(eio_sid)
            return
        if event is None:
            return
        kind = type(event)
        if kind is EventReceived:
            if self.async_handlers == 'ordered':
                backlog = self._ordered.setdefault(eio_sid, deque())
                backlog.append(event)
                if len(backlog) == 1:
                    self._spawn(self._drain_in_order, eio_sid, backlog)
            elif self.async_handlers:
                self._spawn(self._handle_event, eio_sid, event)
            else:
                self._handle_event(eio_sid, event)
        elif kind is AckReceived:
            self._handle_ack(event)
        elif kind is ConnectRequested:
            self._handle_connect(conn, event.namespace, event.auth)
        elif kind is DisconnectRequested:
            self._handle_disconnect(conn, event.namespace, self.reason.CLIENT_DISCONNECT)
        else:
            self.logger.warning('%s: %s [%s], packet ignored', eio_sid, event.reason, event.namespace)

    def _namespace_allowed(self, namespace: str) -> bool:
        return (namespace in self.handlers or namespace in self.namespace_handlers
                or self.namespaces == '*' or namespace in self.namespaces)

    def _handle_connect(self, conn: ServerConnection, namespace: str, auth: Any) -> None:
        eio_sid = conn.eio_sid
        if not self._namespace_allowed(namespace):
            self.logger.warning('%s: unknown namespace %s refused', eio_sid, namespace)
            self._send_packet(eio_sid, self.packet_class(
                pk.CONNECT_ERROR, data={'message': 'Invalid namespace'}, namespace=namespace))
            return
        sid = self.manager.connect(eio_sid, namespace)
        if sid is None:
            self._send_packet(eio_sid, self.packet_class(
                pk.CONNECT_ERROR, data={'message': 'Unable to connect'}, namespace=namespace))
            return
        conn.namespaces[namespace] = sid
        if self.always_connect:
            self._send_packet(eio_sid, self.packet_class(pk.CONNECT, {'sid': sid}, namespace=namespace))
        refusal: Any = None
        try:
            accepted = self._trigger_event('connect', namespace, sid, self.environ[eio_sid], auth or None)
        except exceptions.ConnectionRefusedError as exc:
            refusal, accepted = exc.error_args, False
        except builtins.ConnectionRefusedError:
            refusal, accepted = {'message': 'Connection refused by server'}, False
        except Exception:
            # python-socketio left the client half-connected here; refuse instead
            self.logger.exception('connect handler error [%s]', namespace)
            accepted = False
        if accepted is False:
            refusal = refusal or {'message': 'Connection rejected by server'}
            if self.always_connect:
                # a DISCONNECT has no payload: python-socketio sent the refusal
                # in it, socket.io-parser rejects that and the JS client drops
                # the whole connection ('parse error'), other namespaces too
                pkt = self.packet_class(pk.DISCONNECT, namespace=namespace)
            else:
                pkt = self.packet_class(pk.CONNECT_ERROR, data=refusal, namespace=namespace)
            self._send_packet(eio_sid, pkt)
            self.manager.disconnect(sid, namespace, ignore_queue=True)
            conn.namespaces.pop(namespace, None)
        elif not self.always_connect:
            self._send_packet(eio_sid, self.packet_class(pk.CONNECT, {'sid': sid}, namespace=namespace))

    def _handle_event(self, eio_sid: str, event: EventReceived) -> None:
        namespace = event.namespace
        try:
            result = self._trigger_event(event.event, namespace, event.sid, *event.args)
        except Exception:
            self.logger.exception('event handler error: "%s" [%s]', event.event, namespace)
            return
        if result is self.not_handled or event.ack_id is None:
            return
        if isinstance(result, tuple):
            data = list(result)
        else:
            data = [] if result is None else [result]
        self._send_packet(eio_sid, self.packet_class(pk.ACK, data, namespace, event.ack_id))

    def _spawn(self, fn: Callable, *args: Any) -> None:
        if self._pool is not None:
            self._pool.spawn(fn, *args)
        else:
            self.start_background_task(fn, *args)

    def _drain_in_order(self, eio_sid: str, backlog: deque) -> None:
        while backlog:
            self._handle_event(eio_sid, backlog[0])
            backlog.popleft()
        if self._ordered.get(eio_sid) is backlog:
            del self._ordered[eio_sid]

    def _handle_ack(self, event: AckReceived) -> None:
        try:
            self.manager.trigger_callback(event.sid, event.ack_id, event.args)
        except Exception:
            self.logger.exception('ack callback error [%s]', event.namespace)

    def _handle_disconnect(self, conn: ServerConnection, namespace: str, reason: str) -> None:
        sid = conn.namespaces.get(namespace)
        if sid is None or not self.manager.is_connected(sid, namespace):
            return
        self.manager.pre_disconnect(sid, namespace)
        self._finish_disconnect(conn, sid, namespace, reason)

    def _finish_disconnect(self, conn: ServerConnection | None, sid: str, namespace: str, reason: str) -> None:
        try:
            self._trigger_event('disconnect', namespace, sid, reason)
        except Exception:
            self.logger.exception('disconnect handler error [%s]', namespace)
        self.manager.disconnect(sid, namespace, ignore_queue=True)
        if conn is not None:
            conn.namespaces.pop(namespace, None)

    def _handle_eio_disconnect(self, eio_sid: str, reason: str | None = None) -> None:
        conn = self._connections.get(eio_sid)
        if conn is not None:
            conn.forget_pending()
            for namespace in list(conn.namespaces):
                self._handle_disconnect(conn, namespace, reason or self.reason.CLIENT_DISCONNECT)
            self._connections.pop(eio_sid, None)
        self.environ.pop(eio_sid, None)

    def _trigger_event(self, event: str, namespace: str, *args: Any) -> Any:
        found = self._registry.resolve(namespace, event)
        if found is None:
            return self.not_handled
        handler, lead = found
        if event in SERVER_RESERVED_EVENTS:
            return call_trimmed(handler, lead + args, 1)
        return handler(*lead, *args)
