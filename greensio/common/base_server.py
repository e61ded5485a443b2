"""What the green ``Server`` and the asyncio ``AsyncServer`` share.

Shell ring.  Everything here is written once for both twins: options,
handler registration and resolution, the namespace allow-list, payload
shaping, connect refusals, packet encoding, the public docstrings, and the
namespace connect/disconnect flows.  A flow is a generator that yields the
steps that are coroutines on the asyncio side (user handlers, manager calls)
as ``(callable, *args)``; ``Server._run_flow`` calls each step,
``AsyncServer._run_flow`` also awaits it (httpx's ``Auth.auth_flow``
pattern).  The per-event hot path stays in each shell, a dozen lines each.
"""

from __future__ import annotations

import builtins
import functools
import logging
import time
from collections.abc import Callable, Generator
from typing import Any, ClassVar

from .. import exceptions
from .._core import packet as pk
from .._core.eio_codec import MESSAGE, OutPacket
from .._core.eio_server import Reason
from .._core.handlers import HandlerRegistry, event_decorator
from .._core.payload import to_args
from .._core.pubsub import RECOVER_SESSION
from .._core.recovery import (
    CLUSTER_RECOVERY_TIMEOUT,
    MAX_TOKEN_LENGTH,
    RECOVERABLE_REASONS,
    Handover,
    RecoveryLog,
)
from .._core.session import ServerConnection
from .base_namespace import BaseServerNamespace
from .options import packet_class as _packet_class
from .options import setup_logger as _setup_logger
from .twins import SharedDocs

default_logger = logging.getLogger('socketio.server')

#: Events a server handler registered for ``'*'`` never receives.
SERVER_RESERVED_EVENTS = frozenset({'connect', 'disconnect'})

#: A step of a flow: a callable and its arguments; its result (awaited on
#: the asyncio side) is sent back into the flow, its exception thrown in.
Step = tuple[Any, ...]
Flow = Generator[Step, Any, None]


def utf8_size(text: str) -> int:
    """Bytes of ``text`` in UTF-8 (lone surrogates, which JSON can carry, as three each)."""
    return len(text.encode('utf-8', 'surrogatepass'))


#: ``connection_state_recovery`` options and their defaults.
RECOVERY_DEFAULTS = {'max_disconnection_duration': 120.0, 'skip_handlers': True}


def _recovery_options(options: Any) -> dict[str, Any] | None:
    if options is None or options is False:
        return None
    if options is True:
        return dict(RECOVERY_DEFAULTS)
    if not isinstance(options, dict):
        raise TypeError(f'connection_state_recovery must be a dict of options, not {options!r}')
    unknown = set(options) - set(RECOVERY_DEFAULTS)
    if unknown:
        raise ValueError(f'unknown connection_state_recovery options: {", ".join(sorted(unknown))} '
                         f'(known: {", ".join(RECOVERY_DEFAULTS)})')
    return {**RECOVERY_DEFAULTS, **options}


class _SessionContext:
    """``with sio.session(sid)`` on the green server, ``async with`` on the asyncio one."""

    def __init__(self, server: Any, sid: str, namespace: str | None) -> None:
        self.server, self.sid, self.namespace = server, sid, namespace
        self.session: dict | None = None

    def __enter__(self) -> dict:
        self.session = self.server.get_session(self.sid, namespace=self.namespace)
        return self.session

    def __exit__(self, *exc: object) -> None:
        self.server.save_session(self.sid, self.session, namespace=self.namespace)

    async def __aenter__(self) -> dict:
        self.session = await self.server.get_session(self.sid, namespace=self.namespace)
        return self.session

    async def __aexit__(self, *exc: object) -> None:
        await self.server.save_session(self.sid, self.session, namespace=self.namespace)


class BaseServer(SharedDocs):
    """The parts of a Socket.IO server that do not depend on gevent or asyncio.

    Not used directly: see :class:`greensio.Server` and
    :class:`greensio.AsyncServer`.
    """

    reason = Reason
    #: The Engine.IO packet class of this twin's engine (one packet per
    #: broadcast, encoded once; both engines take the core's).
    eio_packet_class: ClassVar[Any] = OutPacket
    reserved_events: ClassVar[list[str]] = ['connect', 'disconnect']

    class _NotHandled:
        pass

    not_handled = _NotHandled()
    _admin: Any = None  # the Admin UI instrumentation, once instrument() was called
    # A greensio.metrics.Metrics counting this server's traffic, or None: then
    # each counting point costs one attribute check and nothing else.
    _metrics: Any = None

    def __init__(self, client_manager: Any = None, logger: Any = False, serializer: Any = 'default',
                 json: Any = None, async_handlers: Any = True, always_connect: bool = False,
                 namespaces: Any = None, **kwargs: Any) -> None:
        engineio_options = dict(kwargs)
        recovery = _recovery_options(engineio_options.pop('connection_state_recovery', None))
        if 'engineio_logger' in engineio_options:
            engineio_options['logger'] = engineio_options.pop('engineio_logger')
        self.packet_class = _packet_class(serializer)
        if json is not None:
            self.packet_class.json = json
            engineio_options['json'] = json
        self.eio = self._create_engine(engineio_options)
        self.eio.on('connect', self._handle_eio_connect)
        self.eio.on('message', self._handle_eio_message)
        self.eio.on('disconnect', self._handle_eio_disconnect)
        self.eio.message_handler = self._handle_eio_message
        self.environ: dict[str, dict] = {}
        self._registry = HandlerRegistry(SERVER_RESERVED_EVENTS)
        self.handlers = self._registry.handlers
        self.namespace_handlers = self._registry.namespace_handlers
        self._connections: dict[str, ServerConnection] = {}
        self.logger = _setup_logger(logger, default_logger)
        self.async_handlers = async_handlers
        self.always_connect = always_connect
        self.namespaces = namespaces or ['/']
        self.async_mode = self.eio.async_mode
        self.manager = client_manager if client_manager is not None else self._default_manager()
        self.manager_initialized = False
        self._server_handlers: dict[str, Callable] = {}  # on_server()
        #: sid -> (auth, connect time), replaced by the handshake's JSON form once fetch_sockets described it
        self._handshakes: dict[str, Any] = {}
        self._recovery: RecoveryLog | None = None
        self._live_pids: dict[str, str] = {}  # pid -> eio_sid of each connected recoverable session
        self._skip_handlers_on_recovery = False
        if recovery is not None:
            heartbeat = self.eio.ping_interval + self.eio.ping_timeout
            # on a cluster each worker's offsets carry a tag of their own, so that a
            # worker taking over a session tells the holder's offsets from its own
            tag = f'{self.manager._worker_id[:8]}.' if getattr(self.manager, '_cluster', False) else ''
            self._recovery = RecoveryLog(recovery['max_disconnection_duration'], heartbeat, tag=tag)
            self._skip_handlers_on_recovery = bool(recovery['skip_handlers'])

    def _create_engine(self, options: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _default_manager(self) -> Any:
        raise NotImplementedError

    # -- handler registration (shared) ----------------------------------------------

    def on(self, event: str, handler: Callable | None = None, namespace: str | None = None) -> Any:
        """Register a handler for ``event`` (as a decorator or with ``handler``).

        ``event='*'`` catches every event without its own handler (it gets
        the event name first); ``namespace='*'`` catches every namespace.
        On the asyncio server a handler may be a plain function or a
        coroutine function.
        """
        return self._registry.on(event, handler, namespace)

    def event(self, *args: Any, **kwargs: Any) -> Any:
        """Register a handler named after the decorated function."""
        return event_decorator(self.on, args, kwargs)

    def register_namespace(self, namespace_handler: Any) -> None:
        """Register a class-based namespace instance (``Namespace`` or ``AsyncNamespace``)."""
        if not isinstance(namespace_handler, BaseServerNamespace):
            if hasattr(namespace_handler, 'trigger_event') and hasattr(namespace_handler, 'namespace'):
                raise ValueError('Not a valid namespace class for this server')
            raise ValueError('Not a namespace instance')  # noqa: TRY004 - python-socketio's exception
        if namespace_handler.is_asyncio_based() != self.is_asyncio_based():
            raise ValueError('Not a valid namespace class for this server')
        namespace_handler._set_server(self)
        self.namespace_handlers[namespace_handler.namespace] = namespace_handler

    def is_asyncio_based(self) -> bool:
        """``True`` for :class:`AsyncServer`."""
        return self.eio.is_asyncio_based()

    # -- the public API: documented here, implemented by each twin --------------------

    def emit(self, event: str, data: Any = None, to: Any = None, room: Any = None, skip_sid: Any = None,
             namespace: str | None = None, callback: Callable | None = None, ignore_queue: bool = False) -> Any:
        """Emit an event to one client, a room, a list of rooms/sids, or everyone.

        ``data`` may be a tuple for several arguments; bytes anywhere inside
        travel as binary attachments.  ``callback`` receives the client's ack
        (on the asyncio server it may be a coroutine function).
        """
        raise NotImplementedError

    def send(self, data: Any, to: Any = None, room: Any = None, skip_sid: Any = None,
             namespace: str | None = None, callback: Callable | None = None, ignore_queue: bool = False) -> Any:
        """Send a ``message`` event."""
        raise NotImplementedError

    def call(self, event: str, data: Any = None, to: str | None = None, sid: str | None = None,
             namespace: str | None = None, timeout: float | None = 60, ignore_queue: bool = False) -> Any:
        """Emit to one client and wait for its ack.

        Returns ``None``, the single value, or a tuple of values the client
        acked with; raises :class:`exceptions.TimeoutError` after ``timeout``
        seconds (``None`` waits forever).  Only the caller waits: the green
        server blocks the calling greenlet, the asyncio server awaits.
        """
        raise NotImplementedError

    def enter_room(self, sid: str, room: Any, namespace: str | None = None) -> Any:
        """Put a client in a room."""
        raise NotImplementedError

    # -- the cluster as one server ----------------------------------------------------

    #: Session keys a client's server shares in ``fetch_sockets()`` answers
    #: (``RemoteSocket.data``); values must be JSON.  Nothing is shared by default.
    shared_session_keys: tuple[str, ...] = ()

    def fetch_sockets(self, to: Any = None, namespace: str | None = None, skip: Any = None,
                      timeout: float = 5) -> Any:
        """The clients in ``to`` (a room, a sid, a list of them, or everyone) on every worker.

        Returns :class:`~greensio.cluster.RemoteSocket` objects (on the asyncio
        server :class:`~greensio.cluster.AsyncRemoteSocket`): ``sid``,
        ``namespace``, ``rooms``, ``handshake`` and the ``data`` of the session
        keys listed in ``shared_session_keys``, with ``emit``, ``call``,
        ``enter_room``, ``leave_room`` and ``disconnect``.  ``skip`` excludes
        sids and the members of rooms.  Raises
        :class:`~greensio.cluster.BroadcastTimeoutError` (its ``answers`` are
        the sockets found) when a live worker did not answer in ``timeout``
        seconds; a worker that died is not waited for.
        """
        raise NotImplementedError

    def sockets_join(self, room: Any, to: Any = None, namespace: str | None = None, skip: Any = None) -> Any:
        """Put the clients in ``to`` (not in ``skip``) on every worker in ``room`` (a name or a list)."""
        raise NotImplementedError

    def sockets_leave(self, room: Any, to: Any = None, namespace: str | None = None, skip: Any = None) -> Any:
        """Take the clients in ``to`` (not in ``skip``) on every worker out of ``room`` (a name or a list)."""
        raise NotImplementedError

    def disconnect_sockets(self, to: Any = None, namespace: str | None = None, skip: Any = None,
                           close: bool = False) -> Any:
        """Disconnect the clients in ``to`` (not in ``skip``) on every worker from the namespace.

        ``close=True`` closes their whole connection (every namespace).
        """
        raise NotImplementedError

    def server_side_emit(self, event: str, data: Any = None, callback: Callable | None = None,
                         timeout: float | None = None) -> Any:
        """Run the :meth:`on_server` handlers for ``event`` on every other worker.

        Each handler receives ``data`` (a tuple for several arguments).  With
        ``callback`` (``timeout`` is then required) the handlers' return
        values are collected: ``callback(answers, missing)`` runs once every
        worker answered, or at the timeout with ``missing`` the number of
        workers that did not.
        """
        raise NotImplementedError

    def server_side_call(self, event: str, data: Any = None, timeout: float = 5) -> Any:
        """:meth:`server_side_emit` and wait: the list of the other workers' answers.

        Raises :class:`~greensio.cluster.BroadcastTimeoutError` when some did
        not answer in ``timeout`` seconds.
        """
        raise NotImplementedError

    def on_server(self, event: str, handler: Callable | None = None) -> Any:
        """Register a handler for server-side emits from other workers (a decorator, or with ``handler``).

        ``@sio.on_server('reload')`` then ``def reload(data): ...``; its
        return value is the worker's answer (JSON).  On the asyncio server it
        may be a coroutine function.  It runs on its own task, never on the
        queue's listener.
        """
        def register(fn: Callable) -> Callable:
            self._server_handlers[event] = fn
            return fn

        return register(handler) if handler is not None else register

    def leave_room(self, sid: str, room: Any, namespace: str | None = None) -> Any:
        """Take a client out of a room."""
        raise NotImplementedError

    def close_room(self, room: Any, namespace: str | None = None) -> Any:
        """Take every client out of a room."""
        raise NotImplementedError

    def get_session(self, sid: str, namespace: str | None = None) -> Any:
        """The user session of a client in a namespace (a dict)."""
        raise NotImplementedError

    def save_session(self, sid: str, session: dict, namespace: str | None = None) -> Any:
        """Replace the user session of a client."""
        raise NotImplementedError

    def session(self, sid: str, namespace: str | None = None) -> _SessionContext:
        """``with sio.session(sid) as session:`` reads and saves the session.

        On the asyncio server: ``async with sio.session(sid) as session:``.
        """
        return _SessionContext(self, sid, namespace)

    def disconnect(self, sid: str, namespace: str | None = None, ignore_queue: bool = False) -> Any:
        """Disconnect a client from a namespace (its disconnect handler runs)."""
        raise NotImplementedError

    def handle_request(self, *args: Any, **kwargs: Any) -> Any:
        """The web server's entry point (WSGI on the green server, ASGI on the asyncio one)."""
        raise NotImplementedError

    def start_background_task(self, target: Callable, *args: Any, **kwargs: Any) -> Any:
        """Start ``target(*args, **kwargs)`` concurrently.

        A greenlet (with ``join()``) on the green server; on the asyncio
        server ``target`` must be a coroutine function and an
        ``asyncio.Task`` is returned.
        """
        return self.eio.start_background_task(target, *args, **kwargs)

    def sleep(self, seconds: float = 0) -> Any:
        """Sleep without blocking other greenlets (or tasks)."""
        raise NotImplementedError

    def shutdown(self) -> Any:
        """Stop background tasks; call before stopping the web server."""
        raise NotImplementedError

    def instrument(self, auth: Any = None, mode: str = 'development', read_only: bool = False,
                   server_id: str | None = None, namespace: str = '/admin', server_stats_interval: float = 2) -> Any:
        """Report to the `Socket.IO Admin UI <https://socket.io/docs/v4/admin-ui/>`_ on ``namespace``.

        :param auth: what an Admin UI must send to connect: a dict such as
            ``{'username': 'admin', 'password': '...'}`` (the password may be
            a bcrypt hash, checked with the ``bcrypt`` package), a list of
            such dicts, a callable that receives the client's auth dict and
            returns whether it may connect (a coroutine function on the
            asyncio server too), or ``False`` to disable authentication
            (a warning is logged).  Required.
        :param mode: ``'development'`` (default) reports every socket,
            room change and event as it happens; ``'production'`` only
            the periodic server statistics.
        :param read_only: refuse the Admin UI's actions (join, leave,
            disconnect, emit).
        :param server_id: this server's name in the Admin UI; default the
            message queue's worker id, or the host name.
        :param namespace: the namespace the Admin UI connects to.
        :param server_stats_interval: seconds between ``server_stats`` reports.

        Returns the instrumentation object; its ``shutdown()`` (also called
        by the server's) stops the statistics task.
        """
        raise NotImplementedError

    def rooms(self, sid: str, namespace: str | None = None) -> list:
        """Rooms the client is in, including the room named by its sid."""
        return self.manager.get_rooms(sid, namespace or '/')

    def recovered(self, sid: str, namespace: str | None = None) -> bool:
        """Whether the client's connection restored an earlier session (connection state recovery).

        ``True`` from the moment the session is restored, so a connect
        handler that runs on recovery (``skip_handlers=False``) can tell.
        """
        return (namespace or '/') in self._connection_of(sid, namespace).recovered

    def transport(self, sid: str, namespace: str | None = None) -> str:
        """``'polling'`` or ``'websocket'``."""
        eio_sid = self.manager.eio_sid_from_sid(sid, namespace or '/')
        return self.eio.transport(eio_sid)

    def get_environ(self, sid: str, namespace: str | None = None) -> dict | None:
        """The WSGI environ of the client's connection request (Engine.IO's translation under ASGI)."""
        eio_sid = self.manager.eio_sid_from_sid(sid, namespace or '/')
        return self.environ.get(eio_sid)

    # -- shared helpers ---------------------------------------------------------------

    def _log_emit(self, event: str, room: Any, namespace: str) -> None:
        if self.logger.isEnabledFor(logging.INFO):
            self.logger.info('emitting event "%s" to %s [%s]', event, room or 'all', namespace)

    def _broadcast_acks(self, room: Any, callback: Callable | None, timeout: float | None) -> bool:
        """Whether an emit collects every ack (``timeout`` given); refuses a broadcast ack without one."""
        if timeout is not None:
            if callback is None:
                raise ValueError('emit(timeout=...) collects acknowledgements: give a callback too')
            if timeout <= 0:
                raise ValueError('timeout must be positive')
            return True
        if callback is not None and (room is None or isinstance(room, (list, tuple, set))):
            raise ValueError('a broadcast with a callback waits for many clients: give a timeout, '
                             'emit(..., callback=cb, timeout=seconds); cb(answers, missing) runs once')
        return False

    def _call_is_broadcast(self, target: Any, namespace: str, timeout: float | None, ignore_queue: bool) -> Any:
        """How ``call()`` treats ``target``: False (one client), True (a room: a list), or None (ask the workers)."""
        if isinstance(target, (list, tuple, set)):
            return True
        if self.manager.is_connected(target, namespace) or timeout is None:
            return False
        if ignore_queue or not self.manager._expected_workers():
            return self.manager._room_has_members(namespace, target)
        return None

    def _call_result(self, gathering: Any, broadcast: Any) -> Any:
        """``call()``'s answer from a finished (or expired) gathering."""
        from .._core.cluster import UNKNOWN
        from ..cluster import BroadcastTimeoutError

        counted = sum(gathering.counts.values())
        if broadcast is None and (gathering.client or (counted == 0 and UNKNOWN in gathering.answered)):
            broadcast = False  # the target was one client's sid (on a greensio or a python-socketio worker)
        if broadcast is False or (broadcast is None and counted == 0):
            if gathering.answers:
                return gathering.answers[0]
            if self._metrics is not None:
                self._metrics.call_timeouts += 1
            raise exceptions.TimeoutError()
        if gathering.missing:
            if self._metrics is not None:
                self._metrics.call_timeouts += 1
                self._metrics.ack_timeouts += gathering.missing
            raise BroadcastTimeoutError(list(gathering.answers), gathering.missing)
        return list(gathering.answers)

    @staticmethod
    def _replies_result(gathering: Any) -> list:
        from ..cluster import BroadcastTimeoutError

        if gathering.missing:
            raise BroadcastTimeoutError(list(gathering.answers), gathering.missing)
        return list(gathering.answers)

    @staticmethod
    def _check_call(to: str | None, sid: str | None, async_handlers: Any) -> None:
        if to is None and sid is None:
            raise ValueError('Cannot use call() to broadcast.')
        if not async_handlers:
            raise RuntimeError('Cannot use call() when async_handlers is False.')

    def _connection_of(self, sid: str, namespace: str | None) -> ServerConnection:
        eio_sid = self.manager.eio_sid_from_sid(sid, namespace or '/')
        conn = self._connections.get(eio_sid) if eio_sid else None
        if conn is None:
            raise KeyError('Session not found')
        return conn

    def _session_of(self, sid: str, namespace: str | None) -> dict:
        return self._connection_of(sid, namespace).sessions.setdefault(namespace or '/', {})

    def _store_session(self, sid: str, session: dict, namespace: str | None) -> None:
        self._connection_of(sid, namespace).sessions[namespace or '/'] = session

    def _namespace_allowed(self, namespace: str) -> bool:
        return (namespace in self.handlers or namespace in self.namespace_handlers
                or self.namespaces == '*' or namespace in self.namespaces)

    def _connect_refusal(self, exc: Exception, namespace: str) -> dict:
        """The CONNECT_ERROR payload for an exception raised by a connect handler."""
        if isinstance(exc, exceptions.ConnectionRefusedError):
            return exc.error_args
        if isinstance(exc, builtins.ConnectionRefusedError):
            return {'message': 'Connection refused by server'}
        # python-socketio left the client half-connected here; refuse instead
        self.logger.error('connect handler error [%s]', namespace, exc_info=exc)
        return {'message': 'Connection rejected by server'}

    def _ack_packet(self, result: Any, namespace: str, ack_id: int) -> pk.Packet:
        """The ACK for a handler's return value: tuple → arguments, None → none."""
        return self.packet_class(pk.ACK, to_args(result), namespace, ack_id)

    # -- sending (the packets are queued, never awaited, in both twins) -------------------

    def _encode(self, packet_type: int, namespace: str, data: Any, ack_id: int | None = None) -> list[Any]:
        """Encode once; the Engine.IO packets can go to any number of clients."""
        return self._eio_packets(self.packet_class(packet_type, data, namespace, ack_id))

    def _eio_packets(self, pkt: pk.Packet) -> list[Any]:
        make = self.eio_packet_class
        encoded = pkt.encode()
        if isinstance(encoded, list):
            return [make(MESSAGE, part) for part in encoded]
        return [make(MESSAGE, encoded)]

    def _send_packet(self, eio_sid: str, pkt: pk.Packet) -> None:
        eio_pkts = self._eio_packets(pkt)
        self._send_eio_packets(eio_sid, eio_pkts)
        if self._metrics is not None:
            self._metrics.sent(eio_pkts)

    def _send_eio_packets(self, eio_sid: str, eio_pkts: list[Any]) -> None:
        """Send the Engine.IO packets of one Socket.IO packet (several with binary attachments)."""
        raise NotImplementedError

    # -- flows: written once, driven by each twin's _run_flow -----------------------------

    def _initialize_manager(self) -> None:
        if not self.manager_initialized:
            self.manager_initialized = True
            self.manager.initialize()

    def _connect_flow(self, conn: ServerConnection, namespace: str, auth: Any) -> Flow:
        """A client's CONNECT to a namespace: allow-list, sid, handler, accept or refuse."""
        eio_sid = conn.eio_sid
        if not self._namespace_allowed(namespace):
            self.logger.warning('%s: unknown namespace %s refused', eio_sid, namespace)
            self._send_packet(eio_sid, self.packet_class(
                pk.CONNECT_ERROR, data={'message': 'Invalid namespace'}, namespace=namespace))
            return
        restored = handover = None
        if self._recovery is not None:
            yield from self._end_stale_connection(conn, namespace, auth)
            ask_cluster = self._asks_cluster(auth)
            restored = self._recovery.restore(namespace, auth, time.monotonic())
            if restored is None and ask_cluster:
                handover = yield from self._recover_from_cluster_flow(eio_sid, namespace, auth)
            auth = self._recovery.handler_auth(auth)
        if handover is not None:
            # registered and adopted with no switch in between: what the log
            # holds up to here is replayed, what comes later reaches it live
            sid = self.manager.basic_restore(eio_sid, namespace, handover[0].sid, handover[0].rooms)
            if sid is not None:
                restored = self._recovery.adopt(pid=handover[2], namespace=namespace,  # type: ignore[union-attr]
                                                handover=handover[0], asked=handover[1])
        elif restored is not None:
            sid = self.manager.basic_restore(eio_sid, namespace, restored.sid, restored.rooms)
        else:
            sid = yield (self.manager.pre_connect, eio_sid, namespace)
        if sid is None:
            self._send_packet(eio_sid, self.packet_class(
                pk.CONNECT_ERROR, data={'message': 'Unable to connect'}, namespace=namespace))
            return
        # connected before the connect handler runs, so the handler can enter
        # rooms, emit to the client or disconnect it, with a message queue
        # manager too; a refusal disconnects it below
        yield (self.manager.connect, sid, namespace)
        conn.namespaces[namespace] = sid
        self._handshakes[sid] = (auth, time.time())
        answer = {'sid': sid}
        if self._recovery is not None:
            pid = conn.pids[namespace] = restored.pid if restored else self.eio.generate_id()
            answer['pid'] = pid
            self._live_pids[pid] = eio_sid
            # a session restored here still needs what its replay holds, should it drop again at once
            self._recovery.begin(pid, restored.needed_from - 1 if restored is not None and restored.remote is None
                                 else None)
        if restored is not None:
            conn.sessions[namespace] = restored.data
            conn.recovered.add(namespace)
            self.logger.info('%s: session %s recovered [%s]', eio_sid, sid, namespace)
            if self._skip_handlers_on_recovery:
                if self._metrics is not None:
                    self._metrics.connected(namespace, 'recovered')
                self._send_connected(conn, namespace, answer, restored)
                return
        if self.always_connect:
            self._send_connected(conn, namespace, answer, restored)
        refusal: Any = None
        try:
            accepted = yield (self._trigger_event, 'connect', namespace, sid, self.environ[eio_sid], auth or None)
        except Exception as exc:  # noqa: BLE001 - any handler error refuses the connection
            refusal, accepted = self._connect_refusal(exc, namespace), False
        if self._metrics is not None:
            result = 'refused' if accepted is False else 'accepted' if restored is None else 'recovered'
            self._metrics.connected(namespace, result)
        if accepted is False:
            refusal = refusal or {'message': 'Connection rejected by server'}
            if self.always_connect:
                # a DISCONNECT has no payload: socket.io-client cannot parse one
                # and drops the whole connection (test_e2e_js.py regression)
                pkt = self.packet_class(pk.DISCONNECT, namespace=namespace)
            else:
                pkt = self.packet_class(pk.CONNECT_ERROR, data=refusal, namespace=namespace)
            self._send_packet(eio_sid, pkt)
            yield (self._manager_disconnect, sid, namespace)
            self._forget_namespace(conn, namespace)
        elif not self.always_connect:
            self._send_connected(conn, namespace, answer, restored)

    def _send_connected(self, conn: ServerConnection, namespace: str, answer: dict, restored: Any) -> None:
        """The CONNECT answer and, for a recovered session, the events it missed."""
        self._send_packet(conn.eio_sid, self.packet_class(pk.CONNECT, answer, namespace=namespace))
        if restored is not None:
            missed = self._recovery.replay(restored, time.monotonic())  # type: ignore[union-attr]
            for payload in missed:
                self._send_packet(conn.eio_sid, self.packet_class(pk.EVENT, payload, namespace=namespace))
            if self._metrics is not None:
                self._metrics.emitted(namespace, len(missed))

    def _manager_disconnect(self, sid: str, namespace: str) -> Any:
        self._handshakes.pop(sid, None)
        return self.manager.disconnect(sid, namespace, ignore_queue=True)

    def _server_disconnect_flow(self, sid: str, namespace: str | None, ignore_queue: bool) -> Flow:
        """``disconnect(sid)``: tell the client, run its disconnect handler, forget it."""
        namespace = namespace or '/'
        if ignore_queue:
            act = self.manager.is_connected(sid, namespace)
        else:
            act = yield (self.manager.can_disconnect, sid, namespace)
        if not act:
            return
        self.logger.info('Disconnecting %s [%s]', sid, namespace)
        eio_sid = self.manager.pre_disconnect(sid, namespace)
        conn = self._connections.get(eio_sid) if eio_sid else None
        if conn is not None:
            conn.forget_pending()
            self._send_packet(eio_sid, self.packet_class(pk.DISCONNECT, namespace=namespace))
        yield from self._finish_disconnect_flow(conn, sid, namespace, self.reason.SERVER_DISCONNECT)

    def _client_disconnect_flow(self, conn: ServerConnection, namespace: str, reason: str) -> Flow:
        """The client left a namespace (DISCONNECT packet, or its connection ended)."""
        sid = conn.namespaces.get(namespace)
        if sid is None or not self.manager.is_connected(sid, namespace):
            return
        self.manager.pre_disconnect(sid, namespace)
        yield from self._finish_disconnect_flow(conn, sid, namespace, reason)

    def _forget_namespace(self, conn: ServerConnection, namespace: str) -> None:
        conn.namespaces.pop(namespace, None)
        pid = conn.pids.pop(namespace, None)
        if pid is not None and self._live_pids.get(pid) == conn.eio_sid:
            del self._live_pids[pid]
            self._recovery.end(pid)  # type: ignore[union-attr]

    # -- recovery across workers --------------------------------------------------------

    def _asks_cluster(self, auth: Any) -> bool:
        """Whether a returning client's session may be on another worker: a well-formed pid
        unknown here, with a queue manager."""
        if not getattr(self.manager, '_cluster', False) or not isinstance(auth, dict):
            return False
        pid, offset = auth.get('pid'), auth.get('offset')
        return (isinstance(pid, str) and 0 < len(pid) <= MAX_TOKEN_LENGTH
                and (offset is None or (isinstance(offset, str) and len(offset) <= MAX_TOKEN_LENGTH))
                and not self._recovery.holds(pid))  # type: ignore[union-attr]

    def _recover_from_cluster_flow(self, eio_sid: str, namespace: str, auth: dict) -> Any:
        """Ask the other workers for the session ``auth['pid']``: ``(Handover, when asked, pid)`` or None.

        Every worker answers (the holder with the session, the others with
        nothing), so an unknown pid costs one round trip; a holder that died
        costs at most ``CLUSTER_RECOVERY_TIMEOUT``.
        """
        pid, offset = auth['pid'], auth.get('offset')
        asked = time.monotonic()
        try:
            timeout = min(CLUSTER_RECOVERY_TIMEOUT, self._recovery.max_disconnection_duration)  # type: ignore[union-attr]
            gathering = yield (functools.partial(self.manager._start_request, RECOVER_SESSION, namespace, timeout,
                                                 pid=pid, offset=offset),)
        except Exception as exc:  # noqa: BLE001 - a full outbox: the client gets a new session
            self.logger.warning('%s: could not ask the other workers for its session: %r', eio_sid, exc)
            return None
        yield (self._wait_gathering, gathering)
        for found in gathering.answers:
            if not isinstance(found, dict):
                continue
            sid = found['sid']
            if self.manager.eio_sid_from_sid(sid, namespace) is not None:
                self.logger.warning('%s: a worker handed over session %s, which is connected here: refused',
                                    eio_sid, sid)
                return None
            handover = Handover(sid=sid, rooms=found['rooms'], data=found['data'], missed=found['missed'],
                                seen=found['seen'])
            self.logger.info('%s: session %s handed over by another worker [%s]', eio_sid, sid, namespace)
            return handover, asked, pid
        if gathering.missing:
            self.logger.info('%s: %d worker(s) did not answer in time about its session: a new one', eio_sid,
                             gathering.missing)
        return None

    def _hand_over_flow(self, namespace: str, pid: Any, offset: Any) -> Any:
        """Another worker asks for the session ``pid``: its JSON form, given away once, or None."""
        recovery = self._recovery
        if recovery is None or not isinstance(pid, str):
            return None
        stale = self._live_pids.get(pid)
        old = self._connections.get(stale) if stale is not None else None
        if stale is not None and old is not None and old.pids.get(namespace) == pid:
            # the client is back elsewhere, so this connection is dead though not noticed yet
            self.logger.info('%s: its client is back on another worker, closing it', stale)
            yield from self._eio_disconnect_flow(stale, self.reason.TRANSPORT_CLOSE)
            yield (self.eio.disconnect, stale)
        handover = recovery.hand_over(namespace, pid, offset, time.monotonic())
        if handover is None:
            return None
        json = getattr(self.manager, 'json', self.packet_class.json)
        try:
            json.dumps(handover.data)
        except (TypeError, ValueError) as exc:
            self.logger.warning('session %s cannot move to another worker (its data is not JSON: %s); '
                                'the client gets a new session', handover.sid, exc)
            return None
        if not isinstance(handover.data, dict):
            return None
        rooms = [room for room in handover.rooms if isinstance(room, (str, int))]
        self.logger.info('session %s handed over to another worker with %d missed event(s) [%s]', handover.sid,
                         len(handover.missed), namespace)
        return {'sid': handover.sid, 'rooms': rooms, 'data': handover.data,
                'missed': [[payload, msg_id] for payload, msg_id in handover.missed], 'seen': handover.seen}

    def _end_stale_connection(self, conn: ServerConnection, namespace: str, auth: Any) -> Flow:
        """End the connection a returning client left, if the server still takes it for alive.

        A long-polling client whose network dropped is only noticed by the
        heartbeat, which may take longer than the client takes to come back;
        its pid (known to that client alone) shows that the old connection
        is dead, so it ends now, as a transport close, and can be recovered.
        """
        pid = auth.get('pid') if isinstance(auth, dict) else None
        stale = self._live_pids.get(pid) if isinstance(pid, str) else None
        old = self._connections.get(stale) if stale is not None and stale != conn.eio_sid else None
        if stale is None or old is None or old.pids.get(namespace) != pid:
            return
        self.logger.info('%s: its client is back on %s, closing it', stale, conn.eio_sid)
        yield from self._eio_disconnect_flow(stale, self.reason.TRANSPORT_CLOSE)
        yield (self.eio.disconnect, stale)

    def _finish_disconnect_flow(self, conn: ServerConnection | None, sid: str, namespace: str, reason: str) -> Flow:
        if self._metrics is not None:
            self._metrics.disconnected(namespace, reason)
        try:
            yield (self._trigger_event, 'disconnect', namespace, sid, reason)
        except Exception:
            self.logger.exception('disconnect handler error [%s]', namespace)
        yield (self._manager_disconnect, sid, namespace)
        if conn is not None:
            self._forget_namespace(conn, namespace)

    def _eio_disconnect_flow(self, eio_sid: str, reason: str | None) -> Flow:
        """The Engine.IO connection ended: every namespace of it disconnects."""
        conn = self._connections.get(eio_sid)
        if conn is not None:
            conn.forget_pending()
            if self._recovery is not None and reason in RECOVERABLE_REASONS:
                self._save_sessions(conn)
            for namespace in list(conn.namespaces):
                yield from self._client_disconnect_flow(conn, namespace, reason or self.reason.CLIENT_DISCONNECT)
            self._connections.pop(eio_sid, None)
        self.environ.pop(eio_sid, None)

    def _save_sessions(self, conn: ServerConnection) -> None:
        """Keep the state of a connection that ended without the client choosing to."""
        now = time.monotonic()
        for namespace, sid in conn.namespaces.items():
            pid = conn.pids.get(namespace)
            if pid is not None and self.manager.is_connected(sid, namespace):
                self._recovery.save(pid=pid, sid=sid, namespace=namespace,  # type: ignore[union-attr]
                                    rooms=self.manager.get_rooms(sid, namespace),
                                    data=conn.sessions.get(namespace, {}), now=now)

    def _trigger_event(self, event: str, namespace: str, *args: Any) -> Any:
        raise NotImplementedError

    def _wait_gathering(self, gathering: Any) -> Any:
        """Wait until a cluster request is answered or past its deadline (awaitable on the asyncio twin)."""
        raise NotImplementedError

    def _handle_eio_connect(self, eio_sid: str, environ: dict) -> Any:
        raise NotImplementedError

    def _handle_eio_message(self, eio_sid: str, data: str | bytes) -> Any:
        raise NotImplementedError

    def _handle_eio_disconnect(self, eio_sid: str, reason: str | None = None) -> Any:
        raise NotImplementedError
