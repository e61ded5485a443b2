"""The MessagePack serializer (``serializer='msgpack'``), compatible with
the JavaScript ``socket.io-msgpack-parser``: one binary message per packet,
``{"type", "data", "nsp"[, "id"]}``, bytes inline."""

from typing import Any

import msgpack

from ._core import packet as pk
from ._core.errors import RemoteProtocolError


class MsgPackPacket(pk.Packet):
    uses_binary_events = False
    dumps_default: Any = None
    ext_hook: Any = msgpack.ExtType

    @classmethod
    def configure(cls, dumps_default: Any = None, ext_hook: Any = msgpack.ExtType) -> type:
        """A subclass with a custom ``default`` for packing and ``ext_hook`` for unpacking."""
        # staticmethod: a plain function stored on the class would be bound to the packet
        return type('MsgPackPacket', (cls,), {'dumps_default': staticmethod(dumps_default),
                                              'ext_hook': staticmethod(ext_hook)})

    def encode(self) -> bytes:
        out: dict[str, Any] = {'type': self.packet_type, 'nsp': self.namespace or '/'}
        # socket.io-msgpack-parser accepts a DISCONNECT only without "data" and a CONNECT
        # only without it or with a map: a nil there is "invalid payload" to the JS side
        if self.data is not None:
            out['data'] = self.data
        if self.id is not None:
            out['id'] = self.id
        return msgpack.dumps(out, default=self.dumps_default)

    def _ext_hook(self, code: int, data: bytes) -> Any:
        # JS undefined is fixext 1 of type 0 (d4 00 00) in notepack.io, the codec of
        # socket.io-msgpack-parser: socket.io-client sends it as the CONNECT data when
        # there is no auth, and for undefined values in arguments (JSON makes them null).
        # msgpack hands ext 8 of type 0 with one zero byte (a 1-byte ArrayBuffer) over alike.
        if code == 0 and data == b'\x00':
            return None
        return self.ext_hook(code, data)

    def decode(self, encoded_packet: Any) -> int:
        if not isinstance(encoded_packet, (bytes, bytearray)):
            raise RemoteProtocolError('msgpack serializer expects binary messages')
        try:
            decoded = msgpack.loads(encoded_packet, ext_hook=self._ext_hook)
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:  # msgpack's errors are ValueErrors
            raise RemoteProtocolError(f'invalid msgpack packet: {exc}') from None
        if not isinstance(decoded, dict) or type(decoded.get('type')) is not int or decoded['type'] not in range(7):
            raise RemoteProtocolError('invalid msgpack packet')
        self.packet_type = decoded['type']
        self.data = decoded.get('data')
        self.id = decoded.get('id')
        nsp = decoded.get('nsp') or '/'
        if not isinstance(nsp, str) or len(nsp) > pk.MAX_NAMESPACE_LENGTH:
            raise RemoteProtocolError('invalid namespace')
        self.namespace = nsp
        if self.id is not None and (type(self.id) is not int or self.id < 0 or self.id >= 2**53):
            raise RemoteProtocolError('invalid ack id')
        self._check_shape(0)
        return 0
