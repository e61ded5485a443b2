"""Per-connection Socket.IO state on the client side (sans-IO).

Core ring.  One ``ClientSession`` lives as long as a client object; each
Engine.IO connection starts with ``open()`` (which returns the CONNECT
packets to send) and ends with ``connection_lost()``.  In between,
``receive(message)`` turns every Engine.IO message from the server into a
list of events (``client_events.py``), and ``emit``/``ack``/``disconnect``
build the packets the client sends.

How this works: every namespace the client asked for is in one of three
states, and each packet type from the server is legal only in the states
listed in ``_TRANSITIONS`` (anything else is dropped and reported)::

    (absent) --open()--> CONNECTING --CONNECT--------> CONNECTED
                         CONNECTING --CONNECT_ERROR--> FAILED
                         CONNECTING --DISCONNECT-----> FAILED    (refused, no reason given)
                         CONNECTED  --CONNECT_ERROR--> FAILED    (the server revoked it)
                         CONNECTED  --DISCONNECT-----> (absent)
                         CONNECTED  --EVENT/ACK------> CONNECTED
                         CONNECTING --EVENT----------> CONNECTING (held until CONNECT)

Events that arrive before the namespace's CONNECT are held and released
right after it, as the JavaScript client does: python-socketio's and
greensio's servers run the connect handler (which may emit to the new
client) before they send CONNECT.  Ack ids count from 1 per namespace and
restart with each connection, with the callbacks they refer to.

Connection state recovery: a server that offers it answers CONNECT with a
private id (``pid``) and appends an offset to every event that expects no
ack.  The session keeps both per namespace across connections (the offset
is taken off before handlers see the event) and sends them in the next
CONNECT; the server's answer with the same pid means the namespace was
recovered.  Leaving on purpose, or being disconnected by the server, forgets
them.
"""

from typing import Any

from . import packet as pk
from .client_events import (
    AckArrived,
    ClientEvent,
    EventArrived,
    NamespaceConnected,
    NamespaceDisconnected,
    NamespaceRefused,
    PacketDropped,
)
from .errors import LocalProtocolError, RemoteProtocolError
from .payload import to_args

CONNECTING, CONNECTED, FAILED = 'connecting', 'connected', 'failed'

#: (state, packet type from the server) -> next state; ``None`` is "absent".
_TRANSITIONS: dict[tuple[str | None, int], str | None] = {
    (CONNECTING, pk.CONNECT): CONNECTED,
    (CONNECTING, pk.CONNECT_ERROR): FAILED,
    (CONNECTING, pk.DISCONNECT): FAILED,
    (CONNECTING, pk.EVENT): CONNECTING,
    (CONNECTED, pk.CONNECT_ERROR): FAILED,
    (CONNECTED, pk.DISCONNECT): None,
    (CONNECTED, pk.EVENT): CONNECTED,
    (CONNECTED, pk.ACK): CONNECTED,
}
_KIND = {pk.BINARY_EVENT: pk.EVENT, pk.BINARY_ACK: pk.ACK}

#: Events a server may send to a namespace before accepting it; they are
#: held in memory until its CONNECT arrives, so a server cannot grow it without end.
MAX_EARLY_EVENTS = 256


class ClientSession:
    def __init__(self, packet_class: type[pk.Packet] = pk.Packet) -> None:
        self.packet_class = packet_class
        self.eio_sid: str | None = None
        self.states: dict[str, str] = {}
        self.namespaces: dict[str, str] = {}  # connected namespace -> its sid
        self.failed: list[str] = []
        self.callbacks: dict[str, dict[int, Any]] = {}
        self._last_ack_id: dict[str, int] = {}
        self._early: dict[str, list[EventArrived]] = {}
        self._pending: pk.Packet | None = None
        self.pids: dict[str, str] = {}  # namespace -> the server's private session id
        self.offsets: dict[str, str] = {}  # namespace -> offset of the last event received

    # -- the client's side ---------------------------------------------------------

    def open(self, eio_sid: str | None, namespaces: list[str], auth: Any) -> list[pk.Packet]:
        """A new Engine.IO connection: the CONNECT packets for ``namespaces``."""
        self.connection_lost()
        self.failed = []
        self.eio_sid = eio_sid
        packets = []
        for namespace in namespaces:
            self.states[namespace] = CONNECTING
            # python-socketio sends {} without auth; the JS servers accept both
            data = auth or {}
            pid = self.pids.get(namespace)
            if pid is not None and isinstance(data, dict):
                data = {**data, 'pid': pid}
                if namespace in self.offsets:
                    data['offset'] = self.offsets[namespace]
            packets.append(self.packet_class(pk.CONNECT, data=data, namespace=namespace))
        return packets

    def emit(self, namespace: str, event: str, data: Any = None, callback: Any = None) -> pk.Packet:
        """An EVENT packet; with ``callback``, an ack id that ``AckArrived`` will carry back."""
        if self.states.get(namespace) != CONNECTED:
            raise LocalProtocolError(f'{namespace} is not a connected namespace.')
        if not isinstance(event, str):
            raise LocalProtocolError('event names are strings')
        if event in pk.RESERVED_EVENTS:
            # a server treats these as an impersonation attempt and drops the connection
            raise LocalProtocolError(f'"{event}" is a reserved event name')
        ack_id = None
        if callback is not None:
            ack_id = self._last_ack_id.get(namespace, 0) + 1
            self._last_ack_id[namespace] = ack_id
            self.callbacks.setdefault(namespace, {})[ack_id] = callback
        return self.packet_class(pk.EVENT, data=[event, *to_args(data)], namespace=namespace, id=ack_id)

    def ack(self, namespace: str, ack_id: int, result: Any) -> pk.Packet:
        """The ACK for a server's event; a handler's tuple result is several values."""
        return self.packet_class(pk.ACK, data=to_args(result), namespace=namespace, id=ack_id)

    def disconnect(self) -> list[pk.Packet]:
        """DISCONNECT packets for every connected namespace (state ends with ``connection_lost``).

        Leaving on purpose: nothing is recovered afterwards.
        """
        self.pids.clear()
        self.offsets.clear()
        return [self.packet_class(pk.DISCONNECT, namespace=ns) for ns in self.namespaces]

    def connection_lost(self) -> list[str]:
        """Forget the connection; returns the namespaces that were connected."""
        lost = list(self.namespaces)
        self.eio_sid = None
        self.states = {}
        self.namespaces = {}
        self.callbacks = {}
        self._last_ack_id = {}
        self._early = {}
        self._pending = None
        return lost

    # -- the server's side ---------------------------------------------------------

    def receive(self, message: str | bytes) -> list[ClientEvent]:
        """Events for one Engine.IO message (none while a binary packet is incomplete)."""
        pending = self._pending
        if pending is not None:
            if isinstance(message, str):
                self._pending = None
                raise RemoteProtocolError(
                    f'text packet while {pending.attachment_count - len(pending.attachments)} '
                    'binary attachments were pending'
                )
            if not pending.add_attachment(message):
                return []
            self._pending = None
            return self._handle_packet(pending)
        if not isinstance(message, str) and self.packet_class.uses_binary_events:
            raise RemoteProtocolError('binary attachment without a binary packet')
        pkt = self.packet_class(encoded_packet=message)
        if pkt.attachment_count:
            self._pending = pkt
            return []
        return self._handle_packet(pkt)

    def _handle_packet(self, pkt: pk.Packet) -> list[ClientEvent]:
        namespace = pkt.namespace or '/'
        kind = _KIND.get(pkt.packet_type, pkt.packet_type)
        state = self.states.get(namespace)
        key = (state, kind)
        if key not in _TRANSITIONS:
            what = pk.packet_names[pkt.packet_type]
            return [PacketDropped(namespace=namespace, reason=f'{what} while the namespace is {state or "absent"}')]
        new_state = _TRANSITIONS[key]
        data = pkt.data
        if kind == pk.EVENT:
            event = EventArrived(namespace=namespace, event=data[0], args=data[1:], ack_id=pkt.id)
            if state == CONNECTED:
                return [self._take_offset(event)]
            early = self._early.setdefault(namespace, [])
            if len(early) >= MAX_EARLY_EVENTS:
                return [PacketDropped(namespace=namespace, reason='too many events before CONNECT')]
            early.append(event)
            return []
        if kind == pk.ACK:
            callback = self.callbacks.get(namespace, {}).pop(pkt.id, None)  # type: ignore[arg-type]
            if callback is None:
                return [PacketDropped(namespace=namespace, reason=f'unknown ack id {pkt.id}')]
            return [AckArrived(namespace=namespace, ack_id=pkt.id, args=data, callback=callback)]  # type: ignore[arg-type]
        self._leave(namespace, new_state)
        if kind == pk.CONNECT:
            sid = data.get('sid') if isinstance(data, dict) else None
            if not isinstance(sid, str):  # python-socketio falls back to the Engine.IO sid
                sid = self.eio_sid or ''
            self.namespaces[namespace] = sid
            pid = data.get('pid') if isinstance(data, dict) else None
            recovered = isinstance(pid, str) and pid == self.pids.get(namespace)
            if not recovered:
                self.offsets.pop(namespace, None)
            if isinstance(pid, str):
                self.pids[namespace] = pid
            else:
                self.pids.pop(namespace, None)
            early = [self._take_offset(event) for event in self._early.pop(namespace, [])]
            return [NamespaceConnected(namespace=namespace, sid=sid, recovered=recovered), *early]
        self.pids.pop(namespace, None)  # refused or sent away: a new session next time
        self.offsets.pop(namespace, None)
        if new_state == FAILED:
            self.failed.append(namespace)
            if kind == pk.DISCONNECT:
                return [NamespaceRefused(namespace=namespace, args=())]
            args = tuple(data) if isinstance(data, list) else (() if data is None else (data,))
            return [NamespaceRefused(namespace=namespace, args=args)]
        return [NamespaceDisconnected(namespace=namespace)]

    def _take_offset(self, event: EventArrived) -> EventArrived:
        """Remember and remove the offset a recovering server put last on an event without ack."""
        args = event.args
        if event.ack_id is None and event.namespace in self.pids and args and isinstance(args[-1], str):
            self.offsets[event.namespace] = args[-1]
            return EventArrived(namespace=event.namespace, event=event.event, args=args[:-1], ack_id=None)
        return event

    def _leave(self, namespace: str, new_state: str | None) -> None:
        """Enter ``new_state``; a namespace that stops being connected loses its acks."""
        if new_state is None:
            self.states.pop(namespace, None)
        else:
            self.states[namespace] = new_state
        if new_state != CONNECTED:
            self.namespaces.pop(namespace, None)
            self.callbacks.pop(namespace, None)
            self._early.pop(namespace, None)
