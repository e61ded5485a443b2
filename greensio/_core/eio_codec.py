"""Engine.IO v4 packets and payloads: the wire forms, both directions.

Core ring: pure functions over strings and bytes, shared by the server
(``eio_server``) and the client (``eio_client``).

How this works:

- A packet is a type digit and optional data.  On a websocket each packet is
  one message: text ``<type><data>``, or binary data sent as is (always a
  MESSAGE).  A long-polling body joins packets with ``\\x1e``; binary data
  there is ``b`` + base64.
- Outbound packets are :class:`OutPacket` objects.  Each form (polling text,
  websocket message, websocket frame) is computed once and cached on the
  packet, so a broadcast to many recipients encodes once whatever mixes of
  transports they use.
- Inbound packets are plain ``(type, data)`` tuples, except on the websocket
  hot path where ``eio_server``/``eio_client`` classify a message with one
  slice compare (``msg[:1] == '4'``) and never build a tuple for a MESSAGE.
"""

from __future__ import annotations

import base64
import binascii
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass

from . import safejson
from . import websocket as wsproto
from .errors import RemoteProtocolError

OPEN, CLOSE, PING, PONG, MESSAGE, UPGRADE, NOOP = range(7)
#: Separates packets in a long-polling body (never valid in the data itself).
SEPARATOR = '\x1e'
_TYPE_DIGITS = '0123456'
#: Protocol version this core speaks (the ``EIO`` query parameter).
PROTOCOL_VERSION = '4'
#: The body of a successful POST: the spec and the reference server say
#: ``ok``; python-engineio said ``OK``.
OK_BODY = b'ok'
#: ``maxPayload`` a client assumes when the server's OPEN packet omits it
#: (the reference client's default).
DEFAULT_MAX_PAYLOAD = 1_000_000


class OutPacket:
    """An outgoing Engine.IO packet that many recipients can share.

    ``data`` is text (``str``) or binary (``bytes``); binary data is always a
    MESSAGE.  The encodings are cached per form: ``text()`` for long-polling,
    ``message()`` for a websocket library that frames itself, ``frame()`` for
    a shell that writes frames to the TCP socket itself.
    """

    __slots__ = ('_frame', '_text', 'binary', 'data', 'packet_type')

    def __init__(self, packet_type: int, data: str | bytes | None = None) -> None:
        self.packet_type = packet_type
        self.data = data
        self.binary = isinstance(data, (bytes, bytearray))
        self._text: str | None = None
        self._frame: bytes | None = None

    def text(self) -> str:
        """The packet as it stands in a long-polling body."""
        text = self._text
        if text is None:
            data = self.data
            if isinstance(data, (bytes, bytearray)):
                text = 'b' + base64.b64encode(data).decode('ascii')
            else:
                text = _TYPE_DIGITS[self.packet_type] + (data or '')
            self._text = text
        return text

    def message(self) -> str | bytes:
        """The packet as one websocket message: text, or binary data as is."""
        data = self.data
        if isinstance(data, (bytes, bytearray)):
            return bytes(data)
        return self.text()

    def frame(self, mask: bool = False) -> bytes:
        """The packet as one websocket frame; servers send unmasked, clients masked.

        A masked frame takes a fresh key each time, so only unmasked frames
        (the server's broadcast case) are cached.
        """
        if mask:
            return _encode_frame(self, True)
        frame = self._frame
        if frame is None:
            frame = self._frame = _encode_frame(self, False)
        return frame

    def __repr__(self) -> str:
        return f'OutPacket({self.packet_type}, {self.data!r})'


def _encode_frame(packet: OutPacket, mask: bool) -> bytes:
    data = packet.data
    if isinstance(data, (bytes, bytearray)):
        return wsproto.encode_frame(wsproto.OP_BINARY, bytes(data), mask)
    return wsproto.encode_frame(wsproto.OP_TEXT, packet.text().encode('utf-8'), mask)


#: Packets without data, shared by every session (their encodings are cached once).
PING_PACKET = OutPacket(PING)
PONG_PACKET = OutPacket(PONG)
NOOP_PACKET = OutPacket(NOOP)
CLOSE_PACKET = OutPacket(CLOSE)
UPGRADE_PACKET = OutPacket(UPGRADE)
PING_PROBE = OutPacket(PING, 'probe')
PONG_PROBE = OutPacket(PONG, 'probe')


def encode_payload(packets: Iterable[OutPacket]) -> str:
    """A long-polling body: the packets' text forms joined by the separator."""
    return SEPARATOR.join([p.text() for p in packets])


def decode_packet(text: str) -> tuple[int, str | bytes]:
    """One packet of a long-polling body, or one websocket text message."""
    head = text[:1]
    if head == 'b':
        try:
            return MESSAGE, base64.b64decode(text[1:], validate=True)
        except binascii.Error:
            raise RemoteProtocolError('invalid base64 in payload') from None
    if not head or head not in _TYPE_DIGITS:
        raise RemoteProtocolError(f'unknown packet type {head!r}' if head else 'empty packet')
    return ord(head) - 48, text[1:]


def decode_payload(body: str) -> list[tuple[int, str | bytes]]:
    """Split a long-polling body into ``(packet_type, data)`` pairs.

    No cap on the number of packets (python-engineio's cap of 16 dropped
    the whole POST and still answered OK): the body size is bounded by
    ``maxPayload`` before it is read.  Message data stays text: Socket.IO
    parses it, not Engine.IO.  A JSONP form post (``d=...``) is unwrapped.
    Raises :class:`RemoteProtocolError` (a ``ValueError``) on anything malformed.
    """
    if body.startswith('d='):
        body = jsonp_unwrap(body)
    return [decode_packet(part) for part in body.split(SEPARATOR)]


def decode_binary_body(body: bytes) -> list[tuple[int, str | bytes]]:
    """A long-polling body of type ``application/octet-stream``: one binary MESSAGE.

    The spec lets a sender post raw binary with that content type; the
    reference clients always use text, but the receiver must accept it.
    """
    return [(MESSAGE, body)]


def jsonp_unwrap(body: str) -> str:
    """The payload of a JSONP form post (``d=<urlencoded payload>``)."""
    values = urllib.parse.parse_qs(body, keep_blank_values=True).get('d')
    if not values:
        raise RemoteProtocolError('JSONP body without d=')
    return values[0]


def jsonp_wrap(payload: str, index: int) -> str:
    """A long-polling body as a JSONP script for callback ``index``.

    The payload is escaped as a JSON string: python-engineio escaped only
    double quotes, so a payload ending in a backslash broke out of the
    string literal.
    """
    return f'___eio[{index}]({safejson.dumps(payload)});'


def handshake(sid: str, upgrades: list[str], ping_interval: float, ping_interval_grace_period: float,
              ping_timeout: float, max_payload: int) -> str:
    """The JSON data of the OPEN packet, intervals in milliseconds.

    The advertised interval includes python-engineio's grace period (the
    server pings every ``ping_interval``; the client waits that much
    longer).  python-engineio truncated the interval to whole seconds
    before scaling, advertising 0 for any sub-second ``ping_interval``.
    """
    fields = {
        'sid': sid,
        'upgrades': upgrades,
        'pingTimeout': int(ping_timeout * 1000),
        'pingInterval': int((ping_interval + ping_interval_grace_period) * 1000),
        'maxPayload': max_payload,
    }
    return safejson.dumps(fields, separators=(',', ':'))


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenInfo:
    """The server's OPEN packet, as the client reads it (seconds, not milliseconds)."""

    sid: str
    upgrades: tuple[str, ...]
    ping_interval: float
    ping_timeout: float
    max_payload: int


#: Longest session id a client accepts: it goes back in every request URL.
MAX_SID_LENGTH = 256
#: Longest heartbeat a client accepts (ms): a larger one is a broken server,
#: and a deadline that far out would leave a dead connection undetected.
MAX_HEARTBEAT_MS = 24 * 3600 * 1000


def parse_open(data: str | bytes) -> OpenInfo:
    """Validate the data of a server's OPEN packet; RemoteProtocolError if it is unusable."""
    if not isinstance(data, str):
        raise RemoteProtocolError('binary OPEN packet')
    try:
        fields = safejson.loads(data)
    except ValueError:
        raise RemoteProtocolError('OPEN packet is not JSON') from None
    if not isinstance(fields, dict):
        raise RemoteProtocolError('OPEN packet is not a JSON object')
    sid = fields.get('sid')
    if not isinstance(sid, str) or not sid or len(sid) > MAX_SID_LENGTH:
        raise RemoteProtocolError('OPEN packet without a usable sid')
    upgrades = fields.get('upgrades', [])
    if not isinstance(upgrades, list) or not all(isinstance(u, str) for u in upgrades):
        raise RemoteProtocolError('OPEN packet with invalid upgrades')
    timings = []
    for key in ('pingInterval', 'pingTimeout'):
        value = fields.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_HEARTBEAT_MS:
            raise RemoteProtocolError(f'OPEN packet with invalid {key}')
        timings.append(value / 1000)
    max_payload = fields.get('maxPayload', DEFAULT_MAX_PAYLOAD)
    if isinstance(max_payload, bool) or not isinstance(max_payload, int) or max_payload <= 0:
        raise RemoteProtocolError('OPEN packet with invalid maxPayload')
    return OpenInfo(sid=sid, upgrades=tuple(upgrades), ping_interval=timings[0], ping_timeout=timings[1],
                    max_payload=max_payload)
