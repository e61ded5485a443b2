"""The Admin UI reporting of the green server (``Server.instrument()``).

Integration ring, green twin: the payloads, the credentials check and the
hooks' places are ``common/base_admin.py``'s; here is how the green server
waits and emits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..common.base_admin import ANNOUNCE_EVENT, BaseInstrument, _now_iso


class InstrumentedServer(BaseInstrument):
    """The green server's Admin UI reporting (see :meth:`greensio.Server.instrument`)."""

    def __init__(self, sio: Any, auth: Any = None, mode: str = 'development', read_only: bool = False,
                 server_id: str | None = None, namespace: str = '/admin', server_stats_interval: float = 2) -> None:
        super().__init__(sio, auth, mode, read_only, server_id, namespace, server_stats_interval)
        self.stop_event = sio.eio.create_event()
        self.instrument()

    def shutdown(self) -> None:
        """Stop sending ``server_stats``."""
        self.stopped = True
        self.stop_event.set()
        task, self.stats_task = self.stats_task, None
        if task is not None:
            task.join()

    # -- the admin namespace ------------------------------------------------------

    def admin_connect(self, sid: str, environ: dict, client_auth: Any) -> None:
        new_session = None
        if self._needs_login(client_auth):
            check = self.credentials.check_function
            if not (check(client_auth) if check is not None else self.credentials.matches(client_auth)):
                self._refuse(environ)
            if check is None:
                new_session = self._new_session()
        # a task, so it runs after this handler returned and the CONNECT went out (the
        # JS client would also keep events that arrive before its CONNECT)
        self.sio.start_background_task(self._welcome, sid, new_session)

    def _welcome(self, sid: str, session_id: str | None) -> None:
        ns = self.admin_namespace
        if session_id is not None:
            self.sio.emit('session', session_id, to=sid, namespace=ns)
        self.sio.emit('config', {'supportedFeatures': self.supported_features()}, to=sid, namespace=ns)
        if self.development:
            self.sio.emit('all_sockets', self.all_sockets(), to=sid, namespace=ns)
        if self._announcing:  # the other workers' sockets
            self.sio.server_side_emit(f'{ANNOUNCE_EVENT}:{ns}')
        self._start_stats()

    def _announce_now(self) -> None:
        for announcement in self._announcements(now_due=True):
            self.sio.emit('socket_connected', announcement, namespace=self.admin_namespace)

    def admin_emit(self, _: str, namespace: str, room_filter: Any, event: str, *data: Any) -> None:
        self.sio.emit(event, data, to=room_filter or None, namespace=namespace)

    # The UI's filter is a room or, from a socket's own buttons, its sid; the
    # cluster methods reach the sockets it names on every worker.
    def admin_enter_room(self, _: str, namespace: str, room: Any, room_filter: Any = None) -> None:
        self.sio.sockets_join(room, to=room_filter or None, namespace=namespace)

    def admin_leave_room(self, _: str, namespace: str, room: Any, room_filter: Any = None) -> None:
        self.sio.sockets_leave(room, to=room_filter or None, namespace=namespace)

    def admin_disconnect(self, _: str, namespace: str, close: Any = False, room_filter: Any = None) -> None:
        self.sio.disconnect_sockets(to=room_filter or None, namespace=namespace, close=bool(close))

    # -- stats ----------------------------------------------------------------------

    def _start_stats(self) -> None:
        if self.stats_task is None and not self.stopped:
            self.stats_task = self.sio.start_background_task(self._stats_loop)

    def _stats_loop(self) -> None:
        while not self.stopped:
            self.sio.emit('server_stats', self.server_stats(), namespace=self.admin_namespace)
            for announcement in self._announcements():
                self.sio.emit('socket_connected', announcement, namespace=self.admin_namespace)
            if self.stop_event.wait(self.server_stats_interval):
                break

    # -- hooks (installed by instrument()) ------------------------------------------

    def _trigger_event(self, event: str, namespace: str, *args: Any) -> Any:
        trigger = self.original['_trigger_event']
        sid = args[0]
        if event == 'connect':
            self.connected_at[sid] = time.time()
            result = trigger(event, namespace, *args)  # a refusal raises or returns False: nothing to report
            if result is not False:
                self.sio.emit('socket_connected', (self.serialize_socket(sid, namespace), _now_iso()),
                              namespace=self.admin_namespace, skip_sid=sid)
            else:
                self.connected_at.pop(sid, None)
            return result
        if event == 'disconnect':
            self.connected_at.pop(sid, None)
            reason = args[1] if len(args) > 1 else ''
            self.sio.emit('socket_disconnected', (namespace, sid, reason, _now_iso()), namespace=self.admin_namespace)
        elif self._reported(namespace):
            self.sio.emit('event_received', (namespace, sid, [event, *args[1:]], _now_iso()),
                          namespace=self.admin_namespace)
        return trigger(event, namespace, *args)

    def _basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: str | None = None) -> None:
        self.original['basic_enter_room'](sid, namespace, room, eio_sid)
        if room is not None:
            self.sio.emit('room_joined', (namespace, room, sid, _now_iso()), namespace=self.admin_namespace)

    def _basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        self.original['basic_leave_room'](sid, namespace, room)
        if room is not None:
            self.sio.emit('room_left', (namespace, room, sid, _now_iso()), namespace=self.admin_namespace)

    def _basic_close_room(self, room: Any, namespace: str) -> None:
        members = self._targets(namespace, room) if room is not None else []
        self.original['basic_close_room'](room, namespace)
        for sid, _eio_sid in members:
            self.sio.emit('room_left', (namespace, room, sid, _now_iso()), namespace=self.admin_namespace)

    def _manager_emit(self, event: str, data: Any, namespace: str, room: Any = None, skip_sid: Any = None,
                      callback: Callable | None = None, to: Any = None, **kwargs: Any) -> Any:
        result = self.original['emit'](event, data, namespace, room=room, skip_sid=skip_sid, callback=callback,
                                       to=to, **kwargs)
        if self._reported(namespace):
            skip = set(skip_sid) if isinstance(skip_sid, (list, tuple, set)) else {skip_sid}
            args, now = self._event_args(event, data), _now_iso()
            for sid, _eio_sid in self._targets(namespace, to or room):
                if sid not in skip:
                    self.sio.emit('event_sent', (namespace, sid, args, now), namespace=self.admin_namespace)
        return result
