"""Engine.IO v4, client side, without I/O: handshake, long-polling, upgrade probe, heartbeat, close.

Core ring, the twin of ``eio_server``.  A client shell (requests and
websocket-client; aiohttp) owns the HTTP requests, the websocket and the
timer; this module decides.  Time comes in as ``now``; nothing here reads
a clock, does I/O or calls user code.

How a shell drives it:

1. Handshake: GET ``url?`` + :meth:`EngineClient.query` ``('polling')`` and
   give the body to :meth:`EngineClient.receive_handshake`, or open a
   websocket on ``query('websocket')`` and give its first message to the
   same method.  The OPEN packet is validated (``eio_codec.parse_open``).
2. Long-polling: while :meth:`EngineClient.may_poll` is true keep one GET
   open (``poll_started()``, then ``receive_poll(body)``, or
   ``transport_failed()`` on an error status or a network error).  The
   writer POSTs :meth:`EngineClient.take_post_body` (batched by the
   server's ``maxPayload``), then calls ``post_done()``.
3. Outbound packets: :meth:`EngineClient.send` returns True when the shell
   writes on the websocket now (``packet.frame(mask=True)`` or
   ``packet.message()``); otherwise the packet waits for the writer, which
   ``wake_writer`` starts.
4. Websocket messages go through :meth:`EngineClient.receive_ws`, which
   returns a MESSAGE payload, or None for a control packet handled here
   (a PING's PONG goes to the outbox: the writer, woken, writes what
   :meth:`EngineClient.take_ws_packets` returns).
5. Upgrade (when :meth:`EngineClient.upgrade_possible`): open a websocket on
   ``query('websocket')``, write :meth:`EngineClient.start_probe`'s packet,
   feed replies to :meth:`EngineClient.receive_probe`; then, once
   :attr:`EngineClient.upgrade_ready` (the GET and POST in flight have
   returned: the server releases the GET with a NOOP), write what
   :meth:`EngineClient.finish_upgrade` returns.
6. The heartbeat: the server pings; if no PING arrives by ``deadline``
   (ping interval + ping timeout after the last one) ``handle_deadline``
   ends the connection.

As on the server, three effects reach the shell through a
:class:`ClientListener`: ``message`` (payloads of a polling body, in order),
``wake_writer`` (packets wait to be sent) and ``closed`` (once).

States (``EngineClient.state``):

==========  ===================================  ==========  ===============================
state       event                                next        effect
==========  ===================================  ==========  ===============================
CONNECTING  OPEN (polling body)                  POLLING     heartbeat deadline armed
CONNECTING  OPEN (websocket message)             WEBSOCKET   heartbeat deadline armed
POLLING     ``start_probe``                      PROBING     ``2probe`` on the new websocket
PROBING     ``3probe``                           PAUSING     no new GET or POST
PROBING     anything else, websocket lost        POLLING     close the probe websocket
PAUSING     GET and POST in flight done          WEBSOCKET   ``5`` then the outbox on the ws
any open    PING                                 same        PONG; deadline moved
any open    CLOSE from the server                CLOSED      ``server disconnect``
any open    no PING by the deadline, bad data,   CLOSED      ``transport error``
            failed request, websocket lost
any open    ``close()``                          CLOSED      CLOSE queued for the writer
==========  ===================================  ==========  ===============================
"""

from __future__ import annotations

from typing import Protocol

from .eio_codec import (
    CLOSE,
    CLOSE_PACKET,
    MESSAGE,
    NOOP,
    OPEN,
    PING,
    PING_PROBE,
    PONG_PACKET,
    PROTOCOL_VERSION,
    SEPARATOR,
    UPGRADE_PACKET,
    OpenInfo,
    OutPacket,
    decode_packet,
    parse_open,
)
from .errors import LocalProtocolError, RemoteProtocolError


class ClientReason:
    """Why a connection ended: python-engineio's ``Client.reason`` strings.

    python-engineio's client has no ``ping timeout`` reason: a silent server
    is a ``transport error`` there, and here too.
    """

    CLIENT_DISCONNECT = 'client disconnect'
    SERVER_DISCONNECT = 'server disconnect'
    TRANSPORT_ERROR = 'transport error'


CONNECTING, POLLING, PROBING, PAUSING, WEBSOCKET, CLOSED = (
    'connecting', 'polling', 'probing', 'pausing', 'websocket', 'closed')
_OPEN_STATES = (POLLING, PROBING, PAUSING, WEBSOCKET)
_INF = float('inf')


class ClientListener(Protocol):
    """What the client shell provides (see the module docstring)."""

    def message(self, data: str | bytes) -> None: ...

    def wake_writer(self) -> None: ...

    def closed(self, reason: str) -> None: ...


class EngineClient:
    """One Engine.IO connection, as the client sees it."""

    def __init__(self, listener: ClientListener, *, transports: tuple[str, ...] = ('polling', 'websocket'),
                 max_packets_per_post: int | None = None) -> None:
        if not transports or any(t not in ('polling', 'websocket') for t in transports):
            raise LocalProtocolError(f'unknown transports {transports!r}')
        self.listener = listener
        self.transports = transports
        #: a cap on packets per POST besides maxPayload (python-engineio servers refuse more than 16)
        self.max_packets_per_post = max_packets_per_post
        self.state = CONNECTING
        self.transport = transports[0]
        self.info: OpenInfo | None = None
        self.sid: str | None = None
        #: when ``handle_deadline`` is due: no PING by then means the server is gone
        self.deadline = _INF
        self.close_reason: str | None = None
        self._outbox: list[OutPacket] = []
        self._get_in_flight = False
        self._post_in_flight = False

    def __repr__(self) -> str:
        return f'<EngineClient {self.sid} {self.state}>'

    # -- handshake -------------------------------------------------------------------------------

    def query(self, transport: str) -> str:
        """The query string of a request on ``transport`` (the shell may add a ``t=`` cache buster)."""
        if transport not in self.transports:
            raise LocalProtocolError(f'transport {transport!r} is not enabled')
        query = f'EIO={PROTOCOL_VERSION}&transport={transport}'
        return query if self.sid is None else f'{query}&sid={self.sid}'

    def receive_handshake(self, data: str | bytes, now: float) -> OpenInfo:
        """The handshake's answer: a polling body, or the websocket's first message.

        Raises :class:`RemoteProtocolError` if it is not a valid OPEN packet
        (the connection attempt failed; nothing was reported as ``closed``).
        Packets after the OPEN in a polling body are handled as a poll's.
        """
        if self.state != CONNECTING:
            raise LocalProtocolError('the handshake is done already')
        if isinstance(data, bytes):
            try:
                data = data.decode('utf-8')
            except UnicodeDecodeError:
                raise RemoteProtocolError('handshake answer is not UTF-8') from None
        first, sep, rest = data.partition(SEPARATOR)
        if first[:1] != str(OPEN):
            raise RemoteProtocolError(f'handshake answer is not an OPEN packet: {first[:20]!r}')
        info = parse_open(first[1:])
        self.info = info
        self.sid = info.sid
        self.state = POLLING if self.transport == 'polling' else WEBSOCKET
        self.deadline = now + info.ping_interval + info.ping_timeout
        if sep:
            self._receive_packets(rest, now)
        return info

    def upgrade_possible(self) -> bool:
        """Whether to try the websocket upgrade now (the server offers it, this client allows it)."""
        return (self.state == POLLING and self.info is not None and 'websocket' in self.info.upgrades
                and 'websocket' in self.transports)

    # -- outbound ---------------------------------------------------------------------------------

    def send(self, packet: OutPacket) -> bool:
        """Queue ``packet``; True: the shell writes it on the websocket now.

        Otherwise it waits in the outbox for the writer (``wake_writer`` is
        called when the outbox was empty).  Dropped once closed.
        """
        state = self.state
        if state == WEBSOCKET:
            return True
        if state in _OPEN_STATES or state == CONNECTING:
            self._queue(packet)
        return False

    def _queue(self, packet: OutPacket) -> None:
        was_empty = not self._outbox
        self._outbox.append(packet)
        if was_empty:
            self.listener.wake_writer()

    def take_post_body(self) -> str | None:
        """The next POST body, or None (nothing to send, a POST in flight, or pausing for the upgrade).

        At least one packet, then as many as fit the server's ``maxPayload``
        (counted in UTF-8 bytes, separators included).  After ``close()`` the
        outbox, ending with the CLOSE, is still handed out.
        """
        if self._post_in_flight or not self._outbox or self.state in (PAUSING, WEBSOCKET, CONNECTING):
            return None
        limit = self.info.max_payload if self.info is not None else _INF
        cap = self.max_packets_per_post or len(self._outbox)
        texts: list[str] = []
        size = -1
        for packet in self._outbox:
            text = packet.text()
            size += 1 + len(text.encode('utf-8'))
            if texts and (size > limit or len(texts) >= cap):
                break
            texts.append(text)
        del self._outbox[:len(texts)]
        self._post_in_flight = True
        return SEPARATOR.join(texts)

    def take_ws_packets(self) -> list[OutPacket]:
        """What the outbox holds, for a shell whose websocket writer drains it."""
        packets, self._outbox = self._outbox, []
        return packets

    def post_done(self, ok: bool = True) -> None:
        """The POST returned (``ok``: with a 2xx); a failed one ends the connection."""
        self._post_in_flight = False
        if not ok:
            self._close(ClientReason.TRANSPORT_ERROR)

    # -- long-polling inbound ---------------------------------------------------------------------

    def may_poll(self) -> bool:
        """Whether the shell should start a GET now (none in flight, not pausing for the upgrade)."""
        return (self.state == POLLING or self.state == PROBING) and not self._get_in_flight

    def poll_started(self) -> None:
        if not self.may_poll():
            raise LocalProtocolError('one GET at a time, and none while pausing or upgraded')
        self._get_in_flight = True

    def receive_poll(self, body: str | bytes, now: float, *, binary: bool = False) -> None:
        """A GET's 200 body: messages go to ``listener.message`` in order; bad data ends the connection.

        ``binary``: the answer's Content-Type is ``application/octet-stream``,
        which the spec lets a sender use for one raw binary message.
        """
        self._get_in_flight = False
        if self.state not in _OPEN_STATES:
            return
        if binary and isinstance(body, bytes):
            self.listener.message(body)
            return
        try:
            text = body.decode('utf-8') if isinstance(body, bytes) else body
        except UnicodeDecodeError:
            self._close(ClientReason.TRANSPORT_ERROR)
            return
        if text:  # an empty body carries nothing (some servers answer a released poll so)
            self._receive_packets(text, now)

    def _receive_packets(self, text: str, now: float) -> None:
        try:
            packets = [decode_packet(part) for part in text.split(SEPARATOR)]
        except RemoteProtocolError:
            self._close(ClientReason.TRANSPORT_ERROR)
            return
        listener = self.listener
        for packet_type, data in packets:
            if self.state not in _OPEN_STATES:
                break
            if packet_type == MESSAGE:
                listener.message(data)
            else:
                self._control(packet_type, data, now)

    def transport_failed(self) -> None:
        """A request failed (error status, network error) or the websocket ended: ``transport error``."""
        self._get_in_flight = self._post_in_flight = False
        self._close(ClientReason.TRANSPORT_ERROR)

    # -- websocket inbound ------------------------------------------------------------------------

    def receive_ws(self, msg: str | bytes, now: float) -> str | bytes | None:
        """A websocket message: the MESSAGE payload, or None (handled here; dropped once closed)."""
        if self.state == WEBSOCKET:
            if type(msg) is str:
                if msg[:1] == '4':
                    return msg[1:]
                try:
                    packet_type, data = decode_packet(msg)
                except RemoteProtocolError:
                    self._close(ClientReason.TRANSPORT_ERROR)
                    return None
                self._control(packet_type, data, now)
                return None
            return msg
        return None

    def _control(self, packet_type: int, data: str | bytes, now: float) -> None:
        if packet_type == PING:
            info = self.info
            if info is not None:
                self.deadline = now + info.ping_interval + info.ping_timeout
            # on a websocket too: the reader does not write, the writer finds the PONG
            self._queue(PONG_PACKET)
        elif packet_type == CLOSE:
            self._close(ClientReason.SERVER_DISCONNECT)
        elif packet_type != NOOP:
            # OPEN again, PONG, UPGRADE: not something a v4 server sends now
            self._close(ClientReason.TRANSPORT_ERROR)

    # -- upgrade ------------------------------------------------------------------------------------

    def start_probe(self) -> OutPacket:
        """The websocket for the upgrade is open: write this ``2probe`` on it."""
        if not self.upgrade_possible():
            raise LocalProtocolError('no upgrade to probe')
        self.state = PROBING
        return PING_PROBE

    def receive_probe(self, msg: str | bytes) -> bool:
        """The probe websocket's message; False: the probe failed, close that websocket.

        ``3probe`` moves to PAUSING: no new GET or POST starts; once
        ``upgrade_ready``, ``finish_upgrade``.
        """
        if self.state == PROBING and msg == '3probe':
            self.state = PAUSING
            return True
        self.abort_probe()
        return False

    def abort_probe(self) -> None:
        """The probe websocket failed: carry on over long-polling."""
        if self.state in (PROBING, PAUSING):
            self.state = POLLING
            if self._outbox:
                self.listener.wake_writer()

    @property
    def upgrade_ready(self) -> bool:
        return self.state == PAUSING and not self._get_in_flight and not self._post_in_flight

    def finish_upgrade(self) -> list[OutPacket]:
        """Switch to the websocket; write these (``5``, then what waited) on it, in order."""
        if not self.upgrade_ready:
            raise LocalProtocolError('the upgrade is not ready: a GET or POST is in flight')
        self.state = WEBSOCKET
        self.transport = 'websocket'
        packets, self._outbox = [UPGRADE_PACKET, *self._outbox], []
        return packets

    # -- heartbeat and close ------------------------------------------------------------------------

    def handle_deadline(self, now: float) -> None:
        """The shell's timer fired: no PING since ``deadline`` ends the connection; else re-arm."""
        if now >= self.deadline and self.state in _OPEN_STATES:
            self._close(ClientReason.TRANSPORT_ERROR)

    def close(self) -> bool:
        """End the connection from this side; False if it had ended.

        A CLOSE packet is queued: on a websocket ``closed`` is reported and
        the shell writes ``CLOSE_PACKET`` before closing it; on long-polling
        the writer POSTs the outbox, which ends with it.
        """
        if self.state not in _OPEN_STATES:
            if self.state == CONNECTING:
                self.state = CLOSED
            return False
        if self.state != WEBSOCKET:
            self._outbox.append(CLOSE_PACKET)
            self.listener.wake_writer()
        self._close(ClientReason.CLIENT_DISCONNECT)
        return True

    def _close(self, reason: str) -> None:
        if self.state == CLOSED:
            return
        self.state = CLOSED
        self.close_reason = reason
        self.deadline = _INF
        if reason != ClientReason.CLIENT_DISCONNECT:
            self._outbox.clear()
        self.listener.closed(reason)
