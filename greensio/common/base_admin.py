"""The server side of the Socket.IO Admin UI (``Server.instrument()``).

Integration ring.  The official Admin UI (``@socket.io/admin-ui``) is a web
page that connects to a server as a Socket.IO client, on a namespace of its
own (``/admin`` by default), and expects the server to report on that
namespace: periodic ``server_stats``, the list of sockets with their
handshake and rooms, and, in development mode, every connection, room
change and event as it happens; in return it may ask the server to make
sockets join or leave rooms, disconnect them or emit to them.

Nothing here runs unless ``instrument()`` was called: the reporting hooks
are installed then, as wrappers on the server's and the manager's own
methods (instance attributes), so a server that is not instrumented pays
nothing per event.  ``BaseInstrument`` holds what the green
``InstrumentedServer`` (``green/admin.py``) and the asyncio ``AsyncInstrumentedServer``
(``aio/async_admin.py``) share: the payloads, the credentials check, the
counters; each twin only adds its way of waiting and emitting.

With several workers behind a message queue, every worker is instrumented
by the same code: its ``server_stats`` (with its own ``serverId``) and its
development-mode reports are emits to the admin namespace, which the queue
carries to the Admin UI whatever worker it is connected to.  The UI's
actions go through the cluster methods (``sockets_join``, ``sockets_leave``,
``disconnect_sockets``, ``emit``), so they reach the sockets they name on
every worker.
"""

from __future__ import annotations

import hmac
import os
import secrets
import socket
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs

from .. import exceptions

HOSTNAME = socket.gethostname()
PID = os.getpid()

#: Admin UI login sessions one server remembers.  Each successful login
#: with credentials adds one (the UI reconnects with it after a page
#: reload); past this bound the oldest is forgotten, so a client that logs
#: in again and again cannot grow the server.
MAX_ADMIN_SESSIONS = 1000
#: How long a login session stays valid, in seconds: a leaked session id
#: stops working after a day, as a password change would make it.
ADMIN_SESSION_LIFETIME = 24 * 3600

#: With a message queue, each worker announces its sockets to the Admin UI
#: this often (seconds) in development mode: an Admin UI connected to one
#: worker learns so of the sockets that connected to the others before it
#: logged in.  Each announcement is one queue message per socket, hence not
#: more often.
ANNOUNCE_INTERVAL = 20.0
#: The server-side event (see ``Server.on_server``) a worker sends the others
#: when an Admin UI logs in to it: they announce their sockets at once, so
#: the UI lists them without waiting for their next announcement.
ANNOUNCE_EVENT = 'greensio.admin.announce'

#: The message the Admin UI recognises to show its login form again.
REFUSAL = 'invalid credentials'

_BCRYPT_PREFIXES = ('$2a$', '$2b$', '$2y$')


def _is_bcrypt_hash(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 60 and value.startswith(_BCRYPT_PREFIXES)


def _now_iso(t: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if t is None else t, timezone.utc).isoformat()  # noqa: UP017 - datetime.UTC is 3.11+


class Credentials:
    """What an Admin UI client must send in its ``auth`` to connect.

    ``auth`` is ``False`` (no check), a dict of expected values, a list of
    such dicts (any one matches) or a callable that receives the client's
    auth dict and returns whether it may connect.  A ``password`` in a dict
    may be a bcrypt hash (``$2b$...``, what the Node.js ``instrument()``
    takes), checked with the ``bcrypt`` package; a ``type`` key (``'basic'``
    in the Node.js options) is ignored.
    """

    def __init__(self, auth: Any) -> None:
        if auth is None:
            raise ValueError('auth must be specified: credentials, a callable, or False to disable authentication')
        if auth is False:
            self.expected: list[dict] | None = None
            self.check_function: Callable | None = None
        elif callable(auth):
            self.expected, self.check_function = None, auth
        elif isinstance(auth, dict) or (isinstance(auth, list) and auth and all(isinstance(a, dict) for a in auth)):
            self.expected = [self._prepare(a) for a in (auth if isinstance(auth, list) else [auth])]
            self.check_function = None
        else:
            raise ValueError('auth must be a dict, a list of dicts, a callable or False')

    @property
    def enabled(self) -> bool:
        return self.expected is not None or self.check_function is not None

    @property
    def issues_sessions(self) -> bool:
        """Credentials are typed by a person: a login session spares retyping them after a reload."""
        return self.expected is not None

    @staticmethod
    def _prepare(expected: dict) -> dict:
        expected = {k: v for k, v in expected.items() if k != 'type'}
        if _is_bcrypt_hash(expected.get('password')):
            try:
                import bcrypt  # noqa: F401 - checked here, so a missing package fails at start, not at login
            except ImportError as exc:
                raise ModuleNotFoundError("a bcrypt password hash in instrument(auth=...) needs the 'admin' extra: "
                                          "pip install 'greensio[admin]' (missing: bcrypt)") from exc
        return expected

    def matches(self, client_auth: Any) -> bool:
        """Whether ``client_auth`` matches one of the expected dicts (not the callable)."""
        if not isinstance(client_auth, dict) or self.expected is None:
            return False
        return any(self._match_one(expected, client_auth) for expected in self.expected)

    @staticmethod
    def _match_one(expected: dict, client_auth: dict) -> bool:
        for key, value in expected.items():
            given = client_auth.get(key)
            if key == 'password' and _is_bcrypt_hash(value):
                import bcrypt

                if not isinstance(given, str) or not bcrypt.checkpw(given.encode(), value.encode()):
                    return False
            elif isinstance(value, str) and isinstance(given, str):
                if not hmac.compare_digest(value.encode(), given.encode()):
                    return False
            elif given != value:
                return False
        return True


class EventBuffer:
    """Counts of engine events per second, sent and cleared with each ``server_stats``."""

    def __init__(self) -> None:
        self.buffer: dict[tuple[int, str, str | None], dict] = {}

    def push(self, kind: str, sub_type: str | None = None, count: int = 1) -> None:
        timestamp = int(time.time()) * 1000
        key = (timestamp, kind, sub_type)
        entry = self.buffer.get(key)
        if entry is None:
            entry = self.buffer[key] = {'timestamp': timestamp, 'type': kind, 'count': 0}
            if sub_type is not None:
                entry['subType'] = sub_type
        entry['count'] += count

    def get_and_clear(self) -> list[dict]:
        values, self.buffer = list(self.buffer.values()), {}
        return values


class BaseInstrument:
    """What both twins of the instrumented server share.

    Not used directly: ``Server.instrument()`` and
    ``AsyncServer.instrument()`` create the right one.
    """

    # each twin defines the admin namespace's handlers and the hooks, plain or coroutines
    admin_connect: Callable[..., Any]
    admin_emit: Callable[..., Any]
    admin_enter_room: Callable[..., Any]
    admin_leave_room: Callable[..., Any]
    admin_disconnect: Callable[..., Any]
    _announce_now: Callable[..., Any]
    _trigger_event: Callable[..., Any]
    _basic_enter_room: Callable[..., Any]
    _basic_leave_room: Callable[..., Any]
    _basic_close_room: Callable[..., Any]
    _manager_emit: Callable[..., Any]

    def __init__(self, sio: Any, auth: Any = None, mode: str = 'development', read_only: bool = False,
                 server_id: str | None = None, namespace: str = '/admin', server_stats_interval: float = 2) -> None:
        if mode not in ('development', 'production'):
            raise ValueError(f"mode must be 'development' or 'production', not {mode!r}")
        self.sio = sio
        self.credentials = Credentials(auth)
        self.mode = mode
        self.read_only = read_only
        self.admin_namespace = namespace
        self.server_stats_interval = server_stats_interval
        host_id = getattr(sio.manager, 'host_id', None)  # a queue manager's worker id
        self.queue = host_id is not None
        self.server_id = server_id or host_id or HOSTNAME
        self.announce_interval = ANNOUNCE_INTERVAL
        self.next_announce = 0.0
        self.event_buffer = EventBuffer()
        self.traffic = [0, 0, 0, 0]  # packets in, bytes in, packets out, bytes out since the last server_stats
        self.started = time.time()
        self.connected_at: dict[str, float] = {}  # sid -> when it connected (development mode)
        self.sessions: dict[str, float] = {}  # Admin UI login session id -> when it expires
        self.stats_task: Any = None
        self.stopped = False
        self.original: dict[str, Any] = {}  # the server's and manager's methods the hooks wrap
        if not self.credentials.enabled:
            sio.logger.warning('Admin UI instrumentation on %s without authentication: whoever reaches this '
                               'server can watch every client%s', namespace,
                               '' if read_only else ' and disconnect them')

    @property
    def development(self) -> bool:
        return self.mode == 'development'

    def supported_features(self) -> list[str]:
        features = [] if self.read_only else ['EMIT', 'JOIN', 'LEAVE', 'DISCONNECT', 'MJOIN', 'MLEAVE',
                                              'MDISCONNECT']
        features.append('AGGREGATED_EVENTS')
        if self.development:
            features.append('ALL_EVENTS')
        return features

    # -- authentication ---------------------------------------------------------

    def _needs_login(self, client_auth: Any) -> bool:
        """Whether the credentials must be checked: authentication is on and no valid login session was sent."""
        return self.credentials.enabled and not self._session_valid(client_auth)

    def _session_valid(self, client_auth: Any) -> bool:
        if not self.credentials.issues_sessions:
            return False
        session_id = client_auth.get('sessionId') if isinstance(client_auth, dict) else None
        if not isinstance(session_id, str):
            return False
        expires = self.sessions.get(session_id)
        if expires is None:
            return False
        if expires < time.time():
            del self.sessions[session_id]
            return False
        return True

    def _new_session(self) -> str:
        while len(self.sessions) >= MAX_ADMIN_SESSIONS:
            del self.sessions[next(iter(self.sessions))]  # dicts keep insertion order: the oldest
        session_id = secrets.token_hex(8)
        self.sessions[session_id] = time.time() + ADMIN_SESSION_LIFETIME
        return session_id

    def _refuse(self, environ: dict) -> None:
        self.sio.logger.warning('Admin UI connection from %s refused on %s: invalid credentials',
                                environ.get('REMOTE_ADDR', '?'), self.admin_namespace)
        raise exceptions.ConnectionRefusedError(REFUSAL)

    # -- payloads -----------------------------------------------------------------

    def _reported(self, namespace: str) -> bool:
        return namespace != self.admin_namespace

    def _transport(self, eio_sid: str | None) -> str:
        socket = self.sio.eio.sockets.get(eio_sid) if eio_sid else None
        return 'websocket' if socket is not None and socket.upgraded else 'polling'

    def serialize_socket(self, sid: str, namespace: str, eio_sid: str | None = None) -> dict:
        """A socket as the Admin UI lists it: ids, transport, handshake, rooms."""
        if eio_sid is None:
            eio_sid = self.sio.manager.eio_sid_from_sid(sid, namespace)
        environ = self.sio.environ.get(eio_sid, {}) if eio_sid else {}
        headers = {key[5:].lower().replace('_', '-'): value for key, value in environ.items()
                   if key.startswith('HTTP_')}
        for key in ('CONTENT_TYPE', 'CONTENT_LENGTH'):
            if environ.get(key):
                headers[key.lower().replace('_', '-')] = environ[key]
        query_string = environ.get('QUERY_STRING', '')
        query = {k: v[0] if len(v) == 1 else v for k, v in parse_qs(query_string).items()}
        address = headers.get('cf-connecting-ip') or headers.get('x-forwarded-for') or environ.get('REMOTE_ADDR', '')
        issued = self.connected_at.get(sid, 0)
        url = environ.get('PATH_INFO', '') + (f'?{query_string}' if query_string else '')
        return {
            'id': sid,
            'clientId': eio_sid,
            'transport': self._transport(eio_sid),
            'nsp': namespace,
            'data': {},
            'handshake': {
                'address': address,
                'headers': headers,
                'query': query,
                'secure': environ.get('wsgi.url_scheme') == 'https',
                'url': url,
                'issued': int(issued * 1000),
                'time': _now_iso(issued) if issued else '',
                'xdomain': 'origin' in headers,
            },
            'rooms': [room for room in self.sio.manager.get_rooms(sid, namespace) if room is not None],
        }

    def all_sockets(self) -> list[dict]:
        manager = self.sio.manager
        return [self.serialize_socket(sid, namespace, eio_sid)
                for namespace in manager.get_namespaces()
                for sid, eio_sid in list(manager.get_participants(namespace, None))]

    def server_stats(self) -> dict:
        sockets = list(self.sio.eio.sockets.values())
        rooms = self.sio.manager.rooms
        namespaces = sorted(set(rooms) | set(self.sio.handlers) | set(self.sio.namespace_handlers))
        return {
            'serverId': self.server_id,
            'hostname': HOSTNAME,
            'pid': PID,
            'uptime': time.time() - self.started,
            'clientsCount': len(sockets),
            'pollingClientsCount': sum(1 for s in sockets if not s.upgraded),
            'aggregatedEvents': self._aggregated_events(),
            'namespaces': [{'name': name, 'socketsCount': len(rooms.get(name, {}).get(None, ()))}
                           for name in namespaces],
        }

    def _aggregated_events(self) -> list[dict]:
        # traffic is counted with two additions per packet, and reported
        # under the second of the report (the UI's charts add up 10 s at a time)
        traffic, self.traffic = self.traffic, [0, 0, 0, 0]
        for kind, count in zip(('packetsIn', 'bytesIn', 'packetsOut', 'bytesOut'), traffic):
            if count:
                self.event_buffer.push(kind, count=count)
        return self.event_buffer.get_and_clear()

    def _targets(self, namespace: str, room_filter: Any) -> list[tuple[str, str]]:
        """The local sockets in a room (a socket's own room included), or all for None."""
        return list(self.sio.manager.get_participants(namespace, room_filter or None))

    @property
    def _announcing(self) -> bool:
        """Whether the workers announce their sockets to each other's Admin UIs."""
        return self.queue and self.development

    def _announcements(self, now_due: bool = False) -> list[tuple[dict, str]]:
        """``socket_connected`` arguments for every local socket, when a queue manager makes them due."""
        if not self._announcing:
            return []
        now = time.monotonic()
        if now < self.next_announce and not now_due:
            return []
        self.next_announce = now + self.announce_interval
        stamp = _now_iso()
        return [(socket, stamp) for socket in self.all_sockets()]

    @staticmethod
    def _event_args(event: str, data: Any) -> list:
        return [event, *data] if isinstance(data, tuple) else [event, data]

    def instrument(self) -> None:
        sio, ns = self.sio, self.admin_namespace
        sio.on('connect', self.admin_connect, namespace=ns)
        if not self.read_only:
            sio.on('emit', self.admin_emit, namespace=ns)
            sio.on('join', self.admin_enter_room, namespace=ns)
            sio.on('leave', self.admin_leave_room, namespace=ns)
            sio.on('_disconnect', self.admin_disconnect, namespace=ns)
        if self._announcing:
            sio.on_server(f'{ANNOUNCE_EVENT}:{ns}', self._announce_now)
        self._install_hooks()

    def _install_hooks(self) -> None:
        """Wrap the few methods that see connections, events and rooms go by.

        Each wrapper is an instance attribute of this server or its manager
        (the engine's handlers, registered again), so nothing changes for
        any other server and nothing runs when ``instrument()`` was not called.
        """
        sio = self.sio
        self.original['eio_connect'] = sio.eio.handlers['connect']
        self.original['eio_disconnect'] = sio.eio.handlers['disconnect']
        sio.eio.on('connect', self._handle_eio_connect)
        sio.eio.on('disconnect', self._handle_eio_disconnect)
        self.original['message_handler'] = sio.eio.message_handler
        sio.eio.message_handler = self._handle_eio_message
        self.original['_send_eio_packets'] = sio._send_eio_packets
        sio._send_eio_packets = self._send_eio_packets
        if not self.development:
            return
        manager = sio.manager
        for owner, name, wrapper in ((sio, '_trigger_event', self._trigger_event),
                                     (manager, 'basic_enter_room', self._basic_enter_room),
                                     (manager, 'basic_leave_room', self._basic_leave_room),
                                     (manager, 'basic_close_room', self._basic_close_room),
                                     (manager, 'emit', self._manager_emit)):
            self.original[name] = getattr(owner, name)
            setattr(owner, name, wrapper)

    def _handle_eio_connect(self, eio_sid: str, environ: dict) -> Any:
        self.event_buffer.push('rawConnection')
        self._start_stats()
        return self.original['eio_connect'](eio_sid, environ)

    def _handle_eio_disconnect(self, eio_sid: str, reason: str | None = None) -> Any:
        self.event_buffer.push('rawDisconnection', reason)
        return self.original['eio_disconnect'](eio_sid, reason)

    def _handle_eio_message(self, eio_sid: str, data: str | bytes) -> Any:
        traffic = self.traffic
        traffic[0] += 1
        traffic[1] += len(data)
        return self.original['message_handler'](eio_sid, data)

    def _send_eio_packets(self, eio_sid: str, eio_pkts: list[Any]) -> None:
        traffic = self.traffic
        traffic[2] += len(eio_pkts)
        traffic[3] += sum(len(eio_pkt.data or '') for eio_pkt in eio_pkts)
        self.original['_send_eio_packets'](eio_sid, eio_pkts)

    def _start_stats(self) -> None:
        raise NotImplementedError

