"""The Admin UI reporting of the asyncio server (``AsyncServer.instrument()``).

Integration ring, the asyncio twin of ``green/admin.py``: the payloads, the
credentials check and the hooks' places are ``common/base_admin.py``'s; here are the
awaits.  The manager's room methods are plain functions on both twins, so
their reports are emitted from a task of their own.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

from ..common.base_admin import ANNOUNCE_EVENT, BaseInstrument, _now_iso


class AsyncInstrumentedServer(BaseInstrument):
    """The asyncio server's Admin UI reporting (see :meth:`greensio.AsyncServer.instrument`)."""

    def __init__(self, sio: Any, auth: Any = None, mode: str = 'development', read_only: bool = False,
                 server_id: str | None = None, namespace: str = '/admin', server_stats_interval: float = 2) -> None:
        super().__init__(sio, auth, mode, read_only, server_id, namespace, server_stats_interval)
        self.stop_event: asyncio.Event | None = None  # made in the event loop, by the stats task
        self._reports: set[asyncio.Task] = set()  # the loop keeps only weak references to tasks
        self.instrument()

    async def shutdown(self) -> None:
        """Stop sending ``server_stats``."""
        self.stopped = True
        if self.stop_event is not None:
            self.stop_event.set()
        task, self.stats_task = self.stats_task, None
        if task is not None:
            await task

    # -- the admin namespace ------------------------------------------------------

    async def admin_connect(self, sid: str, environ: dict, client_auth: Any) -> None:
        new_session = None
        if self._needs_login(client_auth):
            check = self.credentials.check_function
            if check is not None:
                allowed = check(client_auth)
                if inspect.isawaitable(allowed):
                    allowed = await allowed
            else:
                allowed = self.credentials.matches(client_auth)
            if not allowed:
                self._refuse(environ)
            if check is None:
                new_session = self._new_session()
        # a task, so it runs after this handler returned and the CONNECT went out (the
        # JS client would also keep events that arrive before its CONNECT)
        self._spawn(self._welcome(sid, new_session))

    async def _welcome(self, sid: str, session_id: str | None) -> None:
        ns = self.admin_namespace
        if session_id is not None:
            await self.sio.emit('session', session_id, to=sid, namespace=ns)
        await self.sio.emit('config', {'supportedFeatures': self.supported_features()}, to=sid, namespace=ns)
        if self.development:
            await self.sio.emit('all_sockets', self.all_sockets(), to=sid, namespace=ns)
        if self._announcing:  # the other workers' sockets
            await self.sio.server_side_emit(f'{ANNOUNCE_EVENT}:{ns}')
        self._start_stats()

    async def _announce_now(self) -> None:
        for announcement in self._announcements(now_due=True):
            await self.sio.emit('socket_connected', announcement, namespace=self.admin_namespace)

    async def admin_emit(self, _: str, namespace: str, room_filter: Any, event: str, *data: Any) -> None:
        await self.sio.emit(event, data, to=room_filter or None, namespace=namespace)

    async def admin_enter_room(self, _: str, namespace: str, room: Any, room_filter: Any = None) -> None:
        await self.sio.sockets_join(room, to=room_filter or None, namespace=namespace)

    async def admin_leave_room(self, _: str, namespace: str, room: Any, room_filter: Any = None) -> None:
        await self.sio.sockets_leave(room, to=room_filter or None, namespace=namespace)

    async def admin_disconnect(self, _: str, namespace: str, close: Any = False, room_filter: Any = None) -> None:
        await self.sio.disconnect_sockets(to=room_filter or None, namespace=namespace, close=bool(close))

    # -- stats ----------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._reports.add(task)
        task.add_done_callback(self._reports.discard)

    def _report(self, event: str, args: tuple) -> None:
        """Emit to the Admin UI from a plain function (the manager's room methods)."""
        self._spawn(self.sio.emit(event, args, namespace=self.admin_namespace))

    def _start_stats(self) -> None:
        if self.stats_task is None and not self.stopped:
            self.stop_event = asyncio.Event()
            self.stats_task = asyncio.ensure_future(self._stats_loop())

    async def _stats_loop(self) -> None:
        stop = self.stop_event
        assert stop is not None
        while not self.stopped:
            await self.sio.emit('server_stats', self.server_stats(), namespace=self.admin_namespace)
            for announcement in self._announcements():
                await self.sio.emit('socket_connected', announcement, namespace=self.admin_namespace)
            try:
                await asyncio.wait_for(stop.wait(), self.server_stats_interval)
                break
            except asyncio.TimeoutError:  # noqa: UP041 - not the builtin before Python 3.11
                pass

    # -- hooks (installed by instrument()) ------------------------------------------

    # the engine awaits a handler only if it is a coroutine function
    async def _handle_eio_connect(self, eio_sid: str, environ: dict) -> Any:  # type: ignore[override]
        self.event_buffer.push('rawConnection')
        self._start_stats()
        return await self.original['eio_connect'](eio_sid, environ)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: str | None = None) -> Any:  # type: ignore[override]
        self.event_buffer.push('rawDisconnection', reason)
        return await self.original['eio_disconnect'](eio_sid, reason)

    async def _handle_eio_message(self, eio_sid: str, data: str | bytes) -> Any:  # type: ignore[override]
        traffic = self.traffic
        traffic[0] += 1
        traffic[1] += len(data)
        return await self.original['message_handler'](eio_sid, data)

    async def _trigger_event(self, event: str, namespace: str, *args: Any) -> Any:
        trigger = self.original['_trigger_event']
        sid = args[0]
        ns = self.admin_namespace
        if event == 'connect':
            self.connected_at[sid] = time.time()
            result = await trigger(event, namespace, *args)  # a refusal raises or returns False: nothing to report
            if result is not False:
                await self.sio.emit('socket_connected', (self.serialize_socket(sid, namespace), _now_iso()),
                                    namespace=ns, skip_sid=sid)
            else:
                self.connected_at.pop(sid, None)
            return result
        if event == 'disconnect':
            self.connected_at.pop(sid, None)
            reason = args[1] if len(args) > 1 else ''
            await self.sio.emit('socket_disconnected', (namespace, sid, reason, _now_iso()), namespace=ns)
        elif self._reported(namespace):
            await self.sio.emit('event_received', (namespace, sid, [event, *args[1:]], _now_iso()), namespace=ns)
        return await trigger(event, namespace, *args)

    def _basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: str | None = None) -> None:
        self.original['basic_enter_room'](sid, namespace, room, eio_sid)
        if room is not None:
            self._report('room_joined', (namespace, room, sid, _now_iso()))

    def _basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        self.original['basic_leave_room'](sid, namespace, room)
        if room is not None:
            self._report('room_left', (namespace, room, sid, _now_iso()))

    def _basic_close_room(self, room: Any, namespace: str) -> None:
        members = self._targets(namespace, room) if room is not None else []
        self.original['basic_close_room'](room, namespace)
        for sid, _eio_sid in members:
            self._report('room_left', (namespace, room, sid, _now_iso()))

    async def _manager_emit(self, event: str, data: Any, namespace: str, room: Any = None, skip_sid: Any = None,
                            callback: Callable | None = None, to: Any = None, **kwargs: Any) -> Any:
        result = await self.original['emit'](event, data, namespace, room=room, skip_sid=skip_sid,
                                             callback=callback, to=to, **kwargs)
        if self._reported(namespace):
            skip = set(skip_sid) if isinstance(skip_sid, (list, tuple, set)) else {skip_sid}
            args, now = self._event_args(event, data), _now_iso()
            for sid, _eio_sid in self._targets(namespace, to or room):
                if sid not in skip:
                    await self.sio.emit('event_sent', (namespace, sid, args, now), namespace=self.admin_namespace)
        return result
