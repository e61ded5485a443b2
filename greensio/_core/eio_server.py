"""Engine.IO v4, server side, without I/O: request routing, sessions, heartbeats, upgrade, close.

Core ring.  A shell (gevent, asyncio; WSGI, ASGI, aiohttp, tornado) owns the
sockets, the timers and the greenlets or tasks; this module decides.  Time
comes in as ``now`` (seconds, any monotonic clock); nothing here reads a
clock, does I/O or calls user code.

How a shell drives it:

1. Every HTTP request goes to :meth:`EngineCore.route` with its method, raw
   query string and headers.  The answer is one of :class:`Refusal`,
   :class:`Preflight`, :class:`Handshake`, :class:`Poll`, :class:`Post`,
   :class:`WebSocketRequest` (defined in ``eio_http`` with the options,
   :class:`ServerConfig`); each carries the response headers (CORS) and
   builds its own :class:`Response`.
2. A handshake: the shell picks a sid, calls :meth:`EngineCore.open`, runs
   the application's connect handler, then :meth:`EngineCore.discard` (refused)
   or answers with :meth:`ServerSession.poll` (polling: the OPEN packet is the
   first thing buffered) or writes the returned OPEN packet (websocket).
3. Outbound packets go through :meth:`ServerSession.send`.  It returns
   ``True`` when the shell must write the packet on the session's websocket
   now (``packet.frame()`` or ``packet.message()``), ``False`` when the core
   buffered it for long-polling (or dropped it: the session is closed).
4. Inbound websocket messages go through :meth:`ServerSession.receive_ws`,
   which returns the MESSAGE payload (``str`` or ``bytes``) or ``None`` when
   it handled a control packet itself.  POST bodies go through
   :meth:`ServerSession.receive_post`.
5. Deadlines: ``session.deadline`` is the one time the shell must call
   :meth:`ServerSession.handle_deadline`.  It may move later without notice
   (the shell re-arms when the call finds it early); it moves earlier only
   in calls that say so in their docstring.

Three effects cross from one request to another, so they reach the shell
through a :class:`ServerListener` it provides (one per core, never user
code): ``message`` (MESSAGE payloads of a POST, in order), ``wake_poll`` (a
waiting GET can take its body with :meth:`ServerSession.finish_poll`) and
``closed`` (exactly once per session that was opened and not discarded,
after the core's state is final: the shell closes the websocket, if any,
and schedules the application's disconnect handler; it must not block).

The websocket per-message path allocates nothing but the payload's slice:
``receive_ws`` is a state compare and a slice compare returning the payload
(about one Python call over an inline check), and ``send`` returns a bool;
an :class:`OutPacket` caches its encodings, so a broadcast encodes once for
all recipients.  No event objects are built per message: events would cost
an allocation each on the hottest path, and a MESSAGE needs no more than
its payload.

Session states (``ServerSession.state``), every legal move:

=========  ==================================  =========  ======================================
state      event                               next       effect
=========  ==================================  =========  ======================================
POLLING    GET, packets buffered               POLLING    body now
POLLING    GET, nothing buffered               POLLING    the GET waits (``wake_poll`` later)
POLLING    GET while a GET waits               CLOSED     waiting GET gets ``1``; this one 400
POLLING    the GET's connection is lost        CLOSED     ``transport error``
POLLING    POST while a POST is read           CLOSED     400
POLLING    the POST's connection is lost       POLLING    nothing received (``post_aborted``)
POLLING    websocket with this sid             POLLING    upgrade reserved (a second one: 400)
POLLING    ``2probe`` on that websocket        PROBING    ``3probe``; waiting GET gets ``6``
PROBING    GET                                 PROBING    ``6`` now
PROBING    ``5``                               WEBSOCKET  buffered packets go to the websocket
PROBING    anything else, probe ws lost        POLLING    buffered packets stay for polling
WEBSOCKET  GET or POST                         WEBSOCKET  400
any open   CLOSE from the peer                 CLOSED     ``client disconnect``; waiting GET ``6``
any open   PONG missing at the deadline        CLOSED     ``ping timeout``; waiting GET ``1``
any open   bad packet, oversize POST           CLOSED     ``transport error``
any open   websocket ends                      CLOSED     ``transport close``
POLLING    server closes, no GET waits         CLOSING    ``1`` buffered for the next GET
CLOSING    GET, or the drain deadline          CLOSED     buffered packets and ``1``
=========  ==================================  =========  ======================================
"""

from __future__ import annotations

import secrets
from typing import Any, Protocol

from .eio_codec import (
    CLOSE,
    CLOSE_PACKET,
    MESSAGE,
    NOOP_PACKET,
    OPEN,
    PING_PACKET,
    PONG,
    PONG_PROBE,
    PROTOCOL_VERSION,
    OutPacket,
    decode_binary_body,
    decode_payload,
    encode_payload,
    handshake,
)
from .eio_http import (
    BAD_HANDSHAKE_METHOD,
    BAD_REQUEST,
    FORBIDDEN,
    MAX_JSONP_INDEX_DIGITS,
    MAX_SID_LENGTH,
    UNKNOWN_SID,
    UNKNOWN_TRANSPORT,
    UNSUPPORTED_PROTOCOL_VERSION,
    CorsPolicy,
    Handshake,
    Headers,
    HttpRefused,
    Poll,
    Post,
    Preflight,
    Refusal,
    Route,
    ServerConfig,
    WebSocketRequest,
    bad_header_value,
    content_length_of,
    cookie_attributes,
    parse_query,
    refuse,
    unauthorized,
)
from .errors import LocalProtocolError, RemoteProtocolError


class Reason:
    """Why a session ended: python-engineio's ``Server.reason`` strings."""

    SERVER_DISCONNECT = 'server disconnect'
    CLIENT_DISCONNECT = 'client disconnect'
    PING_TIMEOUT = 'ping timeout'
    TRANSPORT_CLOSE = 'transport close'
    TRANSPORT_ERROR = 'transport error'


POLLING, PROBING, WEBSOCKET, CLOSING, CLOSED = 'polling', 'probing', 'websocket', 'closing', 'closed'
_INF = float('inf')


def generate_sid() -> str:
    """A fresh session id: 120 random bits, URL-safe (20 characters, as the reference server's)."""
    return secrets.token_urlsafe(15)


class ServerListener(Protocol):
    """What the shell provides: three effects that cross requests (see the module docstring)."""

    def message(self, session: ServerSession, data: str | bytes) -> None: ...

    def wake_poll(self, session: ServerSession) -> None: ...

    def closed(self, session: ServerSession, reason: str) -> None: ...


class EngineCore:
    """The sessions of one Engine.IO server, and the routing of its requests."""

    def __init__(self, config: ServerConfig, listener: ServerListener, *, websocket_available: bool = True) -> None:
        self.config = config
        self.listener = listener
        #: the shell can serve websockets (its server does the HTTP upgrade)
        self.websocket_available = websocket_available
        self.sessions: dict[str, ServerSession] = {}
        self._cors = CorsPolicy(config)

    # -- routing ---------------------------------------------------------------------------------

    def route(self, method: str, query: str, headers: Headers, *, scheme: str = 'http',
              origin_verdict: bool | None = None) -> Route:
        """What to do with an HTTP request to the Engine.IO path.

        ``headers.get`` takes lower-case names.  ``scheme`` is the request's
        (``wsgi.url_scheme``), for the same-origin check.  With a callable
        ``cors_allowed_origins`` the shell calls it (user code) when an
        Origin header is present and passes the answer as ``origin_verdict``.
        A websocket upgrade of an existing session reserves it here (a
        second one is refused at once).
        """
        config = self.config
        origin = headers.get('origin')
        cors = self._cors
        if origin is not None:
            if bad_header_value(origin):
                return refuse(BAD_REQUEST)
            if not cors.allows(origin, headers, scheme, origin_verdict):
                return refuse(FORBIDDEN, 403, 'Not an accepted origin')
        cors_headers = cors.headers(origin, method, headers)
        if method == 'OPTIONS':
            return Preflight(headers=cors_headers)
        params = parse_query(query)
        transport = params.get('transport')
        if transport not in config.transports:
            return refuse(UNKNOWN_TRANSPORT, headers=cors_headers)
        upgrade = (headers.get('upgrade') or '').lower() == 'websocket'
        if transport == 'websocket' and not self.websocket_available:
            return refuse(UNKNOWN_TRANSPORT, headers=cors_headers)
        jsonp_index = None
        j = params.get('j')
        if j is not None:
            if not (j.isascii() and j.isdigit() and len(j) <= MAX_JSONP_INDEX_DIGITS) or transport != 'polling':
                return refuse(BAD_REQUEST, headers=cors_headers)
            jsonp_index = int(j)
        sid = params.get('sid')
        if sid is None:
            if method != 'GET':
                return refuse(BAD_HANDSHAKE_METHOD, headers=cors_headers)
            if params.get('EIO') != PROTOCOL_VERSION:
                return refuse(UNSUPPORTED_PROTOCOL_VERSION, headers=cors_headers)
            if transport == 'websocket':
                if not upgrade:
                    return refuse(BAD_REQUEST, headers=cors_headers)
                return WebSocketRequest(headers=cors_headers, session=None)
            return Handshake(headers=cors_headers, jsonp_index=jsonp_index, transport=transport,
                             cookie=cookie_attributes(config.cookie))
        session = self.sessions.get(sid) if len(sid) <= MAX_SID_LENGTH else None
        if session is None:
            return refuse(UNKNOWN_SID, headers=cors_headers)
        if transport == 'websocket':
            if method != 'GET' or not upgrade:
                return refuse(BAD_REQUEST, headers=cors_headers)
            if not session.reserve_upgrade():
                return refuse(BAD_REQUEST, headers=cors_headers)
            return WebSocketRequest(headers=cors_headers, session=session)
        if method == 'GET':
            return Poll(headers=cors_headers, jsonp_index=jsonp_index, session=session)
        if method != 'POST':
            return refuse(BAD_REQUEST, headers=cors_headers)
        if session.state != POLLING and session.state != PROBING:
            # after the upgrade (the spec), or after the server closed it
            return refuse(BAD_REQUEST if session.state == WEBSOCKET else UNKNOWN_SID, headers=cors_headers)
        length = content_length_of(headers.get('content-length'))
        if length is None and headers.get('transfer-encoding') is None and headers.get('content-length') is not None:
            return refuse(BAD_REQUEST, headers=cors_headers, close_connection=True)
        if length is not None and length > config.max_payload:
            # answered from the headers: the body is never read
            session._close(Reason.TRANSPORT_ERROR)
            return Refusal(status=413, code=None, message='Payload Too Large', headers=cors_headers,
                           close_connection=True, closed=session)
        if session._post_pending:
            # the spec: more than one POST at a time ends the session
            session._close(Reason.TRANSPORT_ERROR)
            return refuse(BAD_REQUEST, headers=cors_headers, closed=session)
        session._post_pending = True
        content_type = (headers.get('content-type') or '').split(';')[0].strip().lower()
        return Post(headers=cors_headers, jsonp_index=jsonp_index, session=session, content_length=length,
                    max_body=config.max_payload, binary=content_type == 'application/octet-stream')

    #: the answer to a handshake the application refused
    unauthorized = staticmethod(unauthorized)

    # -- sessions -----------------------------------------------------------------------------------

    def upgrades(self, transport: str) -> list[str]:
        """The ``upgrades`` a new session on ``transport`` is offered."""
        if (transport == 'polling' and self.config.allow_upgrades and self.websocket_available
                and 'websocket' in self.config.transports):
            return ['websocket']
        return []

    def open(self, sid: str, transport: str, now: float) -> tuple[ServerSession, OutPacket]:
        """Start a session; returns it and its OPEN packet.

        On long-polling the OPEN packet is buffered already (the handshake
        GET's ``poll`` returns it); on a websocket the shell writes it.
        """
        if sid in self.sessions:
            raise LocalProtocolError(f'sid {sid!r} is in use')
        if transport not in self.config.transports:
            raise LocalProtocolError(f'transport {transport!r} is not enabled')
        config = self.config
        packet = OutPacket(OPEN, handshake(sid, self.upgrades(transport), config.ping_interval,
                                           config.ping_interval_grace_period, config.ping_timeout,
                                           config.max_payload))
        session = ServerSession(self, sid, transport, now)
        self.sessions[sid] = session
        if transport == 'polling':
            session._buffer.append(packet)
        return session, packet

    def discard(self, session: ServerSession) -> None:
        """Forget a session the application refused at its handshake (no ``closed`` report)."""
        session.state = CLOSED
        session.deadline = _INF
        session._buffer.clear()
        self.sessions.pop(session.sid, None)

    def close(self, session: ServerSession, reason: str = Reason.SERVER_DISCONNECT) -> bool:
        """End a session from this side; False if it had ended already.

        The peer is told with a CLOSE packet: on a websocket ``send`` says to
        write it (the shell does so before closing the websocket, in its
        ``closed`` hook); on long-polling a waiting GET gets it with what is
        buffered, or the next GET does (the session lingers, CLOSING, until
        then or until its heartbeat ``deadline``: a polling client polls
        again at once, one that does not would have timed out by then).
        """
        return session._close(reason, tell_peer=True)

    def close_all(self) -> None:
        """Shutdown: end every session as a server disconnect."""
        for session in list(self.sessions.values()):
            session._close(Reason.SERVER_DISCONNECT, tell_peer=True)


class ServerSession:
    """One Engine.IO session, as the server sees it (see the module docstring for the states)."""

    __slots__ = ('_buffer', '_get_pending', '_holds', '_pong_due', '_post_pending', '_release', '_upgrade_reserved',
                 '_woken', 'close_packet_due', 'close_reason', 'context', 'core', 'deadline', 'probe_deadline', 'sid',
                 'state', 'transport')

    def __init__(self, core: EngineCore, sid: str, transport: str, now: float) -> None:
        self.core = core
        self.sid = sid
        #: the transport carrying packets now: 'polling' until an upgrade completes
        self.transport = transport
        self.state = WEBSOCKET if transport == 'websocket' else POLLING
        #: when ``handle_deadline`` is due (seconds, the shell's clock)
        self.deadline = now + core.config.ping_interval
        self.close_reason: str | None = None
        #: free for the shell: its own per-session object (the websocket, the GET's event...)
        self.context: Any = None
        self._buffer: list[OutPacket] = []
        self._get_pending = False
        self._woken = False
        self._release: str | None = None  # what a waiting GET gets instead of the buffer
        self._post_pending = False
        self._upgrade_reserved = False
        #: when a reserved upgrade must have completed (the shell's read timeout on the probing websocket)
        self.probe_deadline = _INF
        self._pong_due = False
        self._holds = 0
        #: the session ended by ``close()`` on a websocket: write ``CLOSE_PACKET`` before closing it
        self.close_packet_due = False

    def __repr__(self) -> str:
        return f'<ServerSession {self.sid} {self.state}>'

    # -- outbound ---------------------------------------------------------------------------------

    def send(self, packet: OutPacket) -> bool:
        """Queue ``packet`` for the peer; True: the shell writes it on the websocket now.

        On long-polling it is buffered (a waiting GET is woken); a closed
        session drops it.  A client that does not poll while the buffer
        reaches ``max_buffered_packets`` is closed (``transport error``).
        """
        state = self.state
        if state == WEBSOCKET:
            return True
        if state == POLLING or state == PROBING:
            buffer = self._buffer
            if len(buffer) >= self.core.config.max_buffered_packets:
                self._close(Reason.TRANSPORT_ERROR)
                return False
            buffer.append(packet)
            if self._get_pending and not self._woken and state == POLLING:
                self._woken = True
                self.core.listener.wake_poll(self)
        return False

    # -- long-polling -----------------------------------------------------------------------------

    def poll(self, now: float) -> str | None:
        """A GET arrived: its body now, or None to wait for ``wake_poll``, then ``finish_poll()``.

        Raises :class:`HttpRefused` (answer its refusal; if ``closed`` is
        set the GET ended the session: a second GET while one waits).
        """
        state = self.state
        if state == POLLING:
            if self._get_pending:
                self._close(Reason.TRANSPORT_ERROR)
                raise HttpRefused(refuse(BAD_REQUEST, closed=self))
            if self._buffer:
                return self._take_buffer()
            self._get_pending = True
            self._woken = False
            return None
        if state == PROBING:
            return NOOP_PACKET.text()  # the client is moving to the websocket: end this poll cleanly
        if state == CLOSING:
            body = self._take_buffer()
            self._forget()
            return body
        code = UNKNOWN_SID if state == CLOSED else BAD_REQUEST
        raise HttpRefused(refuse(code))

    def finish_poll(self) -> str:
        """The body of the GET that waited, once ``wake_poll`` came for it (never before: it may be empty)."""
        self._get_pending = False
        release, self._release = self._release, None
        if release is not None:
            return release
        return self._take_buffer()

    def poll_aborted(self) -> None:
        """The GET's connection was lost (while it waited, or writing its body): the session ends.

        The reference server does the same (``transport error``): what the
        GET carried, or was about to, cannot be told apart from what arrived.
        """
        self._get_pending = False
        self._release = None
        self._close(Reason.TRANSPORT_ERROR)

    def post_aborted(self) -> None:
        """A POST's connection was lost before its body was read: nothing arrived, the session carries on.

        As the reference server does: a client whose POST stalled or was cut
        sends it again on a new connection, and the heartbeat watches it.
        """
        self._post_pending = False

    def _take_buffer(self) -> str:
        buffer = self._buffer
        if len(buffer) == 1:
            body = buffer[0].text()
        else:
            body = encode_payload(buffer)
        buffer.clear()
        return body

    def receive_post(self, body: bytes, now: float, *, post: Post | None = None) -> None:
        """The body of a POST (read after ``route`` said :class:`Post`).

        MESSAGE payloads go to ``listener.message`` in order; heartbeats and
        CLOSE are handled here.  ``post`` (the route) tells a binary body
        and the announced length: a shorter body was cut, and is never
        decoded (its last packet would arrive truncated).  Raises
        :class:`HttpRefused` (400, the session ended: ``transport error``)
        on anything malformed.  The shell answers ``post.ok()`` otherwise.
        """
        self._post_pending = False
        if self.state not in (POLLING, PROBING):
            raise HttpRefused(refuse(UNKNOWN_SID if self.state in (CLOSED, CLOSING) else BAD_REQUEST))
        limit = self.core.config.max_payload
        try:
            if post is not None and post.content_length is not None and len(body) < post.content_length:
                raise RemoteProtocolError('POST body shorter than its Content-Length')
            if len(body) > limit:
                raise RemoteProtocolError('POST body over maxPayload')
            if post is not None and post.binary:
                packets = decode_binary_body(body)
            else:
                try:
                    text = body.decode('utf-8')
                except UnicodeDecodeError:
                    raise RemoteProtocolError('POST body is not UTF-8') from None
                packets = decode_payload(text)
        except RemoteProtocolError as exc:
            self._close(Reason.TRANSPORT_ERROR)
            refusal = refuse(BAD_REQUEST, message=f'Bad request: {exc}', closed=self)
            raise HttpRefused(refusal) from None
        listener = self.core.listener
        for packet_type, data in packets:
            if self.state not in (POLLING, PROBING):
                break
            if packet_type == MESSAGE:
                listener.message(self, data)
            else:
                self._control(packet_type, data, now)

    # -- websocket --------------------------------------------------------------------------------

    def receive_ws(self, msg: str | bytes, now: float) -> str | bytes | None:
        """A websocket message: the MESSAGE payload, or None (a control packet, handled here).

        A CLOSE ends the session (``closed`` is reported, then None
        returned); a malformed packet too (``transport error``).  After a
        PONG ``deadline`` may be earlier than armed (when ping_interval <
        ping_timeout).  Messages after the end are dropped (None).
        """
        if self.state == WEBSOCKET:
            if type(msg) is str:
                if msg[:1] == '4':
                    return msg[1:]
                head = msg[:1]
                if head and head in '0123456':
                    self._control(ord(head) - 48, msg[1:], now)
                else:
                    self._close(Reason.TRANSPORT_ERROR)
                return None
            return msg
        return None

    def _control(self, packet_type: int, data: str | bytes, now: float) -> None:
        if packet_type == PONG:
            if self._pong_due:
                self._pong_due = False
                self.deadline = now + self.core.config.ping_interval
        elif packet_type == CLOSE:
            self._close(Reason.CLIENT_DISCONNECT)
        # OPEN, PING, UPGRADE and NOOP mean nothing from a v4 client outside a
        # probe: ignored, as the reference server does

    def reserve_upgrade(self) -> bool:
        """A websocket arrived for this polling session; False refuses it (one already, or upgraded)."""
        if self.state != POLLING or self._upgrade_reserved or not self.core.upgrades('polling'):
            return False
        self._upgrade_reserved = True
        self.probe_deadline = _INF  # set from the shell's clock at the first probe message
        return True

    def receive_probe(self, msg: str | bytes, now: float) -> tuple[bool, list[OutPacket]] | None:
        """A message on the reserved websocket before the upgrade completed.

        Returns ``(done, packets)``: write ``packets`` on the websocket, in
        order, before any other write (``send`` returns True for this session
        from now on); once ``done`` the websocket carries the session and
        further messages go to ``receive_ws``.  None: the probe failed, close
        that websocket (the session carries on over long-polling; if it has
        ended meanwhile, ``closed`` was reported already).  The shell reads
        the first message with a timeout of ``config.upgrade_timeout`` and
        the others until ``probe_deadline`` (set at the first), and calls
        ``abort_probe`` when that runs out.
        """
        if not self._upgrade_reserved or self.state not in (POLLING, PROBING):
            self._upgrade_reserved = False
            return None
        if self.probe_deadline == _INF:
            self.probe_deadline = now + self.core.config.upgrade_timeout
        if self.state == POLLING and msg == '2probe':
            self.state = PROBING
            if self._get_pending:
                self._release_poll(NOOP_PACKET.text())
            return False, [PONG_PROBE]
        if self.state == PROBING and msg == '5':
            self.state = WEBSOCKET
            self.transport = 'websocket'
            self._upgrade_reserved = False
            self.probe_deadline = _INF
            packets, self._buffer = self._buffer, []
            return True, packets
        self.abort_probe()
        return None

    def abort_probe(self) -> None:
        """The reserved websocket failed or timed out before the upgrade: back to long-polling."""
        self._upgrade_reserved = False
        self.probe_deadline = _INF
        if self.state == PROBING:
            self.state = POLLING

    def transport_closed(self, error: bool = False) -> bool:
        """The websocket carrying the session ended (``transport close``, or ``transport error``)."""
        if self.state != WEBSOCKET:
            return False
        return self._close(Reason.TRANSPORT_ERROR if error else Reason.TRANSPORT_CLOSE)

    # -- heartbeats -------------------------------------------------------------------------------

    def handle_deadline(self, now: float) -> bool:
        """The shell's timer fired; True: write ``PING_PACKET`` on the websocket now.

        Re-arm at ``deadline`` afterwards (infinite once the session ended:
        drop the timer).  A ping on long-polling is buffered here, a missing
        PONG ends the session (``ping timeout``), a CLOSING session that no
        GET drained is forgotten.
        """
        if now < self.deadline:
            return False
        state = self.state
        if state == CLOSING:
            self._forget()
            return False
        if state == CLOSED:
            return False
        config = self.core.config
        if self._pong_due and not self._holds:
            self._close(Reason.PING_TIMEOUT)
            return False
        # held: the peer's PONG may wait unread behind its other packets, so
        # it cannot time out, and it is pinged anyway so it does not time us out
        self._pong_due = True
        step = config.ping_interval if self._holds else config.ping_timeout
        # counted from when the ping was due, not from a timer that fired a
        # little late: a client that never answers is gone at exactly
        # pingInterval + pingTimeout.  A timer far behind (a stalled process)
        # still gives the peer half a step to answer.
        self.deadline = max(self.deadline + step, now + step / 2)
        return self.send(PING_PACKET)

    def hold_heartbeat(self, held: bool, now: float) -> None:
        """The shell stops (True) or resumes (False) reading this peer, for back-pressure.

        While held the peer cannot time out.  When the last hold ends, a
        pending ping gets a full ``ping_timeout`` from now (``deadline`` may
        move earlier).
        """
        self._holds += 1 if held else -1
        if not self._holds and self._pong_due and self.state not in (CLOSING, CLOSED):
            self.deadline = now + self.core.config.ping_timeout

    # -- the end ----------------------------------------------------------------------------------

    def _release_poll(self, body: str) -> None:
        if self._get_pending:
            self._release = body
            if not self._woken:
                self._woken = True
                self.core.listener.wake_poll(self)

    def _close(self, reason: str, tell_peer: bool = False) -> bool:
        if self.state in (CLOSING, CLOSED):
            return False
        self.close_reason = reason
        self._upgrade_reserved = False
        self.probe_deadline = _INF
        if tell_peer and self.state == POLLING and not self._get_pending:
            # keep the session until a GET takes the CLOSE (the peer learns it was closed)
            # until the heartbeat deadline at the most: a polling client polls again at once
            self._buffer.append(CLOSE_PACKET)
            self.state = CLOSING
        else:
            if self.state == WEBSOCKET:
                self.close_packet_due = tell_peer  # send() refuses it from now on: the shell writes it
            elif self._get_pending:
                if reason == Reason.CLIENT_DISCONNECT:
                    self._release_poll(NOOP_PACKET.text())
                elif tell_peer:
                    self._buffer.append(CLOSE_PACKET)
                    self._release_poll(encode_payload(self._buffer))
                else:
                    self._release_poll(CLOSE_PACKET.text())
            self._forget()
        self.core.listener.closed(self, reason)
        return True

    def _forget(self) -> None:
        self.state = CLOSED
        self.deadline = _INF
        self._buffer = []
        core = self.core
        if core.sessions.get(self.sid) is self:
            del core.sessions[self.sid]


