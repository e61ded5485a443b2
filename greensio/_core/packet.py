"""The Socket.IO v5 packet codec (the default serializer).

Wire form: ``<type>[<attachments>-][<namespace>,][<ack id>][<json>]``, with
binary values replaced by ``{"_placeholder": true, "num": n}`` and sent as
separate binary messages right after the text.  ``Packet`` keeps
python-socketio's class interface (custom serializers subclass it and
Flask-SocketIO's test client builds it), and its ``decode`` validates
everything a peer sends against the named limits below: a violation raises
``RemoteProtocolError`` and the shell closes only that connection.
"""

from typing import Any

from . import safejson
from .errors import LocalProtocolError, RemoteProtocolError

CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR, BINARY_EVENT, BINARY_ACK = range(7)
packet_names = ['CONNECT', 'DISCONNECT', 'EVENT', 'ACK', 'CONNECT_ERROR', 'BINARY_EVENT', 'BINARY_ACK']

#: Binary attachments one packet may declare (socket.io-parser's default
#: ``maxAttachments``): each pending attachment is memory a client holds.
MAX_ATTACHMENTS = 10
#: Ack ids are JavaScript safe integers (< 2**53), at most 16 digits.
MAX_ACK_ID_DIGITS = 16
#: Namespaces are names, not payloads.
MAX_NAMESPACE_LENGTH = 256
#: Event names the Socket.IO reference implementation reserves; a peer that
#: sends them as events is trying to impersonate a lifecycle callback.
RESERVED_EVENTS = frozenset(
    {'connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener'}
)

_BINARY_TYPES = (bytes, bytearray)
_CONTAINERS = (list, tuple, dict)
_DIGITS = frozenset('0123456789')


class Packet:
    """A Socket.IO packet, as in python-socketio's ``socketio.packet.Packet``."""

    uses_binary_events = True
    json: Any = safejson

    def __init__(
        self,
        packet_type: int = EVENT,
        data: Any = None,
        namespace: str | None = None,
        id: int | None = None,
        binary: bool | None = None,
        encoded_packet: Any = None,
    ) -> None:
        self.packet_type = packet_type
        self.data = data
        self.namespace = namespace
        self.id = id
        self.attachment_count = 0
        self.attachments: list[bytes] = []
        if self.uses_binary_events and (binary or (binary is None and self.data_is_binary(data))):
            if packet_type == EVENT:
                self.packet_type = BINARY_EVENT
            elif packet_type == ACK:
                self.packet_type = BINARY_ACK
            else:
                raise LocalProtocolError('Packet does not support binary payload.')
        if encoded_packet is not None:
            self.attachment_count = self.decode(encoded_packet) or 0

    # -- encoding -------------------------------------------------------------

    def encode(self) -> Any:
        """Return the text packet, or a list of text then attachments."""
        encoded = str(self.packet_type)
        data = self.data
        attachments = None
        if self.packet_type == BINARY_EVENT or self.packet_type == BINARY_ACK:
            data, attachments = self.deconstruct_binary(data)
            encoded += f'{len(attachments)}-'
        if self.namespace is not None and self.namespace != '/':
            encoded += self.namespace + ','
        if self.id is not None:
            encoded += str(self.id)
        if data is not None:
            encoded += self.json.dumps(data, separators=(',', ':'))
        if attachments is not None:
            return [encoded, *attachments]
        return encoded

    # -- decoding -------------------------------------------------------------

    def decode(self, encoded_packet: Any) -> int:
        """Decode a text packet; return how many attachments must follow."""
        if not isinstance(encoded_packet, str):
            raise RemoteProtocolError('expected a text packet, got binary data')
        text = encoded_packet
        if not text or text[0] not in '0123456':
            raise RemoteProtocolError(f'unknown packet type {text[:1]!r}')
        self.packet_type = packet_type = int(text[0])
        end = len(text)
        i = 1
        attachments = 0
        if packet_type == BINARY_EVENT or packet_type == BINARY_ACK:
            dash = text.find('-', 1, 4)
            digits = text[1:dash] if dash > 0 else ''
            if not digits or not _DIGITS.issuperset(digits):
                raise RemoteProtocolError('binary packet without an attachment count')
            attachments = int(digits)
            if not 1 <= attachments <= MAX_ATTACHMENTS:
                raise RemoteProtocolError(
                    f'binary packet declares {attachments} attachments '
                    f'(allowed: 1 to {MAX_ATTACHMENTS})'
                )
            i = dash + 1
        self.namespace = '/'
        if i < end and text[i] == '/':
            comma = text.find(',', i)
            stop = end if comma < 0 else comma
            namespace = text[i:stop]
            query = namespace.find('?')
            if query >= 0:
                namespace = namespace[:query]
            if len(namespace) > MAX_NAMESPACE_LENGTH:
                raise RemoteProtocolError('namespace too long')
            self.namespace = namespace
            i = stop + 1
        start = i
        while i < end and text[i] in _DIGITS:
            i += 1
        if i > start:
            if i - start > MAX_ACK_ID_DIGITS:
                raise RemoteProtocolError('ack id too long')
            self.id = int(text[start:i])
        else:
            self.id = None
        if i < end:
            try:
                self.data = self.json.loads(text[i:])
            except (ValueError, RecursionError) as exc:
                raise RemoteProtocolError(f'invalid JSON payload: {exc}') from None
        else:
            self.data = None
        self._check_shape(attachments)
        self.attachment_count = attachments
        self.attachments = []
        return attachments

    def _check_shape(self, attachments: int) -> None:
        t, data = self.packet_type, self.data
        if t == CONNECT or t == DISCONNECT:
            ok = data is None or isinstance(data, dict)
        elif t == EVENT or t == BINARY_EVENT:
            ok = isinstance(data, list) and len(data) > 0 and isinstance(data[0], str)
            if ok and data[0] in RESERVED_EVENTS:
                raise RemoteProtocolError(f'reserved event name {data[0]!r}')
        elif t == ACK or t == BINARY_ACK:
            ok = isinstance(data, list) and self.id is not None
        else:  # CONNECT_ERROR: python-socketio sends a bare string
            ok = isinstance(data, (dict, str))
        if not ok:
            raise RemoteProtocolError(f'invalid payload for a {packet_names[t]} packet')
        if attachments:
            check_placeholders(data, attachments)

    def add_attachment(self, attachment: bytes) -> bool:
        """Add one attachment; return True once the packet is complete."""
        if self.attachment_count <= len(self.attachments):
            raise RemoteProtocolError('Unexpected binary attachment')
        self.attachments.append(bytes(attachment))
        if self.attachment_count == len(self.attachments):
            self.data = self.reconstruct_binary(self.data, self.attachments)
            return True
        return False

    # -- binary helpers (python-socketio's class methods) -----------------------

    @classmethod
    def deconstruct_binary(cls, data: Any) -> tuple[Any, list[bytes | bytearray]]:
        attachments: list[bytes | bytearray] = []
        data = cls._deconstruct_binary_internal(data, attachments)
        return data, attachments

    @classmethod
    def _deconstruct_binary_internal(cls, data: Any, attachments: list[bytes | bytearray]) -> Any:
        if isinstance(data, _BINARY_TYPES):
            attachments.append(data)
            return {'_placeholder': True, 'num': len(attachments) - 1}
        if isinstance(data, (list, tuple)):  # a tuple goes out as a JSON array anyway
            return [cls._deconstruct_binary_internal(item, attachments) for item in data]
        if isinstance(data, dict):
            return {k: cls._deconstruct_binary_internal(v, attachments) for k, v in data.items()}
        return data

    @classmethod
    def reconstruct_binary(cls, data: Any, attachments: list[bytes]) -> Any:
        if isinstance(data, list):
            return [cls.reconstruct_binary(item, attachments) for item in data]
        if isinstance(data, dict):
            if '_placeholder' in data:
                return attachments[data['num']]
            return {k: cls.reconstruct_binary(v, attachments) for k, v in data.items()}
        return data

    @classmethod
    def data_is_binary(cls, data: Any) -> bool:
        # Run for every packet sent: a loop over a stack, not a recursion of generators.
        if not isinstance(data, _CONTAINERS):
            return isinstance(data, _BINARY_TYPES)
        stack = [data]
        while stack:
            container = stack.pop()
            for item in container.values() if isinstance(container, dict) else container:
                if isinstance(item, _BINARY_TYPES):
                    return True
                if isinstance(item, _CONTAINERS):
                    stack.append(item)
        return False


def check_placeholders(data: Any, count: int) -> None:
    """Every placeholder must be exactly ``{"_placeholder": true, "num": n}``."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            if '_placeholder' in item:
                num = item.get('num')
                if (
                    len(item) != 2
                    or item['_placeholder'] is not True
                    or type(num) is not int
                    or not 0 <= num < count
                ):
                    raise RemoteProtocolError(f'invalid binary placeholder {item!r}'[:200])
            else:
                stack.extend(item.values())
