"""A session's life in the green server: connect and disconnect handlers, messages, heartbeat timers.

Shell ring.  The core (``_core.eio_server``) reports what happens to a
session through its listener (``message``, ``wake_poll``, ``closed``); this
part of the server runs the application's handlers for it, and gives each
session one timer, armed at the core's ``deadline`` (never a sweep over all
sessions, which would make a deadline late).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._core import websocket as wsproto
from .._core.eio_codec import CLOSE_PACKET, PING_PACKET
from .._core.eio_http import Response
from .._core.eio_server import Reason, ServerSession

if TYPE_CHECKING:
    from .socket import Socket

_INF = float('inf')
_monotonic = time.monotonic


class SessionLife:
    """The green ``Server``'s session bookkeeping (a part of :class:`greensio.engineio.server.Server`)."""

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
