"""The green Socket.IO server (``socketio.Server``).

Shell ring.  Engine.IO messages go into a ``_core.session.ServerConnection``;
the events that come out run user handlers (events on reused greenlets,
connects inline, as python-socketio does) and whatever must be sent is
encoded by the packet class and written through ``greensio.engineio.Server``.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable
from time import perf_counter
from typing import Any

from .. import exceptions
from .._core.cluster import ACKS
from .._core.eio_codec import OutPacket
from .._core.errors import RemoteProtocolError
from .._core.events import (
    AckReceived,
    ConnectRequested,
    DisconnectRequested,
    EventReceived,
)
from .._core.handlers import call_trimmed
from .._core.payload import from_args, to_args
from .._core.pubsub import (
    DISCONNECT_SOCKETS,
    FETCH_SOCKETS,
    SERVER_EMIT,
    SOCKETS_JOIN,
    SOCKETS_LEAVE,
)
from .._core.session import MAX_EVENTS_IN_FLIGHT, ServerConnection
from ..cluster import RemoteSocket
from ..common.base_server import SERVER_RESERVED_EVENTS, BaseServer, utf8_size
from ..common.twins import drive
from ..engineio.server import Server as EngineServer
from ..managers.manager import Manager


class Server(BaseServer):
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
    :param max_events_in_flight: how many events of one client may wait for
        a handler or run at once (default 100).  At the bound the server
        stops reading that client until one of its handlers finishes: its
        further packets wait in the network and in the client, not in the
        server, and other clients are not slowed down.
    :param always_connect: send the connect acknowledgement before the
        connect handler runs (a refusal then becomes a disconnect).
    :param namespaces: namespaces accepted besides those with handlers;
        ``'*'`` accepts any.
    :param connection_state_recovery: ``True`` or a dict of options to let a
        client whose connection dropped come back within
        ``max_disconnection_duration`` seconds (default 120) with its sid,
        rooms and session, and receive every event it missed, in order;
        ``skip_handlers`` (default ``True``) skips the connect handler on
        recovery (otherwise :meth:`recovered` tells it).  Off by default.
    :param kwargs: Engine.IO options (``ping_interval``, ``ping_timeout``,
        ``max_http_buffer_size``, ``cors_allowed_origins``, ``transports``,
        ``engineio_logger``, ...); ``async_mode`` defaults to ``'gevent'``.
    """

    def __init__(self, client_manager: Any = None, logger: Any = False, serializer: Any = 'default',
                 json: Any = None, async_handlers: bool = True, always_connect: bool = False,
                 namespaces: Any = None, **kwargs: Any) -> None:
        max_events_in_flight = kwargs.pop('max_events_in_flight', MAX_EVENTS_IN_FLIGHT)
        if not isinstance(max_events_in_flight, int) or max_events_in_flight < 1:
            raise ValueError(f'max_events_in_flight must be a positive integer, not {max_events_in_flight!r}')
        super().__init__(client_manager, logger, serializer, json, async_handlers, always_connect, namespaces,
                         **kwargs)
        self.max_events_in_flight = max_events_in_flight
        self._ordered: dict[str, deque] = {}  # eio_sid -> events waiting their turn
        self._pool: Any = None
        self._home: Any = None  # where emits from native threads are handed (gevent only)
        if self.async_mode == 'gevent':
            from .runtime import Home, WorkerPool

            self._pool = WorkerPool()
            self._home = Home()
        self.manager.set_server(self)

    def _create_engine(self, options: dict[str, Any]) -> EngineServer:
        if options.get('async_mode') is None:
            options['async_mode'] = 'gevent'
        return EngineServer(**options)

    def _default_manager(self) -> Manager:
        return Manager()

    # -- emitting ---------------------------------------------------------------

    def emit(self, event: str, data: Any = None, to: Any = None, room: Any = None, skip_sid: Any = None,
             namespace: str | None = None, callback: Callable | None = None, ignore_queue: bool = False,
             *, timeout: float | None = None) -> None:
        if self._home is not None and self._home.away():
            return self._home.run(functools.partial(self.emit, timeout=timeout), event, data, to, room, skip_sid,
                                  namespace, callback, ignore_queue)
        namespace = namespace or '/'
        room = to or room
        self._log_emit(event, room, namespace)
        if self._broadcast_acks(room, callback, timeout):
            gathering = self.manager._emit_gathering(event, data, namespace, room, skip_sid, timeout, ignore_queue)
            self.start_background_task(self._report_gathering, gathering, callback)
            return None
        self.manager.emit(event, data, namespace, room=room, skip_sid=skip_sid, callback=callback,
                          ignore_queue=ignore_queue)
        return None

    def send(self, data: Any, to: Any = None, room: Any = None, skip_sid: Any = None,
             namespace: str | None = None, callback: Callable | None = None, ignore_queue: bool = False) -> None:
        self.emit('message', data=data, to=to, room=room, skip_sid=skip_sid, namespace=namespace,
                  callback=callback, ignore_queue=ignore_queue)

    def call(self, event: str, data: Any = None, to: str | None = None, sid: str | None = None,
             namespace: str | None = None, timeout: float | None = 60, ignore_queue: bool = False) -> Any:
        if self._home is not None and self._home.away():
            return self._home.run(self.call, event, data, to, sid, namespace, timeout, ignore_queue)
        self._check_call(to, sid, self.async_handlers)
        namespace = namespace or '/'
        broadcast = self._call_is_broadcast(to or sid, namespace, timeout, ignore_queue)
        if broadcast is not False:
            gathering = self.manager._emit_gathering(event, data, namespace, to or sid, None, timeout, ignore_queue)
            gathering.want_one = broadcast is None
            self._wait_gathering(gathering)
            return self._call_result(gathering, broadcast)
        done = self.eio.create_event()
        result: list[tuple] = []

        def callback(*args: Any) -> None:
            result.append(args)
            done.set()

        self.emit(event, data=data, room=to or sid, namespace=namespace, callback=callback,
                  ignore_queue=ignore_queue)
        if not done.wait(timeout=timeout):
            self.manager.discard_callback(to or sid, callback)
            if self._metrics is not None:
                self._metrics.call_timeouts += 1
            raise exceptions.TimeoutError()
        return from_args(result[0])

    # -- the cluster as one server ---------------------------------------------------

    def fetch_sockets(self, to: Any = None, namespace: str | None = None, skip: Any = None,
                      timeout: float = 5) -> list[RemoteSocket]:
        namespace = namespace or '/'
        gathering = self.manager._start_request(FETCH_SOCKETS, namespace, timeout, to=to, skip=skip)
        gathering.reply(self.manager._worker_id, self.manager._local_sockets(namespace, to, skip))
        self._wait_gathering(gathering)
        return [RemoteSocket.from_description(self, found) for found in self._replies_result(gathering)]

    def sockets_join(self, room: Any, to: Any = None, namespace: str | None = None, skip: Any = None) -> None:
        namespace = namespace or '/'
        self.manager._local_room_change(True, namespace, room, to, skip)
        self.manager._start_request(SOCKETS_JOIN, namespace, None, to=to, skip=skip, room=room)

    def sockets_leave(self, room: Any, to: Any = None, namespace: str | None = None, skip: Any = None) -> None:
        namespace = namespace or '/'
        self.manager._local_room_change(False, namespace, room, to, skip)
        self.manager._start_request(SOCKETS_LEAVE, namespace, None, to=to, skip=skip, room=room)

    def disconnect_sockets(self, to: Any = None, namespace: str | None = None, skip: Any = None,
                           close: bool = False) -> None:
        namespace = namespace or '/'
        # the others first: the local disconnects below may change the rooms ``to`` and ``skip`` name
        self.manager._start_request(DISCONNECT_SOCKETS, namespace, None, to=to, skip=skip, close=close)
        drive(self.manager._local_disconnects(namespace, to, skip, close))

    def server_side_emit(self, event: str, data: Any = None, callback: Callable | None = None,
                         timeout: float | None = None) -> None:
        if callback is not None and timeout is None:
            raise ValueError('server_side_emit(callback=...) waits for every worker: give a timeout too')
        gathering = self.manager._start_request(SERVER_EMIT, '/', timeout if callback is not None else None,
                                                event=event, args=to_args(data))
        if gathering is not None:
            self.start_background_task(self._report_gathering, gathering, callback)

    def server_side_call(self, event: str, data: Any = None, timeout: float = 5) -> list:
        gathering = self.manager._start_request(SERVER_EMIT, '/', timeout, event=event, args=to_args(data))
        self._wait_gathering(gathering)
        return self._replies_result(gathering)

    def _initialize_manager(self) -> None:
        """Start the manager, from the thread that serves (its hub runs the manager's tasks)."""
        if not self.manager_initialized:
            if self._home is not None:  # the serving thread's hub, should it differ from the building one
                self._home = type(self._home)()
            super()._initialize_manager()

    def _wait_gathering(self, gathering: Any) -> None:
        """Block this greenlet until the gathering is finished or past its deadline."""
        wake = self.eio.create_event()
        gathering.on_change = wake.set
        for wait in self.manager._waits(gathering):
            wake.clear()
            wake.wait(wait)

    def _report_gathering(self, gathering: Any, callback: Callable) -> None:
        self._wait_gathering(gathering)
        if self._metrics is not None and gathering.kind == ACKS:
            self._metrics.ack_timeouts += gathering.missing
        try:
            callback(list(gathering.answers), gathering.missing)
        except Exception:
            self.logger.exception('broadcast ack callback error')

    # -- rooms and sessions -------------------------------------------------------

    def enter_room(self, sid: str, room: Any, namespace: str | None = None) -> None:
        self.manager.enter_room(sid, namespace or '/', room)

    def leave_room(self, sid: str, room: Any, namespace: str | None = None) -> None:
        self.manager.leave_room(sid, namespace or '/', room)

    def close_room(self, room: Any, namespace: str | None = None) -> None:
        self.manager.close_room(room, namespace or '/')

    def get_session(self, sid: str, namespace: str | None = None) -> dict:
        return self._session_of(sid, namespace)

    def save_session(self, sid: str, session: dict, namespace: str | None = None) -> None:
        self._store_session(sid, session, namespace)

    def disconnect(self, sid: str, namespace: str | None = None, ignore_queue: bool = False) -> None:
        self._run_flow(self._server_disconnect_flow(sid, namespace, ignore_queue))

    def instrument(self, auth: Any = None, mode: str = 'development', read_only: bool = False,
                   server_id: str | None = None, namespace: str = '/admin', server_stats_interval: float = 2) -> Any:
        from .admin import InstrumentedServer

        self._admin = InstrumentedServer(self, auth=auth, mode=mode, read_only=read_only, server_id=server_id,
                                         namespace=namespace, server_stats_interval=server_stats_interval)
        return self._admin

    # -- runtime ------------------------------------------------------------------

    def handle_request(self, environ: dict, start_response: Callable) -> Any:
        return self.eio.handle_request(environ, start_response)

    def sleep(self, seconds: float = 0) -> None:
        return self.eio.sleep(seconds)

    def shutdown(self) -> None:
        self.logger.info('Socket.IO is shutting down')
        if self._admin is not None:
            self._admin.shutdown()
        self.eio.shutdown()
        close = getattr(self.manager, 'close', None)  # queue managers: flush the outbox, drop the queue
        if close is not None:
            close()

    # -- sending --------------------------------------------------------------------

    def _send_eio_packets(self, eio_sid: str, eio_pkts: list[OutPacket]) -> None:
        socket = self.eio.sockets.get(eio_sid)
        if socket is not None and not socket.closed:
            if len(eio_pkts) == 1:
                socket.send(eio_pkts[0])
            else:
                socket.send_together(eio_pkts)

    # -- inbound ----------------------------------------------------------------------

    def _handle_eio_connect(self, eio_sid: str, environ: dict) -> None:
        self._initialize_manager()
        self.environ[eio_sid] = environ
        self._connections[eio_sid] = ServerConnection(eio_sid, self.packet_class)

    def _handle_eio_message(self, eio_sid: str, data: str | bytes) -> None:
        metrics = self._metrics
        if metrics is not None:
            metrics.received_bytes += len(data) if data.__class__ is not str or data.isascii() else utf8_size(data)
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
            conn.events_in_flight += 1
            if self.async_handlers == 'ordered':
                backlog = self._ordered.setdefault(eio_sid, deque())
                backlog.append(event)
                if len(backlog) == 1:
                    self._spawn(self._drain_in_order, conn, backlog)
            elif self.async_handlers:
                self._spawn(self._handle_event, conn, event)
            else:
                self._handle_event(conn, event)
            if conn.events_in_flight >= self.max_events_in_flight:
                self._pause_reading(conn)
        elif kind is AckReceived:
            self._handle_ack(event)
        elif kind is ConnectRequested:
            self._run_flow(self._connect_flow(conn, event.namespace, event.auth))
        elif kind is DisconnectRequested:
            self._run_flow(self._client_disconnect_flow(conn, event.namespace, self.reason.CLIENT_DISCONNECT))
        else:
            self.logger.warning('%s: %s [%s], packet ignored', eio_sid, event.reason, event.namespace)

    _run_flow = staticmethod(drive)  # a flow of ``BaseServer``, driven as ``_twins.drive`` does

    def _handle_event(self, conn: ServerConnection, event: EventReceived) -> None:
        namespace = event.namespace
        metrics = self._metrics
        start = perf_counter() if metrics is not None else 0.0
        try:
            result = self._trigger_event(event.event, namespace, event.sid, *event.args)
        except Exception:
            self.logger.exception('event handler error: "%s" [%s]', event.event, namespace)
            return
        finally:
            if metrics is not None:
                metrics.handled(namespace, perf_counter() - start)
            conn.events_in_flight -= 1
            resume = conn.resume
            if resume is not None:  # the client's reader is paused: it may read on
                conn.resume = None
                resume.set()
        if result is self.not_handled or event.ack_id is None:
            return
        self._send_packet(conn.eio_sid, self._ack_packet(result, namespace, event.ack_id))

    def _pause_reading(self, conn: ServerConnection) -> None:
        """Back-pressure: return once one of the client's events has finished.

        The caller is the client's reader (its websocket greenlet, or the
        request greenlet of its polling POST), so while it waits the client's
        next packets stay in its TCP connection and in the client itself.
        Meanwhile the client cannot time out its heartbeat: its PONG may be
        waiting, unread, behind its events.
        """
        socket = self.eio.sockets.get(conn.eio_sid)
        if socket is None:
            return
        conn.pauses += 1
        if conn.pauses == 1:
            self.logger.warning('%s: %d events queued or running (max_events_in_flight), '
                                'not reading more until its handlers catch up', conn.eio_sid, conn.events_in_flight)
        hold = getattr(socket, 'hold_heartbeat', None)  # the in-process test socket has no heartbeat
        if hold is not None:
            hold(True)
        try:
            while conn.events_in_flight >= self.max_events_in_flight and not socket.closed:
                # shared by every paused reader of this client (overlapping
                # polling POSTs); whoever sets it also takes it away
                resume = conn.resume
                if resume is None:
                    resume = conn.resume = self.eio.create_event()
                resume.wait()
        finally:
            if hold is not None:
                hold(False)

    def _spawn(self, fn: Callable, *args: Any) -> None:
        if self._pool is not None:
            self._pool.spawn(fn, *args)
        else:
            self.start_background_task(fn, *args)

    def _drain_in_order(self, conn: ServerConnection, backlog: deque) -> None:
        try:
            while backlog:
                self._handle_event(conn, backlog[0])
                backlog.popleft()
        finally:
            # also when the drain was killed: later events then start a new one
            if backlog:  # killed inside the first one's handler, which counted itself out
                conn.events_in_flight -= len(backlog) - 1
                backlog.clear()
                self._wake_reader(conn)
            if self._ordered.get(conn.eio_sid) is backlog:
                del self._ordered[conn.eio_sid]

    @staticmethod
    def _wake_reader(conn: ServerConnection) -> None:
        resume, conn.resume = conn.resume, None
        if resume is not None:
            resume.set()

    def _handle_ack(self, event: AckReceived) -> None:
        try:
            self.manager.trigger_callback(event.sid, event.ack_id, event.args)
        except Exception:
            self.logger.exception('ack callback error [%s]', event.namespace)

    def _handle_eio_disconnect(self, eio_sid: str, reason: str | None = None) -> None:
        conn = self._connections.get(eio_sid)
        if conn is not None:
            self._wake_reader(conn)  # a paused reader has nothing more to read
        self._run_flow(self._eio_disconnect_flow(eio_sid, reason))

    def _trigger_event(self, event: str, namespace: str, *args: Any) -> Any:
        found = self._registry.resolve(namespace, event)
        if found is None:
            return self.not_handled
        handler, lead = found
        if event in SERVER_RESERVED_EVENTS:
            return call_trimmed(handler, lead + args, 1)
        return handler(*lead, *args)
