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

The cluster kinds (``greensio.request``, ``greensio.response``,
``greensio.heartbeat``) are greensio's own: python-socketio's listener skips
methods it does not know, so they share its channel harmlessly.  A broadcast
that collects acknowledgements is an ordinary ``emit`` with a ``callback``
(python-socketio workers deliver it and return each ack as a ``callback``)
plus a ``request`` id, for which a greensio worker also tells the origin how
many clients it sent the event to (a ``response`` with ``count``).
"""

import base64
import binascii
import itertools
import json as _json
from collections import deque
from dataclasses import dataclass
from typing import Any

from .errors import RemoteProtocolError
from .packet import Packet, check_placeholders
from .recovery import MAX_LOG_ENTRIES, MAX_TOKEN_LENGTH

#: Bumped only for changes an older receiver would misread; added optional
#: fields keep the version.  A receiver drops messages from a newer schema.
#: Every single message is still stamped 1 (``MESSAGE_VERSION``); version 2
#: added the batch envelope, stamped 2, so a receiver from before it drops a
#: batch with a log line saying why instead of misreading it.
SCHEMA_VERSION = 2
MESSAGE_VERSION = 1

#: The message kinds (python-socketio's ``method`` values).
EMIT, CALLBACK, DISCONNECT, ENTER_ROOM, LEAVE_ROOM, CLOSE_ROOM = (
    'emit', 'callback', 'disconnect', 'enter_room', 'leave_room', 'close_room')
#: greensio's cluster kinds: a request to every worker, an answer to its
#: origin, and the membership heartbeat.
REQUEST, RESPONSE, HEARTBEAT = 'greensio.request', 'greensio.response', 'greensio.heartbeat'
#: A websocket relayed between two workers: the websocket upgrade of a session
#: reached a worker of another machine than the session's owner.
RELAY = 'greensio.relay'
#: Several messages of one sender in one broker message, in order (greensio
#: to greensio only: python-socketio skips a kind it does not know).
BATCH = 'greensio.batch'
KINDS = frozenset({EMIT, CALLBACK, DISCONNECT, ENTER_ROOM, LEAVE_ROOM, CLOSE_ROOM, REQUEST, RESPONSE, HEARTBEAT,
                   RELAY, BATCH})

#: What a ``greensio.request`` asks every worker to do with its own clients.
#: ``recover_session``: a client came back to the asking worker with a pid
#: it does not know; the worker holding that saved session hands it over.
#: ``forward``: a long-polling request of an Engine.IO session that the
#: asking worker received and another worker owns; only the owner answers.
FETCH_SOCKETS, SOCKETS_JOIN, SOCKETS_LEAVE, DISCONNECT_SOCKETS, SERVER_EMIT, RECOVER_SESSION, FORWARD = (
    'fetch_sockets', 'sockets_join', 'sockets_leave', 'disconnect_sockets', 'server_emit', 'recover_session',
    'forward')
OPS = frozenset({FETCH_SOCKETS, SOCKETS_JOIN, SOCKETS_LEAVE, DISCONNECT_SOCKETS, SERVER_EMIT, RECOVER_SESSION,
                 FORWARD})
#: Websocket messages or frames one relay message carries.
MAX_RELAY_ITEMS = 1024
#: The HTTP methods a forwarded long-polling request may have.
FORWARD_METHODS = frozenset({'GET', 'POST'})
#: Headers and characters of query string a forwarded request may carry.
MAX_FORWARD_HEADERS = 100
MAX_FORWARD_QUERY = 8192

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
#: Messages one batch may carry: a receiver dispatches a whole batch before
#: it acknowledges it, so this bounds the work one broker message can ask for.
MAX_BATCH = 1024
#: Clients one worker may say it sent a broadcast to.  Far above what one
#: process serves; a forged count above it is refused rather than trusted.
MAX_COUNT = 1_000_000
#: Sockets one worker may describe in one answer to ``fetch_sockets``.
MAX_SOCKETS = 1_000_000
#: Heartbeat intervals a worker may announce, in seconds: faster would flood
#: the channel, slower would leave a dead worker counted for too long.
MIN_HEARTBEAT_INTERVAL = 0.05
MAX_HEARTBEAT_INTERVAL = 60.0
#: Longest wait for the acks of a broadcast a receiver accepts (a day): a
#: receiver keeps each silent client's ack callback that long.
MAX_ACK_TIMEOUT = 86_400.0
#: Longest ``pid`` or ``offset`` a ``recover_session`` may carry: the same
#: bound a worker applies to what a client sends (they come from a client).
MAX_RECOVERY_TOKEN = MAX_TOKEN_LENGTH
#: Rooms one handed-over session may name (a client in more is not recovered
#: across workers; far above what applications put one client in).
MAX_SESSION_ROOMS = 10_000
#: Events one handed-over session may carry: the holder's log holds no more.
MAX_HANDOVER_EVENTS = MAX_LOG_ENTRIES


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
    #: The origin's request id when it collects every ack and wants a count.
    request: str | None = None
    #: Seconds the origin waits for those acks: a receiver forgets the
    #: ack callbacks of clients that did not answer by then.
    timeout: float | None = None


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


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestMessage:
    """An operation every worker applies to its own clients (``OPS``)."""

    host_id: str  # the origin, where answers go
    msg_id: str | None
    request: str
    op: str
    namespace: str
    to: Any
    skip: Any
    #: The room to join or leave (``sockets_join``/``sockets_leave``).
    room: Any
    #: ``disconnect_sockets``: close the whole connection, not only the namespace.
    close: bool
    #: ``server_emit``: the event and its arguments.
    event: str | None
    args: list[Any]
    #: Whether the origin waits for an answer from each worker.
    reply: bool
    #: ``recover_session``: the client's private session id and last offset.
    pid: str | None = None
    offset: str | None = None
    #: ``forward``: the request (``method``, ``query``, lower-case ``headers``, ``body``).
    forward: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseMessage:
    """One worker's answer to a request; exactly one of the payload fields is set."""

    host_id: str  # the destination: the request's origin
    msg_id: str | None
    sender: str
    request: str
    #: Broadcast with acks: how many clients this worker sent the event to,
    #: and whether the target was one of its clients' sid (the answers follow,
    #: batched, in further responses).
    count: int | None = None
    client: bool = False
    #: ``fetch_sockets``: descriptions of this worker's matching sockets.
    sockets: list[dict[str, Any]] | None = None
    #: Broadcast with acks: clients' acknowledgements, each its list of arguments.
    answers: list[list[Any]] | None = None
    #: ``server_emit``: whether a handler ran, and its answer.
    handled: bool = False
    answer: Any = None
    #: ``recover_session``: the handed-over session (``sid``, ``rooms``,
    #: ``data``, ``missed`` as ``[payload, msg_id or null]`` pairs, ``seen``
    #: message ids), or None from a worker that does not hold it.
    session: dict[str, Any] | None = None
    #: ``forward``: the owner's answer, ``[status line, [[name, value], ...], body]``.
    forwarded: list[Any] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatMessage:
    host_id: str
    msg_id: str | None
    interval: float
    #: The sender just started and wants every worker's heartbeat now.
    hello: bool
    #: The sender is shutting down: stop counting it.
    leaving: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayMessage:
    """Part of a relayed websocket, from ``sender`` to ``host_id``.

    The worker that accepted the websocket opens the relay (``open``: the
    upgrade request's ``sid``, ``query`` and lower-case ``headers``) and sends
    the client's messages; the owner sends websocket frames ready to write;
    either side ends it with ``close``.
    """

    host_id: str  # the destination
    msg_id: str | None
    sender: str
    relay: str
    open: dict[str, Any] | None
    data: list[Any]
    close: bool


Message = (EmitMessage | CallbackMessage | DisconnectMessage | RoomMessage | CloseRoomMessage | RequestMessage
           | ResponseMessage | HeartbeatMessage | RelayMessage)


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchMessage:
    """Messages published together, to be acted on in order; each keeps its own id for deduplication."""

    host_id: str
    messages: tuple[Message, ...]


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
            'version': MESSAGE_VERSION,
            'msg_id': f'{self.host_id}.{next(self._counter)}',
        }

    def emit(self, *, event: str, args: list[Any], namespace: str, room: Any = None, skip_sid: Any = None,
             callback: tuple[str, str, int] | None = None, request: str | None = None,
             timeout: float | None = None) -> dict[str, Any]:
        message = self._base(EMIT)
        data, binary = _pack_args(args)
        message.update(event=event, data=data, binary=binary, namespace=namespace, room=room,
                       skip_sid=skip_sid, callback=list(callback) if callback is not None else None)
        if request is not None:
            message.update(request=request, timeout=timeout)
        return message

    def request_id(self) -> str:
        """A request id unique to this sender (the next message id)."""
        return f'{self.host_id}.r{next(self._counter)}'

    def request(self, op: str, *, request: str, namespace: str, to: Any = None, skip: Any = None,
                room: Any = None, close: bool = False, event: str | None = None, args: list[Any] | None = None,
                reply: bool = False, pid: str | None = None, offset: str | None = None,
                forward: dict[str, Any] | None = None) -> dict[str, Any]:
        if op not in OPS:
            raise ValueError(f'not a request operation: {op!r}')
        message = self._base(REQUEST)
        message.update(request=request, op=op, namespace=namespace, to=to, skip=skip, reply=reply)
        if room is not None:
            message['room'] = room
        if close:
            message['close'] = True
        if event is not None:
            data, binary = _pack_args(list(args or []))
            message.update(event=event, data=data, binary=binary)
        if pid is not None:
            message.update(pid=pid, offset=offset)
        if forward is not None:  # its body may be bytes: the emit's attachment form
            data, binary = _pack_args([forward])
            message.update(forward=data, binary=binary)
        return message

    def response(self, *, origin_host_id: str, request: str, **payload: Any) -> dict[str, Any]:
        """An answer to ``origin_host_id``: ``count``/``client``, ``sockets``, ``handled``/``answer`` or ``session``."""
        message = self._base(RESPONSE, origin_host_id)
        message.update(sender=self.host_id, request=request)
        if 'session' in payload:
            session = payload.pop('session')
            if session is None:
                message['session'] = None
            else:  # binary event arguments travel as attachments, as in an emit
                data, binary = _pack_args([session])
                message.update(session=data, binary=binary)
        elif 'answer' in payload:
            data, binary = _pack_args([payload.pop('answer')])
            message.update(answer=data, binary=binary)
        elif 'forwarded' in payload:
            data, binary = _pack_args([payload.pop('forwarded')])
            message.update(forwarded=data, binary=binary)
        elif 'answers' in payload:
            data, binary = _pack_args(payload.pop('answers'))
            message.update(answers=data, binary=binary)
        message.update(payload)
        return message

    def relay(self, *, to: str, relay: str, open: dict[str, Any] | None = None, data: list[Any] | None = None,
              close: bool = False) -> dict[str, Any]:
        message = self._base(RELAY, to)
        packed, binary = _pack_args(list(data or []))
        message.update(sender=self.host_id, relay=relay, data=packed, binary=binary)
        if open is not None:
            message['open'] = open
        if close:
            message['close'] = True
        return message

    def heartbeat(self, *, interval: float, hello: bool = False, leaving: bool = False) -> dict[str, Any]:
        message = self._base(HEARTBEAT)
        message['interval'] = interval
        if hello:
            message['hello'] = True
        if leaving:
            message['leaving'] = True
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


def batch(host_id: str, texts: list[str]) -> tuple[dict[str, Any], str]:
    """The envelope of already encoded messages of ``host_id``, without encoding them again.

    Returns the envelope's header (what a backend may look at: ``method``)
    and its JSON text.
    """
    if not 1 <= len(texts) <= MAX_BATCH:
        raise ValueError(f'a batch carries 1 to {MAX_BATCH} messages, not {len(texts)}')
    header = {'method': BATCH, 'host_id': host_id, 'version': SCHEMA_VERSION}
    return header, f'{batch_prefix(host_id)}"version":{SCHEMA_VERSION},"messages":[{",".join(texts)}]}}'


def batch_prefix(host_id: str) -> str:
    """How every batch of ``host_id`` begins: a worker knows its own echo without parsing it."""
    # host ids are plain strings: the stdlib's escaping is valid in any JSON
    return f'{{"method":"{BATCH}","host_id":{_json.dumps(host_id)},'


# -- decoding (the receiving side) ---------------------------------------------------------

def decode(raw: Any, json: Any) -> Message | BatchMessage:
    """Validate one raw message from the broker; raise ``InvalidMessage``.

    ``raw`` may be bytes, text or an already parsed dict.  python-socketio's
    kombu publisher encodes the JSON text a second time (kombu serialises
    the string it is given): one level of such nesting is unwrapped.  A
    batch is valid only if every message in it is: one bad message drops
    the whole batch, which its sender published as one.
    """
    data = _parse(raw, json)
    if data.get('method') == BATCH:
        return _decode_batch(data)
    return _decode_one(data)


def _decode_batch(data: dict[str, Any]) -> BatchMessage:
    if _version(data, 0) < 2:
        raise InvalidMessage('a batch needs a "version" of at least 2')
    host_id = _id(data.get('host_id'), 'host_id')
    items = data.get('messages')
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
        raise InvalidMessage(f'a batch needs "messages": 1 to {MAX_BATCH} objects')
    messages = []
    for item in items:
        if not isinstance(item, dict):
            raise InvalidMessage('a batched message must be an object')
        if item.get('method') == BATCH:
            raise InvalidMessage('a batch inside a batch')
        message = _decode_one(item)
        if message.msg_id is None or not message.msg_id.startswith(host_id + '.'):
            raise InvalidMessage("a batched message must carry an id of the batch's sender")
        messages.append(message)
    return BatchMessage(host_id=host_id, messages=tuple(messages))


def _decode_one(data: dict[str, Any]) -> Message:
    method = data.get('method')
    if method is None:
        raise InvalidMessage('not a Socket.IO pub/sub message (no "method")')
    if method not in KINDS:
        raise InvalidMessage(f'unknown method {str(method)[:40]!r}')
    version = _version(data, 0)
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
    if method == REQUEST:
        return _decode_request(data, host_id, msg_id, namespace)
    if method == RESPONSE:
        return _decode_response(data, host_id, msg_id)
    if method == HEARTBEAT:
        return _decode_heartbeat(data, host_id, msg_id)
    if method == RELAY:
        return _decode_relay(data, host_id, msg_id)
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
    request = data.get('request')
    timeout: Any = None
    if request is not None:
        request = _id(request, 'request')
        if callback is None:
            raise InvalidMessage('a "request" emit without a "callback"')
        timeout = data.get('timeout')
        if type(timeout) not in (int, float) or not 0 < timeout <= MAX_ACK_TIMEOUT:
            raise InvalidMessage(f'a "request" emit needs a "timeout" of up to {MAX_ACK_TIMEOUT} seconds')
    return EmitMessage(host_id=host_id, msg_id=msg_id, namespace=namespace, event=event, args=args,
                       room=_target(data.get('room'), 'room'), skip_sid=_target(data.get('skip_sid'), 'skip_sid'),
                       callback=callback, request=request, timeout=timeout)


def _args(data: dict[str, Any], field: str) -> list[Any]:
    """A field in the emit's argument form (a list, or base64 attachments when ``binary``)."""
    payload = data.get(field)
    binary = data.get('binary', False)
    if binary is True:
        if not isinstance(payload, list):
            raise InvalidMessage(f'binary "{field}" must be a list')
        return _unpack_binary(payload)
    if binary not in (False, None):
        raise InvalidMessage('"binary" must be a boolean')
    if not isinstance(payload, list):
        raise InvalidMessage(f'"{field}" must be a list')
    return payload


def _flag(data: dict[str, Any], field: str) -> bool:
    value = data.get(field, False)
    if type(value) is not bool:
        raise InvalidMessage(f'"{field}" must be a boolean')
    return value


def _decode_request(data: dict[str, Any], host_id: str, msg_id: str | None, namespace: str) -> RequestMessage:
    if msg_id is None:
        raise InvalidMessage('a request without "msg_id"')
    op = data.get('op')
    if op not in OPS:
        raise InvalidMessage(f'unknown request "op" {str(op)[:40]!r}')
    room = data.get('room')
    if op in (SOCKETS_JOIN, SOCKETS_LEAVE):
        room = _target(room, 'room')
        if room is None or room == []:
            raise InvalidMessage(f'{op} without a "room"')
    event = None
    args: list[Any] = []
    pid = offset = None
    if op == RECOVER_SESSION:
        pid, offset = data.get('pid'), data.get('offset')
        if not isinstance(pid, str) or not 0 < len(pid) <= MAX_RECOVERY_TOKEN:
            raise InvalidMessage(f'recover_session needs a "pid" of 1 to {MAX_RECOVERY_TOKEN} characters')
        if offset is not None and (not isinstance(offset, str) or len(offset) > MAX_RECOVERY_TOKEN):
            raise InvalidMessage(f'recover_session "offset" must be null or up to {MAX_RECOVERY_TOKEN} characters')
    if op == SERVER_EMIT:
        event = data.get('event')
        if not isinstance(event, str):
            raise InvalidMessage('server_emit without a string "event"')
        args = _args(data, 'data')
    forward = _check_forward(_one(data, 'forward')) if op == FORWARD else None
    return RequestMessage(host_id=host_id, msg_id=msg_id, request=_id(data.get('request'), 'request'), op=op,
                          namespace=namespace, to=_target(data.get('to'), 'to'), skip=_target(data.get('skip'), 'skip'),
                          room=room, close=_flag(data, 'close'), event=event, args=args, reply=_flag(data, 'reply'),
                          pid=pid, offset=offset, forward=forward)


def _decode_response(data: dict[str, Any], host_id: str, msg_id: str | None) -> ResponseMessage:
    sender = _id(data.get('sender'), 'sender')
    request = _id(data.get('request'), 'request')
    if 'session' in data:
        session = None
        if data['session'] is not None:
            session = _check_session(_one(data, 'session'))
        return ResponseMessage(host_id=host_id, msg_id=msg_id, sender=sender, request=request, session=session)
    if 'forwarded' in data:
        return ResponseMessage(host_id=host_id, msg_id=msg_id, sender=sender, request=request,
                               forwarded=_check_forwarded(_one(data, 'forwarded')))
    if 'count' in data:
        count = data['count']
        if type(count) is not int or not 0 <= count <= MAX_COUNT:
            raise InvalidMessage(f'"count" must be an integer from 0 to {MAX_COUNT}')
        return ResponseMessage(host_id=host_id, msg_id=msg_id, sender=sender, request=request, count=count,
                               client=_flag(data, 'client'))
    if 'answers' in data:
        answers = _args(data, 'answers')
        if len(answers) > MAX_COUNT or not all(isinstance(a, list) for a in answers):
            raise InvalidMessage(f'"answers" must be at most {MAX_COUNT} argument lists')
        return ResponseMessage(host_id=host_id, msg_id=msg_id, sender=sender, request=request, answers=answers)
    if 'sockets' in data:
        sockets = data['sockets']
        if not isinstance(sockets, list) or len(sockets) > MAX_SOCKETS:
            raise InvalidMessage(f'"sockets" must be a list of at most {MAX_SOCKETS}')
        for socket in sockets:
            _check_socket(socket)
        return ResponseMessage(host_id=host_id, msg_id=msg_id, sender=sender, request=request, sockets=sockets)
    handled = _flag(data, 'handled')
    answer = None
    if handled:
        answer = _one(data, 'answer')
    return ResponseMessage(host_id=host_id, msg_id=msg_id, sender=sender, request=request, handled=handled,
                           answer=answer)


def _version(data: dict[str, Any], default: int) -> int:
    """The message's schema version (``default`` when absent, as in python-socketio's messages)."""
    version = data.get('version', default)
    if type(version) is not int or version < 0:
        raise InvalidMessage('invalid "version"')
    if version > SCHEMA_VERSION:
        raise InvalidMessage(f'schema version {version} is newer than this worker understands ({SCHEMA_VERSION})')
    return version


def _one(data: dict[str, Any], field: str) -> Any:
    packed = _args(data, field)
    if len(packed) != 1:
        raise InvalidMessage(f'"{field}" must hold one value')
    return packed[0]


def _check_forward(forward: Any) -> dict[str, Any]:
    """A forwarded request: ``sid``, ``method``, ``query``, ``headers`` and ``body``."""
    if not isinstance(forward, dict):
        raise InvalidMessage('"forward" must be an object')
    _sid(forward.get('sid'))
    if forward.get('method') not in FORWARD_METHODS:
        raise InvalidMessage(f'"forward" method must be one of {sorted(FORWARD_METHODS)}')
    query = forward.get('query')
    if not isinstance(query, str) or len(query) > MAX_FORWARD_QUERY:
        raise InvalidMessage(f'"forward" query must be a string of at most {MAX_FORWARD_QUERY} characters')
    headers = forward.get('headers')
    if (not isinstance(headers, dict) or len(headers) > MAX_FORWARD_HEADERS
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())):
        raise InvalidMessage(f'"forward" headers must be at most {MAX_FORWARD_HEADERS} strings by name')
    if not isinstance(forward.get('body'), (bytes, str)):
        raise InvalidMessage('"forward" body must be bytes or a string')
    return forward


def _check_forwarded(answer: Any) -> list[Any]:
    """An owner's answer: ``[status line, [[name, value], ...], body]``."""
    if not (isinstance(answer, list) and len(answer) == 3 and isinstance(answer[0], str)
            and isinstance(answer[1], list) and len(answer[1]) <= MAX_FORWARD_HEADERS
            and all(isinstance(h, list) and len(h) == 2 and all(isinstance(x, str) for x in h) for h in answer[1])
            and isinstance(answer[2], (bytes, str))):
        raise InvalidMessage('"forwarded" must be [status line, [[name, value], ...], body]')
    return answer


def _decode_relay(data: dict[str, Any], host_id: str, msg_id: str | None) -> RelayMessage:
    items = _args(data, 'data')
    if len(items) > MAX_RELAY_ITEMS or not all(isinstance(item, (str, bytes)) for item in items):
        raise InvalidMessage(f'relay "data" must be at most {MAX_RELAY_ITEMS} strings or byte strings')
    opened = data.get('open')
    if opened is not None:
        if not isinstance(opened, dict):
            raise InvalidMessage('relay "open" must be an object')
        _check_forward({**opened, 'method': 'GET', 'body': ''})
    return RelayMessage(host_id=host_id, msg_id=msg_id, sender=_id(data.get('sender'), 'sender'),
                        relay=_id(data.get('relay'), 'relay'), open=opened, data=items, close=_flag(data, 'close'))


def _check_socket(socket: Any) -> None:
    """One socket description of a ``fetch_sockets`` answer."""
    if not isinstance(socket, dict):
        raise InvalidMessage('a socket description must be an object')
    _sid(socket.get('sid'))
    if not isinstance(socket.get('namespace'), str) or not socket['namespace'].startswith('/'):
        raise InvalidMessage('a socket description without a valid "namespace"')
    rooms = socket.get('rooms')
    if not isinstance(rooms, list) or not all(_is_room_name(r) for r in rooms):
        raise InvalidMessage('a socket description without a valid "rooms" list')
    for field in ('handshake', 'data'):
        if not isinstance(socket.get(field), dict):
            raise InvalidMessage(f'a socket description without a "{field}" object')


def _check_session(session: Any) -> dict[str, Any]:
    """A handed-over session (the answer to ``recover_session``)."""
    if not isinstance(session, dict):
        raise InvalidMessage('"session" must be an object')
    sid = _sid(session.get('sid'))
    rooms = session.get('rooms')
    if (not isinstance(rooms, list) or len(rooms) > MAX_SESSION_ROOMS or sid not in rooms
            or not all(_is_room_name(r) for r in rooms)):
        raise InvalidMessage(f'a session needs "rooms": up to {MAX_SESSION_ROOMS} names, its sid among them')
    if not isinstance(session.get('data'), dict):
        raise InvalidMessage('a session without a "data" object')
    missed = session.get('missed')
    if not isinstance(missed, list) or len(missed) > MAX_HANDOVER_EVENTS:
        raise InvalidMessage(f'a session needs "missed": up to {MAX_HANDOVER_EVENTS} events')
    pairs = []
    for item in missed:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], list) and item[0]
                and isinstance(item[0][0], str) and (item[1] is None or isinstance(item[1], str))):
            raise InvalidMessage('a missed event must be [[event, *args], msg_id or null]')
        if item[1] is not None:
            _id(item[1], 'msg_id')
        pairs.append((item[0], item[1]))
    seen = session.get('seen')
    if not isinstance(seen, list) or len(seen) > MAX_HANDOVER_EVENTS:
        raise InvalidMessage(f'a session needs "seen": up to {MAX_HANDOVER_EVENTS} message ids')
    for msg_id in seen:
        _id(msg_id, 'seen')
    return {'sid': sid, 'rooms': rooms, 'data': session['data'], 'missed': pairs, 'seen': seen}


def _decode_heartbeat(data: dict[str, Any], host_id: str, msg_id: str | None) -> HeartbeatMessage:
    interval: Any = data.get('interval')
    if type(interval) not in (int, float) or not MIN_HEARTBEAT_INTERVAL <= interval <= MAX_HEARTBEAT_INTERVAL:
        raise InvalidMessage(f'"interval" must be {MIN_HEARTBEAT_INTERVAL} to {MAX_HEARTBEAT_INTERVAL} seconds')
    return HeartbeatMessage(host_id=host_id, msg_id=msg_id, interval=float(interval), hello=_flag(data, 'hello'),
                            leaving=_flag(data, 'leaving'))


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
