"""The cross-worker wire schema: build, validate and deduplicate pub/sub messages.

Core ring: no I/O, no broker.  Workers (and write-only emitters) talk through
a broker with small JSON objects.  The shapes are python-socketio's (5.15 and
later: ``method``, ``event``, ``data`` as a list of arguments, ``binary`` with
base64 attachments, ``namespace``, ``room``, ``skip_sid``, ``callback``,
``host_id``...), so a greensio worker and a python-socketio worker on the same
channel understand each other.  greensio adds two fields python-socketio
ignores: ``version`` (this schema's version) and ``msg_id`` (unique per
message, ``<sender host id>.<counter>``), which lets a receiver drop the
duplicates a broker redelivers after an outage.

Anything that arrives from the broker is untrusted: ``decode`` turns raw
bytes into one of the frozen message classes below or raises
``InvalidMessage``.  Nothing is ever unpickled.  A message without
``version`` is a python-socketio one (schema 0): accepted, never deduplicated.
"""

import base64
import binascii
import itertools
from collections import deque
from dataclasses import dataclass
from typing import Any

from .errors import RemoteProtocolError
from .packet import Packet, check_placeholders

#: Bumped only for changes an older receiver would misread; added optional
#: fields keep the version.  A receiver drops messages from a newer schema.
SCHEMA_VERSION = 1

#: The message kinds (python-socketio's ``method`` values).
EMIT, CALLBACK, DISCONNECT, ENTER_ROOM, LEAVE_ROOM, CLOSE_ROOM = (
    'emit', 'callback', 'disconnect', 'enter_room', 'leave_room', 'close_room')
KINDS = frozenset({EMIT, CALLBACK, DISCONNECT, ENTER_ROOM, LEAVE_ROOM, CLOSE_ROOM})

#: A broadcast may carry files, but a rogue publisher must not make every
#: worker parse an unbounded document (RabbitMQ's own cap is 128 MiB).
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
#: Host ids are uuid4 hex (32 chars) and message ids add a counter; anything
#: much longer is not ours and would only bloat the dedup window.
MAX_ID_LENGTH = 128
#: Recent message ids remembered per receiver.  A broker redelivers at most
#: the unacknowledged messages (the consumer prefetch) plus what a publisher
#: replays after an outage (one publish batch): far below this.
DEDUP_WINDOW = 10_000


class InvalidMessage(RemoteProtocolError):
    """A message on the channel that is not a valid greensio/python-socketio message."""


# -- messages (what a receiver acts on) ---------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class EmitMessage:
    host_id: str
    msg_id: str | None
    namespace: str
    event: str
    args: list[Any]
    room: Any
    skip_sid: Any
    #: ``(sid, namespace, ack_id)`` on the origin host, when it wants the ack.
    callback: tuple[str, str, int] | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackMessage:
    #: The host that owns the callback (the destination, as in python-socketio).
    host_id: str
    msg_id: str | None
    sid: str
    namespace: str
    ack_id: int
    args: list[Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class DisconnectMessage:
    host_id: str
    msg_id: str | None
    sid: str
    namespace: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomMessage:
    """``enter_room`` or ``leave_room`` for a client another worker owns."""

    kind: str
    host_id: str
    msg_id: str | None
    sid: str
    namespace: str
    room: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseRoomMessage:
    host_id: str
    msg_id: str | None
    namespace: str
    room: Any


Message = EmitMessage | CallbackMessage | DisconnectMessage | RoomMessage | CloseRoomMessage


# -- building (the sending side) ---------------------------------------------------------

def _pack_args(args: list[Any]) -> tuple[list[Any], bool]:
    """python-socketio's binary form: ``[args with placeholders, b64(att0), ...]``."""
    if not Packet.data_is_binary(args):
        return args, False
    shaped, attachments = Packet.deconstruct_binary(args)
    return [shaped, *(base64.b64encode(a).decode('ascii') for a in attachments)], True


class MessageFactory:
    """Builds the wire dicts of one sender, numbering them for deduplication."""

    def __init__(self, host_id: str) -> None:
        self.host_id = host_id
        self._counter = itertools.count(1)

    def _base(self, method: str, host_id: str | None = None) -> dict[str, Any]:
        return {
            'method': method,
            'host_id': host_id or self.host_id,
            'version': SCHEMA_VERSION,
            'msg_id': f'{self.host_id}.{next(self._counter)}',
        }

    def emit(self, *, event: str, args: list[Any], namespace: str, room: Any = None, skip_sid: Any = None,
             callback: tuple[str, str, int] | None = None) -> dict[str, Any]:
        message = self._base(EMIT)
        data, binary = _pack_args(args)
        message.update(event=event, data=data, binary=binary, namespace=namespace, room=room,
                       skip_sid=skip_sid, callback=list(callback) if callback is not None else None)
        return message

    def callback(self, *, origin_host_id: str, sid: str, namespace: str, ack_id: int,
                 args: list[Any]) -> dict[str, Any]:
        # host_id names the destination here, as python-socketio expects; msg_id
        # still names the sender.  python-socketio sends binary ack arguments
        # raw (and fails to encode them); greensio adds the emit's base64 form.
        message = self._base(CALLBACK, origin_host_id)
        data, binary = _pack_args(list(args))
        message.update(sid=sid, namespace=namespace, id=ack_id, args=data)
        if binary:
            message['binary'] = True
        return message

    def disconnect(self, *, sid: str, namespace: str) -> dict[str, Any]:
        message = self._base(DISCONNECT)
        message.update(sid=sid, namespace=namespace)
        return message

    def room(self, kind: str, *, sid: str, namespace: str, room: Any) -> dict[str, Any]:
        if kind not in (ENTER_ROOM, LEAVE_ROOM):
            raise ValueError(f'not a room membership kind: {kind!r}')
        message = self._base(kind)
        message.update(sid=sid, room=room, namespace=namespace)
        return message

    def close_room(self, *, room: Any, namespace: str) -> dict[str, Any]:
        message = self._base(CLOSE_ROOM)
        message.update(room=room, namespace=namespace)
        return message


def encode(message: dict[str, Any], json: Any) -> str:
    """The JSON text of a message (``json`` is the worker's JSON module)."""
    text: str = json.dumps(message, separators=(',', ':'))
    return text


# -- decoding (the receiving side) ---------------------------------------------------------

def decode(raw: Any, json: Any) -> Message:
    """Validate one raw message from the broker; raise ``InvalidMessage``.

    ``raw`` may be bytes, text or an already parsed dict.  python-socketio's
    kombu publisher encodes the JSON text a second time (kombu serialises
    the string it is given): one level of such nesting is unwrapped.
    """
    data = _parse(raw, json)
    method = data.get('method')
    if method is None:
        raise InvalidMessage('not a Socket.IO pub/sub message (no "method")')
    if method not in KINDS:
        raise InvalidMessage(f'unknown method {str(method)[:40]!r}')
    version = data.get('version', 0)
    if type(version) is not int or version < 0:
        raise InvalidMessage('invalid "version"')
    if version > SCHEMA_VERSION:
        raise InvalidMessage(f'schema version {version} is newer than this worker understands ({SCHEMA_VERSION})')
    host_id = _id(data.get('host_id'), 'host_id')
    msg_id = data.get('msg_id')
    if msg_id is not None or version >= 1:
        msg_id = _id(msg_id, 'msg_id')
    namespace = _namespace(data.get('namespace'))
    if method == EMIT:
        return _decode_emit(data, host_id, msg_id, namespace)
    if method == CALLBACK:
        ack_id = data.get('id')
        if type(ack_id) is not int or ack_id < 0:
            raise InvalidMessage('callback without a valid "id"')
        args = data.get('args')
        if not isinstance(args, list):
            raise InvalidMessage('callback "args" must be a list')
        if data.get('binary') is True:
            args = _unpack_binary(args)
        elif 'binary' in data and data['binary'] not in (False, None):
            raise InvalidMessage('"binary" must be a boolean')
        return CallbackMessage(host_id=host_id, msg_id=msg_id, sid=_sid(data.get('sid')), namespace=namespace,
                               ack_id=ack_id, args=args)
    if method == DISCONNECT:
        return DisconnectMessage(host_id=host_id, msg_id=msg_id, sid=_sid(data.get('sid')), namespace=namespace)
    if method == CLOSE_ROOM:
        return CloseRoomMessage(host_id=host_id, msg_id=msg_id, namespace=namespace, room=_room(data.get('room')))
    return RoomMessage(kind=method, host_id=host_id, msg_id=msg_id, sid=_sid(data.get('sid')),
                       namespace=namespace, room=_room(data.get('room')))


def _parse(raw: Any, json: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, (bytes, bytearray, memoryview)):
        if len(raw) > MAX_MESSAGE_BYTES:
            raise InvalidMessage(f'message of {len(raw)} bytes exceeds {MAX_MESSAGE_BYTES}')
        try:
            raw = bytes(raw).decode('utf-8')
        except UnicodeDecodeError:
            raise InvalidMessage('not UTF-8 text (a pickle or other binary payload?)') from None
    if not isinstance(raw, str):
        raise InvalidMessage(f'unexpected payload type {type(raw).__name__}')
    if len(raw) > MAX_MESSAGE_BYTES:
        raise InvalidMessage(f'message of {len(raw)} characters exceeds {MAX_MESSAGE_BYTES}')
    data = _loads(raw, json)
    if isinstance(data, str):
        data = _loads(data, json)
    if not isinstance(data, dict):
        raise InvalidMessage(f'expected a JSON object, got {type(data).__name__}')
    return data


def _loads(text: str, json: Any) -> Any:
    try:
        return json.loads(text)
    except (ValueError, TypeError, RecursionError) as exc:
        raise InvalidMessage(f'not JSON: {str(exc)[:100]}') from None


def _id(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH:
        raise InvalidMessage(f'missing or invalid "{field}"')
    return value


def _sid(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH:
        raise InvalidMessage('missing or invalid "sid"')
    return value


def _namespace(value: Any) -> str:
    if value is None:
        return '/'
    if not isinstance(value, str) or not value.startswith('/'):
        raise InvalidMessage('invalid "namespace"')
    return value


def _is_room_name(value: Any) -> bool:
    # Rooms are dict keys on the receiver: only hashable JSON scalars qualify.
    return isinstance(value, str) or (type(value) is int)


def _room(value: Any) -> Any:
    if not _is_room_name(value):
        raise InvalidMessage('missing or invalid "room"')
    return value


def _target(value: Any, field: str) -> Any:
    """A room/sid target: null, a name, or a list of names."""
    if value is None or _is_room_name(value):
        return value
    if isinstance(value, list) and all(_is_room_name(v) for v in value):
        return value
    raise InvalidMessage(f'invalid "{field}"')


def _decode_emit(data: dict[str, Any], host_id: str, msg_id: str | None, namespace: str) -> EmitMessage:
    event = data.get('event')
    if not isinstance(event, str):
        raise InvalidMessage('emit without a string "event"')
    if 'data' not in data:
        raise InvalidMessage('emit without "data"')
    payload = data['data']
    binary = data.get('binary', False)
    if binary is True:
        if not isinstance(payload, list):
            raise InvalidMessage('binary emit "data" must be a list')
        args = _unpack_binary(payload)
    elif binary in (False, None):
        # python-socketio before 5.15.1 sent one argument as is, not a list
        args = payload if isinstance(payload, list) else [payload]
    else:
        raise InvalidMessage('"binary" must be a boolean')
    callback = data.get('callback')
    if callback is not None:
        if (not isinstance(callback, list) or len(callback) != 3 or not isinstance(callback[0], str)
                or not isinstance(callback[1], str) or type(callback[2]) is not int):
            raise InvalidMessage('invalid "callback"')
        callback = (callback[0], callback[1], callback[2])
    return EmitMessage(host_id=host_id, msg_id=msg_id, namespace=namespace, event=event, args=args,
                       room=_target(data.get('room'), 'room'), skip_sid=_target(data.get('skip_sid'), 'skip_sid'),
                       callback=callback)


def _unpack_binary(payload: list[Any]) -> list[Any]:
    """Rebuild ``[args with placeholders, b64...]``; returns the argument list."""
    if len(payload) < 2:
        # a sender sets "binary" because it found bytes: at least one attachment
        raise InvalidMessage('binary "data" without attachments')
    attachments = []
    for encoded in payload[1:]:
        if not isinstance(encoded, str):
            raise InvalidMessage('binary attachment is not base64 text')
        try:
            attachments.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            raise InvalidMessage('binary attachment is not valid base64') from None
    try:
        check_placeholders(payload[0], len(attachments))
    except RemoteProtocolError as exc:
        raise InvalidMessage(str(exc)) from None
    args = Packet.reconstruct_binary(payload[0], attachments)
    # python-socketio 5.14.2 packed a single argument instead of the list
    return args if isinstance(payload[0], list) else [args]


# -- deduplication -------------------------------------------------------------------------

class DedupWindow:
    """Remembers the last ``capacity`` message ids; ``seen`` says if one is a repeat."""

    def __init__(self, capacity: int = DEDUP_WINDOW) -> None:
        if capacity < 1:
            raise ValueError('capacity must be positive')
        self.capacity = capacity
        self._ids: set[str] = set()
        self._order: deque[str] = deque()

    def seen(self, msg_id: str) -> bool:
        """Record ``msg_id``; True if it was already in the window."""
        if msg_id in self._ids:
            return True
        self._ids.add(msg_id)
        self._order.append(msg_id)
        if len(self._order) > self.capacity:
            self._ids.discard(self._order.popleft())
        return False

    def __len__(self) -> int:
        return len(self._order)
