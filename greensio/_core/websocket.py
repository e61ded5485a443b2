"""WebSocket framing (RFC 6455) without I/O, for greensio's own websocket path.

gevent-websocket performs the HTTP upgrade; from then on greensio reads and
writes frames itself (gevent-websocket unmasks byte by byte
in Python and validates UTF-8 twice).  ``FrameParser.feed(bytes)`` buffers
input and ``next_message()`` returns whole messages; the declared length of
a frame is checked against the limit before its payload is buffered.
"""

import base64
import hashlib
import os
import struct
from dataclasses import dataclass

from .errors import RemoteProtocolError

try:  # C speed unmasking (34 GB/s here) from the websockets package
    from websockets.speedups import apply_mask as _apply_mask
except ImportError:  # pragma: no cover - pure Python fallback, ~300 MB/s

    def _apply_mask(data: bytes | bytearray | memoryview, mask: bytes | bytearray) -> bytes:
        n = len(data)
        full = mask * (n // 4) + mask[: n % 4]
        return (int.from_bytes(data, 'little') ^ int.from_bytes(full, 'little')).to_bytes(n, 'little')


OP_CONTINUATION, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
_DATA_OPCODES = (OP_CONTINUATION, OP_TEXT, OP_BINARY)
_CONTROL_OPCODES = (OP_CLOSE, OP_PING, OP_PONG)

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_INVALID_DATA = 1007
CLOSE_TOO_BIG = 1009

#: RFC 6455 5.5: control frames carry at most 125 bytes.
MAX_CONTROL_PAYLOAD = 125
#: Fragments one message may be split into; each costs a list entry.
MAX_FRAGMENTS = 1024


class WebSocketError(RemoteProtocolError):
    """A framing violation; ``code`` is the close code to send back."""

    def __init__(self, message: str, code: int = CLOSE_PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """A complete message or a control frame."""

    opcode: int
    data: str | bytes


class FrameParser:
    """Turn a byte stream from the peer into messages."""

    def __init__(self, max_message_size: int, expect_masked: bool = True) -> None:
        self.max_message_size = max_message_size
        self.expect_masked = expect_masked
        self._buf = bytearray()
        self._fragments: list[bytes] = []
        self._fragment_opcode = 0
        self._fragment_size = 0

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next_message(self) -> Message | None:
        """Return the next complete message, or None until more bytes arrive."""
        while True:
            frame = self._next_frame()
            if frame is None:
                return None
            fin, opcode, payload = frame
            if opcode in _CONTROL_OPCODES:
                return Message(opcode=opcode, data=payload)
            if opcode == OP_CONTINUATION:
                if not self._fragments:
                    raise WebSocketError('continuation frame without a message')
            elif self._fragments:
                raise WebSocketError('new message before the previous one ended')
            else:
                self._fragment_opcode = opcode
            if fin and not self._fragments:
                return self._finish(opcode, payload)
            self._fragments.append(payload)
            if len(self._fragments) > MAX_FRAGMENTS:
                raise WebSocketError('message split into too many fragments', CLOSE_TOO_BIG)
            if fin:
                data = b''.join(self._fragments)
                self._fragments = []
                self._fragment_size = 0
                return self._finish(self._fragment_opcode, data)

    def _finish(self, opcode: int, payload: bytes) -> Message:
        if opcode == OP_TEXT:
            try:
                return Message(opcode=opcode, data=payload.decode('utf-8'))
            except UnicodeDecodeError:
                raise WebSocketError('text message is not valid UTF-8', CLOSE_INVALID_DATA) from None
        return Message(opcode=opcode, data=payload)

    def _next_frame(self) -> tuple[bool, int, bytes] | None:
        buf = self._buf
        have = len(buf)
        if have < 2:
            return None
        b0, b1 = buf[0], buf[1]
        if b0 & 0x70:
            raise WebSocketError('reserved bits set without a negotiated extension')
        fin = bool(b0 & 0x80)
        opcode = b0 & 0x0F
        length = b1 & 0x7F
        pos = 2
        if length == 126:
            if have < 4:
                return None
            length = (buf[2] << 8) | buf[3]
            pos = 4
        elif length == 127:
            if have < 10:
                return None
            (length,) = struct.unpack_from('!Q', buf, 2)
            pos = 10
        if opcode in _CONTROL_OPCODES:
            if length > MAX_CONTROL_PAYLOAD or not fin:
                raise WebSocketError('invalid control frame')
        elif opcode in _DATA_OPCODES:
            # checked on the header, before a single payload byte is buffered
            if self._fragment_size + length > self.max_message_size:
                raise WebSocketError('message too big', CLOSE_TOO_BIG)
        else:
            raise WebSocketError(f'unknown opcode {opcode}')
        masked = b1 & 0x80
        if bool(masked) != self.expect_masked:
            raise WebSocketError('frame masking does not match the peer role')
        mask = b''
        if masked:
            if have < pos + 4:
                return None
            mask = bytes(buf[pos : pos + 4])
            pos += 4
        end = pos + length
        if have < end:
            return None
        with memoryview(buf) as view:  # one copy of the payload, not two
            payload = _apply_mask(view[pos:end], mask) if masked else bytes(view[pos:end])
        del buf[:end]
        if opcode in _DATA_OPCODES:
            self._fragment_size += length
            if fin:
                self._fragment_size = 0
        return fin, opcode, payload

    def bytes_wanted(self) -> int:
        """How many more bytes would complete the frame at the head of the buffer."""
        buf = self._buf
        if len(buf) < 10:
            return 0
        length = buf[1] & 0x7F
        pos = 2 + (4 if buf[1] & 0x80 else 0)
        if length == 126:
            length, pos = (buf[2] << 8) | buf[3], pos + 2
        elif length == 127:
            (length,) = struct.unpack_from('!Q', buf, 2)
            pos += 8
        return max(0, pos + length - len(buf))


def encode_frame(opcode: int, payload: bytes, mask: bool = False) -> bytes:
    """One final frame; servers send unmasked, clients masked."""
    n = len(payload)
    b0 = 0x80 | opcode
    mask_bit = 0x80 if mask else 0
    if n < 126:
        header = bytes((b0, mask_bit | n))
    elif n < 65536:
        header = struct.pack('!BBH', b0, mask_bit | 126, n)
    else:
        header = struct.pack('!BBQ', b0, mask_bit | 127, n)
    if mask:
        key = os.urandom(4)
        return header + key + _apply_mask(payload, key)
    return header + payload


#: RFC 6455's fixed GUID of the opening handshake.
HANDSHAKE_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'


def accept_key(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` answer to a client's ``Sec-WebSocket-Key``."""
    return base64.b64encode(hashlib.sha1((key + HANDSHAKE_GUID).encode('latin-1')).digest()).decode()


def encode_close(code: int = CLOSE_NORMAL, reason: str = '', mask: bool = False) -> bytes:
    return encode_frame(OP_CLOSE, struct.pack('!H', code) + reason.encode()[:120], mask)


def parse_close(payload: bytes) -> int:
    return struct.unpack('!H', payload[:2])[0] if len(payload) >= 2 else CLOSE_NORMAL
