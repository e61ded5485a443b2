"""Per-connection Socket.IO state on the server side.

One ``ServerConnection`` per Engine.IO connection.  ``receive(message)``
turns each Engine.IO message into at most one event (see ``events.py``),
reassembling binary attachments and enforcing the protocol rules that need
state: attachments only for joined namespaces, no text while attachments are
pending, no CONNECT_ERROR from a client, a bounded number of namespaces.
"""

from typing import Any

from . import packet as pk
from .errors import RemoteProtocolError
from .events import (
    AckReceived,
    ConnectRequested,
    DisconnectRequested,
    EventReceived,
    PacketIgnored,
    ServerEvent,
)

#: Namespaces one connection may join: with ``namespaces='*'`` each new name
#: costs the server a sid, rooms and a session, so the count is bounded.
MAX_NAMESPACES = 64

#: Events of one connection waiting for a handler or running, by default: each
#: holds its arguments and a greenlet or task, and a client can send them far
#: faster than slow handlers finish (HTTP/2 servers allow 100 concurrent streams).
MAX_EVENTS_IN_FLIGHT = 100


class ServerConnection:
    def __init__(self, eio_sid: str, packet_class: type[pk.Packet] = pk.Packet) -> None:
        self.eio_sid = eio_sid
        self.packet_class = packet_class
        self.namespaces: dict[str, str] = {}  # namespace -> sid
        self.sessions: dict[str, dict[str, Any]] = {}  # namespace -> user session
        # With connection state recovery: each namespace's private session id,
        # and the namespaces this connection recovered rather than opened.
        self.pids: dict[str, str] = {}
        self.recovered: set[str] = set()
        self._pending: pk.Packet | None = None
        # Events handed to handlers and not finished yet.  The shell counts
        # them and stops reading the client while it is at the server's bound;
        # ``resume`` is the shell's wake-up for that paused reader, and
        # ``pauses`` how often reading paused (the first one is logged).
        self.events_in_flight = 0
        self.resume: Any = None
        self.pauses = 0

    def receive(self, message: str | bytes) -> ServerEvent | None:
        pending = self._pending
        if pending is not None:
            if isinstance(message, str):
                raise RemoteProtocolError(
                    f'text packet while {pending.attachment_count - len(pending.attachments)} '
                    'binary attachments were pending'
                )
            if not pending.add_attachment(message):
                return None
            self._pending = None
            return self._event(pending)
        if not isinstance(message, str) and self.packet_class.uses_binary_events:
            raise RemoteProtocolError('binary attachment without a binary packet')
        pkt = self.packet_class(encoded_packet=message)
        if pkt.attachment_count:
            if pkt.namespace not in self.namespaces:
                raise RemoteProtocolError('binary packet for a namespace the client has not joined')
            self._pending = pkt
            return None
        return self._event(pkt)

    def _event(self, pkt: pk.Packet) -> ServerEvent:
        namespace = pkt.namespace or '/'
        kind = pkt.packet_type
        if kind == pk.CONNECT:
            if len(self.namespaces) >= MAX_NAMESPACES and namespace not in self.namespaces:
                raise RemoteProtocolError(f'more than {MAX_NAMESPACES} namespaces on one connection')
            return ConnectRequested(namespace=namespace, auth=pkt.data)
        if kind == pk.CONNECT_ERROR:
            raise RemoteProtocolError('a client cannot send CONNECT_ERROR')
        sid = self.namespaces.get(namespace)
        if sid is None:
            return PacketIgnored(namespace=namespace, reason='namespace not connected')
        if kind == pk.DISCONNECT:
            return DisconnectRequested(namespace=namespace, sid=sid)
        data = pkt.data
        if kind == pk.EVENT or kind == pk.BINARY_EVENT:
            return EventReceived(namespace=namespace, sid=sid, event=data[0], args=data[1:], ack_id=pkt.id)
        return AckReceived(namespace=namespace, sid=sid, ack_id=pkt.id, args=data)  # type: ignore[arg-type]

    def forget_pending(self) -> None:
        """Drop a partly received binary packet (on disconnect)."""
        self._pending = None
