"""One Engine.IO session as the application sees it (python-engineio's ``Socket``).

Shell ring.  A thin handle on the core's session (``_core.eio_server``): the
server's ``sockets`` dict holds these, and a send goes straight to the
session's websocket, or into its long-polling buffer.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .._core.eio_codec import OutPacket
from .._core.eio_server import Reason, ServerSession

if TYPE_CHECKING:
    from collections.abc import Callable

    from .server import Server

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

    def send_together(self, packets: list[OutPacket]) -> None:
        """Send several packets (a message and its binary attachments) in one write on a websocket."""
        frames = [packet.frame() for packet in packets if self.state.send(packet)]
        if frames:
            self.ws.send(b''.join(frames))

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

    def send_together(self, packets: list[OutPacket]) -> None:
        with self.server._lock:
            for packet in packets:
                self.state.send(packet)

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
