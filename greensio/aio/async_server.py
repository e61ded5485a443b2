"""The asyncio Socket.IO server (``socketio.AsyncServer``).

Shell ring, the asyncio twin of ``server.py``.  Options, registration,
resolution, payload shaping, encoding, the connect/disconnect flows and
the docstrings are ``BaseServer``'s; this class awaits where python-socketio
awaits.  Engine.IO is :class:`greensio.engineio.AsyncServer` (greensio's
Engine.IO core under an asyncio shell); serve it with
:class:`greensio.ASGIApp` under an ASGI server such as uvicorn, attach it
to an aiohttp or sanic app, or route tornado to ``get_tornado_handler``.  Handlers and ack callbacks may be
plain functions or coroutine functions.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
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
from ..cluster import AsyncRemoteSocket
from ..common.base_server import SERVER_RESERVED_EVENTS, BaseServer, utf8_size
from ..common.twins import drive_async
from ..engineio.async_server import AsyncServer as AsyncEngineServer
from ..managers.async_manager import AsyncManager
from .runtime import settle


class AsyncServer(BaseServer):
    """A Socket.IO server for asyncio (ASGI), the twin of :class:`greensio.Server`.

    :param client_manager: keeps track of clients and rooms; default an
        in-memory :class:`AsyncManager`.
    :param logger: ``True`` logs at INFO, ``False`` (default) only errors,
        or pass a :class:`logging.Logger`.
    :param json: an alternative JSON module (process-wide, as in python-socketio).
    :param async_handlers: run each event handler in its own task (default
        ``True``), so a handler that awaits never stops acks arriving;
        ``'ordered'`` runs one client's events one after the other while
        different clients run concurrently.
    :param namespaces: namespaces accepted besides those with handlers;
        ``'*'`` accepts any.
    :param kwargs: ``serializer``, ``always_connect``,
        ``connection_state_recovery`` and ``max_events_in_flight`` (how many events of one client may wait for
        a handler or run at once, default 100; at the bound the server stops
        reading that client until one of its handlers finishes) as for
        :class:`greensio.Server`, and the Engine.IO options
        (``ping_interval``, ``ping_timeout``, ``max_http_buffer_size``,
        ``cors_allowed_origins``, ``engineio_logger``, ``async_mode``...).
        ``async_mode`` is ``'asgi'``, ``'aiohttp'``, ``'tornado'`` or
        ``'sanic'`` (default: the first installed of aiohttp, sanic,
        tornado, else ASGI, as python-socketio picks).
    """

    def __init__(self, client_manager: Any = None, logger: Any = False, json: Any = None,
                 async_handlers: Any = True, namespaces: Any = None, **kwargs: Any) -> None:
        serializer = kwargs.pop('serializer', 'default')
        always_connect = kwargs.pop('always_connect', False)
        max_events_in_flight = kwargs.pop('max_events_in_flight', MAX_EVENTS_IN_FLIGHT)
        if not isinstance(max_events_in_flight, int) or max_events_in_flight < 1:
            raise ValueError(f'max_events_in_flight must be a positive integer, not {max_events_in_flight!r}')
        super().__init__(client_manager, logger, serializer, json, async_handlers, always_connect, namespaces,
                         **kwargs)
        self.max_events_in_flight = max_events_in_flight
        self._tasks: set[asyncio.Task] = set()  # handler tasks, referenced until done
        self._ordered: dict[str, deque] = {}  # eio_sid -> events waiting their turn
        self.manager.set_server(self)

    def _create_engine(self, options: dict[str, Any]) -> AsyncEngineServer:
        return AsyncEngineServer(**{**options, 'async_handlers': False})  # Socket.IO dispatches its handlers itself

    def _default_manager(self) -> AsyncManager:
        return AsyncManager()

    def attach(self, app: Any, socketio_path: str = 'socket.io') -> None:
        """Attach to an aiohttp or sanic application (python-engineio's ``attach``)."""
        self.eio.attach(app, socketio_path)

    # -- the public API (docstrings on BaseServer) ------------------------------------

    async def emit(self, event: str, data: Any = None, to: Any = None, room: Any = None, skip_sid: Any = None,
                   namespace: str | None = None, callback: Callable | None = None,
                   ignore_queue: bool = False, *, timeout: float | None = None) -> None:
        namespace = namespace or '/'
        room = to or room
        self._log_emit(event, room, namespace)
        if self._broadcast_acks(room, callback, timeout):
            gathering = await settle(self.manager._emit_gathering(event, data, namespace, room, skip_sid, timeout,
                                                                  ignore_queue))
            self._keep(asyncio.ensure_future(self._report_gathering(gathering, callback)))
            return
        await self.manager.emit(event, data, namespace, room=room, skip_sid=skip_sid, callback=callback,
                                ignore_queue=ignore_queue)

    async def send(self, data: Any, to: Any = None, room: Any = None, skip_sid: Any = None,
                   namespace: str | None = None, callback: Callable | None = None,
                   ignore_queue: bool = False) -> None:
        await self.emit('message', data=data, to=to, room=room, skip_sid=skip_sid, namespace=namespace,
                        callback=callback, ignore_queue=ignore_queue)

    async def call(self, event: str, data: Any = None, to: str | None = None, sid: str | None = None,
                   namespace: str | None = None, timeout: float | None = 60, ignore_queue: bool = False) -> Any:
        self._check_call(to, sid, self.async_handlers)
        namespace = namespace or '/'
        broadcast = self._call_is_broadcast(to or sid, namespace, timeout, ignore_queue)
        if broadcast is not False:
            gathering = await settle(self.manager._emit_gathering(event, data, namespace, to or sid, None, timeout,
                                                                  ignore_queue))
            gathering.want_one = broadcast is None
            await self._wait_gathering(gathering)
            return self._call_result(gathering, broadcast)
        answered: asyncio.Future = asyncio.get_running_loop().create_future()

        def callback(*args: Any) -> None:
            if not answered.done():
                answered.set_result(args)

        await self.emit(event, data=data, room=to or sid, namespace=namespace, callback=callback,
                        ignore_queue=ignore_queue)
        try:
            args = await asyncio.wait_for(answered, timeout)
        except asyncio.TimeoutError:  # noqa: UP041 - not the builtin before Python 3.11
            self.manager.discard_callback(to or sid, callback)
            if self._metrics is not None:
                self._metrics.call_timeouts += 1
            raise exceptions.TimeoutError() from None
        return from_args(args)

    async def fetch_sockets(self, to: Any = None, namespace: str | None = None, skip: Any = None,
                            timeout: float = 5) -> list[AsyncRemoteSocket]:
        namespace = namespace or '/'
        gathering = await settle(self.manager._start_request(FETCH_SOCKETS, namespace, timeout, to=to, skip=skip))
        gathering.reply(self.manager._worker_id, self.manager._local_sockets(namespace, to, skip))
        await self._wait_gathering(gathering)
        return [AsyncRemoteSocket.from_description(self, found) for found in self._replies_result(gathering)]

    async def sockets_join(self, room: Any, to: Any = None, namespace: str | None = None, skip: Any = None) -> None:
        namespace = namespace or '/'
        self.manager._local_room_change(True, namespace, room, to, skip)
        await settle(self.manager._start_request(SOCKETS_JOIN, namespace, None, to=to, skip=skip, room=room))

    async def sockets_leave(self, room: Any, to: Any = None, namespace: str | None = None, skip: Any = None) -> None:
        namespace = namespace or '/'
        self.manager._local_room_change(False, namespace, room, to, skip)
        await settle(self.manager._start_request(SOCKETS_LEAVE, namespace, None, to=to, skip=skip, room=room))

    async def disconnect_sockets(self, to: Any = None, namespace: str | None = None, skip: Any = None,
                                 close: bool = False) -> None:
        namespace = namespace or '/'
        await settle(self.manager._start_request(DISCONNECT_SOCKETS, namespace, None, to=to, skip=skip, close=close))
        await drive_async(self.manager._local_disconnects(namespace, to, skip, close))

    async def server_side_emit(self, event: str, data: Any = None, callback: Callable | None = None,
                               timeout: float | None = None) -> None:
        if callback is not None and timeout is None:
            raise ValueError('server_side_emit(callback=...) waits for every worker: give a timeout too')
        gathering = await settle(self.manager._start_request(
            SERVER_EMIT, '/', timeout if callback is not None else None, event=event, args=to_args(data)))
        if gathering is not None:
            self._keep(asyncio.ensure_future(self._report_gathering(gathering, callback)))

    async def server_side_call(self, event: str, data: Any = None, timeout: float = 5) -> list:
        gathering = await settle(self.manager._start_request(SERVER_EMIT, '/', timeout, event=event,
                                                             args=to_args(data)))
        await self._wait_gathering(gathering)
        return self._replies_result(gathering)

    async def _wait_gathering(self, gathering: Any) -> None:
        wake = asyncio.Event()
        gathering.on_change = wake.set
        for wait in self.manager._waits(gathering):
            wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wake.wait(), wait)

    async def _report_gathering(self, gathering: Any, callback: Callable) -> None:
        await self._wait_gathering(gathering)
        if self._metrics is not None and gathering.kind == ACKS:
            self._metrics.ack_timeouts += gathering.missing
        try:
            await settle(callback(list(gathering.answers), gathering.missing))
        except Exception:
            self.logger.exception('broadcast ack callback error')

    def _keep(self, task: asyncio.Task) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def enter_room(self, sid: str, room: Any, namespace: str | None = None) -> None:
        await self.manager.enter_room(sid, namespace or '/', room)

    async def leave_room(self, sid: str, room: Any, namespace: str | None = None) -> None:
        await self.manager.leave_room(sid, namespace or '/', room)

    async def close_room(self, room: Any, namespace: str | None = None) -> None:
        await self.manager.close_room(room, namespace or '/')

    async def get_session(self, sid: str, namespace: str | None = None) -> dict:
        return self._session_of(sid, namespace)

    async def save_session(self, sid: str, session: dict, namespace: str | None = None) -> None:
        self._store_session(sid, session, namespace)

    async def disconnect(self, sid: str, namespace: str | None = None, ignore_queue: bool = False) -> None:
        await self._run_flow(self._server_disconnect_flow(sid, namespace, ignore_queue))

    async def handle_request(self, *args: Any, **kwargs: Any) -> Any:
        return await self.eio.handle_request(*args, **kwargs)

    async def sleep(self, seconds: float = 0) -> None:
        await asyncio.sleep(seconds)

    def instrument(self, auth: Any = None, mode: str = 'development', read_only: bool = False,
                   server_id: str | None = None, namespace: str = '/admin', server_stats_interval: float = 2) -> Any:
        from .async_admin import AsyncInstrumentedServer

        self._admin = AsyncInstrumentedServer(self, auth=auth, mode=mode, read_only=read_only, server_id=server_id,
                                              namespace=namespace, server_stats_interval=server_stats_interval)
        return self._admin

    async def shutdown(self) -> None:
        self.logger.info('Socket.IO is shutting down')
        if self._admin is not None:
            await self._admin.shutdown()
        await self.eio.shutdown()
        close = getattr(self.manager, 'close', None)  # queue managers: flush the outbox, drop the queue
        if close is not None:
            result = close()
            if inspect.isawaitable(result):
                await result

    # -- sending: queue, never await -----------------------------------------------------

    def _send_eio_packets(self, eio_sid: str, eio_pkts: list[OutPacket]) -> None:
        socket = self.eio.sockets.get(eio_sid)
        if socket is not None and not socket.closed:
            for eio_pkt in eio_pkts:
                socket.send_nowait(eio_pkt)

    # -- inbound ---------------------------------------------------------------------------

    async def _handle_eio_connect(self, eio_sid: str, environ: dict) -> None:
        if not self.manager_initialized:
            self._initialize_manager()
            # a queue manager subscribes first, so the first client's broadcasts are not missed
            wait_listening = getattr(self.manager, 'wait_listening', None)
            if wait_listening is not None:
                await wait_listening()
        self.environ[eio_sid] = environ
        self._connections[eio_sid] = ServerConnection(eio_sid, self.packet_class)

    async def _handle_eio_message(self, eio_sid: str, data: str | bytes) -> None:
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
            await self.eio.disconnect(eio_sid)
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
                    self._spawn(self._drain_in_order(conn, backlog))
            elif self.async_handlers:
                self._spawn(self._handle_event(conn, event))
            else:
                await self._handle_event(conn, event)
            if conn.events_in_flight >= self.max_events_in_flight:
                await self._pause_reading(conn)
        elif kind is AckReceived:
            await self._handle_ack(event)
        elif kind is ConnectRequested:
            await self._run_flow(self._connect_flow(conn, event.namespace, event.auth))
        elif kind is DisconnectRequested:
            await self._run_flow(self._client_disconnect_flow(conn, event.namespace, self.reason.CLIENT_DISCONNECT))
        else:
            self.logger.warning('%s: %s [%s], packet ignored', eio_sid, event.reason, event.namespace)

    _run_flow = staticmethod(drive_async)  # a flow of ``BaseServer``, driven as ``_twins.drive_async`` does

    async def _handle_event(self, conn: ServerConnection, event: EventReceived) -> None:
        namespace = event.namespace
        metrics = self._metrics
        start = perf_counter() if metrics is not None else 0.0
        try:
            result = await self._trigger_event(event.event, namespace, event.sid, *event.args)
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

    async def _pause_reading(self, conn: ServerConnection) -> None:
        """Back-pressure: return once one of the client's events has finished (as ``Server._pause_reading``)."""
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
                    resume = conn.resume = asyncio.Event()
                await resume.wait()
        finally:
            if hold is not None:
                hold(False)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain_in_order(self, conn: ServerConnection, backlog: deque) -> None:
        try:
            while backlog:
                await self._handle_event(conn, backlog[0])
                backlog.popleft()
        finally:
            # also when the drain was cancelled: later events then start a new one
            if backlog:  # cancelled inside the first one's handler, which counted itself out
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

    async def _handle_ack(self, event: AckReceived) -> None:
        try:
            await self.manager.trigger_callback(event.sid, event.ack_id, event.args)
        except Exception:
            self.logger.exception('ack callback error [%s]', event.namespace)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: str | None = None) -> None:
        conn = self._connections.get(eio_sid)
        if conn is not None:
            self._wake_reader(conn)  # a paused reader has nothing more to read
        await self._run_flow(self._eio_disconnect_flow(eio_sid, reason))

    async def _trigger_event(self, event: str, namespace: str, *args: Any) -> Any:
        found = self._registry.resolve(namespace, event)
        if found is None:
            return self.not_handled
        handler, lead = found
        if event in SERVER_RESERVED_EVENTS:
            result = call_trimmed(handler, lead + args, 1)
        else:
            result = handler(*lead, *args)
        return await settle(result)
