"""Engine.IO v4 server options and its HTTP face: request decisions, answers, CORS, cookie, compression.

Core ring, the part of ``eio_server`` that speaks HTTP.  ``EngineCore.route``
turns a request (method, raw query string, headers) into one of the
decisions defined here; each builds its own :class:`Response` (status,
headers, body), which a WSGI, ASGI, aiohttp or tornado shell writes as it
is.  Refusals carry the spec's error codes (a JSON body ``{"code", "message"}``
as the reference server sends) with HTTP 400, or 403 for a refused Origin;
an oversize POST is answered 413 from its headers.  Nothing here does I/O
or calls user code: a callable ``cors_allowed_origins`` or cookie attribute
is called by the shell, which passes the result in.
"""

from __future__ import annotations

import gzip
import urllib.parse
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from . import safejson
from .eio_codec import OK_BODY, jsonp_wrap
from .errors import LocalProtocolError, RemoteProtocolError

if TYPE_CHECKING:
    from .eio_server import ServerSession

# The spec's error codes, with the reference server's messages.
UNKNOWN_TRANSPORT, UNKNOWN_SID, BAD_HANDSHAKE_METHOD, BAD_REQUEST, FORBIDDEN, UNSUPPORTED_PROTOCOL_VERSION = range(6)
ERROR_MESSAGES = ('Transport unknown', 'Session ID unknown', 'Bad handshake method', 'Bad request', 'Forbidden',
                  'Unsupported protocol version')


TRANSPORTS = ('polling', 'websocket')

#: Packets buffered for a long-polling client before the session is closed:
#: a client that stopped polling is found by the heartbeat only after
#: ping_interval + ping_timeout, and a busy broadcast must not grow the
#: server's memory without end meanwhile.
MAX_BUFFERED_PACKETS = 10_000
#: Seconds a reserved websocket upgrade may take to complete its probe
#: (the reference server's ``upgradeTimeout``); past it the probing
#: websocket is closed and the session stays on long-polling.
UPGRADE_TIMEOUT = 10.0
#: Longest ``sid`` query parameter looked up: generated ids are 20
#: characters, and a longer one cannot name a session.
MAX_SID_LENGTH = 64
#: Longest ``j`` (JSONP index) accepted: it is echoed into a script.
MAX_JSONP_INDEX_DIGITS = 9

STATUS_LINES = {200: '200 OK', 204: '204 No Content', 400: '400 Bad Request', 401: '401 Unauthorized',
                403: '403 Forbidden', 413: '413 Payload Too Large'}
_TEXT = ('Content-Type', 'text/plain; charset=UTF-8')
_JSON = ('Content-Type', 'application/json')


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    """The Engine.IO server options (python-engineio's names in seconds; see ``Server``)."""

    ping_interval: float = 25.0
    #: python-engineio's second element of ``ping_interval=(interval, grace)``
    ping_interval_grace_period: float = 0.0
    ping_timeout: float = 20.0
    #: python-engineio's ``max_http_buffer_size``
    max_payload: int = 1_000_000
    transports: tuple[str, ...] = TRANSPORTS
    allow_upgrades: bool = True
    #: None: same origin only; '*': any; a str or a sequence of str; [] turns CORS off;
    #: a callable is asked by the shell (user code), whose verdict goes to ``route``
    cors_allowed_origins: Any = None
    cors_credentials: bool = True
    #: python-engineio's ``cookie``: a name, or a dict of cookie attributes (``name`` among them)
    cookie: str | dict[str, Any] | None = None
    max_buffered_packets: int = MAX_BUFFERED_PACKETS
    upgrade_timeout: float = UPGRADE_TIMEOUT

    def __post_init__(self) -> None:
        if not self.transports or any(t not in TRANSPORTS for t in self.transports):
            raise LocalProtocolError(f'transports must be among {TRANSPORTS}, not {self.transports!r}')
        if self.ping_interval <= 0 or self.ping_timeout <= 0 or self.max_payload <= 0:
            raise LocalProtocolError('ping_interval, ping_timeout and max_payload must be positive')


# -- requests and answers -----------------------------------------------------------------------------
#
# The answers to the requests of the polling round trip (Poll, Post, Response)
# are not frozen: one of each is built per request, and a frozen dataclass
# costs twice as much to build.  Nothing changes them after ``route``.


class Headers(Protocol):
    """Request headers, looked up by lower-case name (a dict, or a server's own header object)."""

    def get(self, name: str, default: None = None, /) -> str | None: ...


@dataclass(slots=True, kw_only=True)
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    #: end the TCP connection after this answer (its request body was not read)
    close_connection: bool = False

    @property
    def status_line(self) -> str:
        return STATUS_LINES.get(self.status, str(self.status))


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """Answer and forget.  ``closed`` is a session this request ended (already reported to ``closed``)."""

    status: int
    code: int | None
    message: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    close_connection: bool = False
    closed: ServerSession | None = None

    def response(self) -> Response:
        if self.code is None:
            body = self.message.encode('utf-8')
            headers = [*self.headers, ('Content-Type', 'text/plain')]
        else:
            body = safejson.dumps({'code': self.code, 'message': self.message}, separators=(',', ':')).encode()
            headers = [*self.headers, _JSON]
        return Response(status=self.status, headers=headers, body=body, close_connection=self.close_connection)


class HttpRefused(RemoteProtocolError):
    """A session refused the peer's request (raised by ``poll``/``receive_post``); answer ``refusal``."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


@dataclass(frozen=True, slots=True, kw_only=True)
class Preflight:
    """A CORS preflight (OPTIONS): answer at once."""

    headers: list[tuple[str, str]]

    def response(self) -> Response:
        return Response(status=204, headers=self.headers, body=b'')


@dataclass(slots=True, kw_only=True)
class _PollingAnswer:
    headers: list[tuple[str, str]]
    jsonp_index: int | None

    def response(self, body: str) -> Response:
        """A 200 answer carrying a long-polling body (from ``poll``/``finish_poll``)."""
        if self.jsonp_index is not None:
            body = jsonp_wrap(body, self.jsonp_index)
            return Response(status=200, headers=[*self.headers, ('Content-Type', 'text/javascript; charset=UTF-8')],
                            body=body.encode('utf-8'))
        return Response(status=200, headers=[*self.headers, _TEXT], body=body.encode('utf-8'))


@dataclass(slots=True, kw_only=True)
class Handshake(_PollingAnswer):
    """A new session: ``open()`` it (the transport is given), then answer or ``discard()``."""

    transport: str
    #: the sid cookie's attributes (``cookie`` option), or None.  python-engineio
    #: lets a value be a callable (user code): the shell calls those and passes
    #: the result to ``response_for``
    cookie: dict[str, Any] | None

    def response_for(self, session: ServerSession, body: str, cookie: dict[str, Any] | None = None) -> Response:
        """The 200 answer with the session's first long-polling body (and its cookie)."""
        r = self.response(body)
        attributes = self.cookie if cookie is None else cookie
        if attributes is None:
            return r
        return Response(status=200, headers=[*r.headers, ('Set-Cookie', sid_cookie(session.sid, attributes))],
                        body=r.body)


@dataclass(slots=True, kw_only=True)
class Poll(_PollingAnswer):
    """A long-polling GET: ``session.poll(now)``, and if that says wait, ``finish_poll()`` once woken."""

    session: ServerSession


@dataclass(slots=True, kw_only=True)
class Post(_PollingAnswer):
    """A long-polling POST: read at most ``max_body`` bytes, then ``session.receive_post``.

    ``content_length`` is None for a chunked body: read ``max_body + 1``
    bytes at the most, and ``receive_post`` refuses it if they all came.
    Always call ``receive_post``, with what was read (``b''`` when the read
    failed): until then a second POST counts as overlapping.
    """

    session: ServerSession
    content_length: int | None
    max_body: int
    binary: bool

    def ok(self) -> Response:
        return Response(status=200, headers=[*self.headers, ('Content-Type', 'text/plain')], body=OK_BODY)


@dataclass(frozen=True, slots=True, kw_only=True)
class WebSocketRequest:
    """Accept the websocket upgrade (HTTP 101).

    ``session`` None: a websocket-only session, ``open()`` it once accepted.
    Otherwise the upgrade of that polling session is reserved: feed the
    websocket's messages to ``session.receive_probe`` until it says done,
    or call ``session.abort_probe()`` if the websocket fails first.
    """

    headers: list[tuple[str, str]]
    session: ServerSession | None


Route = Refusal | Preflight | Handshake | Poll | Post | WebSocketRequest


def parse_query(query: str) -> dict[str, str]:
    """A query string as a dict; the first of repeated names wins (as python-engineio reads it)."""
    params: dict[str, str] = {}
    if not query:
        return params
    plain = '%' not in query and '+' not in query
    for part in query.split('&'):
        name, _, value = part.partition('=')
        if not plain:
            name, value = urllib.parse.unquote_plus(name), urllib.parse.unquote_plus(value)
        params.setdefault(name, value)
    return params


#: Response bodies shorter than this are sent as they are: compressing them
#: costs more time than the bytes it saves (python-engineio's default).
COMPRESSION_THRESHOLD = 1024
_COMPRESSORS = {'gzip': lambda body: gzip.compress(body, 6, mtime=0), 'deflate': zlib.compress}


def compress(body: bytes, accept_encoding: str | None, methods: Sequence[str] = ('gzip', 'deflate'),
             threshold: int = COMPRESSION_THRESHOLD) -> tuple[bytes, str | None]:
    """A polling body compressed for a client that accepts it: ``(body, Content-Encoding or None)``.

    python-engineio's ``http_compression``: the first of ``methods`` the
    request's Accept-Encoding names, for bodies of ``threshold`` bytes or more.
    """
    if len(body) < threshold or not accept_encoding:
        return body, None
    accepted = {part.split(';')[0].strip().lower() for part in accept_encoding.split(',')}
    for method in methods:
        if method in accepted and method in _COMPRESSORS:
            return _COMPRESSORS[method](body), method
    return body, None


def sid_cookie(sid: str, attributes: dict[str, Any]) -> str:
    """The ``Set-Cookie`` value carrying the sid (python-engineio's format: ``True`` is a bare flag)."""
    cookie = f"{attributes.get('name', 'io')}={sid}"
    for name, value in attributes.items():
        if name == 'name':
            continue
        if callable(value):
            raise LocalProtocolError(f'cookie attribute {name!r} is a callable: the shell calls it')
        cookie += f'; {name}' if value is True else f'; {name}={value}'
    return cookie


def bad_header_value(value: str) -> bool:
    # what the reference server refuses in an Origin: controls other than tab, and non-Latin-1
    return any((ord(c) < 32 and c != '\t') or ord(c) == 127 or ord(c) > 255 for c in value)


class CorsPolicy:
    """The CORS and origin policy of ``cors_allowed_origins``, decided once per server."""

    def __init__(self, config: ServerConfig) -> None:
        origins = config.cors_allowed_origins
        self.enabled = not (isinstance(origins, (list, tuple)) and not origins)
        self.callable = callable(origins)
        self.any = origins == '*' or (isinstance(origins, (list, tuple, set, frozenset)) and '*' in origins)
        self.same_origin = origins is None
        self.allowed: frozenset[str] = frozenset()
        if isinstance(origins, str):
            self.allowed = frozenset([origins])
        elif isinstance(origins, (list, tuple, set, frozenset)):
            self.allowed = frozenset(o for o in origins if isinstance(o, str))
        self.credentials = config.cors_credentials

    def allows(self, origin: str, headers: Headers, scheme: str, verdict: bool | None) -> bool:
        if not self.enabled or self.any:
            return True
        if self.callable:
            if verdict is None:
                raise LocalProtocolError('a callable cors_allowed_origins: pass its verdict as origin_verdict')
            return verdict
        if self.same_origin:
            host = headers.get('host')
            if host is None:
                return False
            if origin == f'{scheme}://{host}':
                return True
            proto, fhost = headers.get('x-forwarded-proto'), headers.get('x-forwarded-host')
            if proto is None and fhost is None:
                return False
            proto = (proto or scheme).split(',')[0].strip()
            fhost = (fhost or host).split(',')[0].strip()
            return origin == f'{proto}://{fhost}'
        return origin in self.allowed

    def headers(self, origin: str | None, method: str, headers: Headers) -> list[tuple[str, str]]:
        if not self.enabled:
            return []
        out = [] if origin is None else [('Access-Control-Allow-Origin', origin)]
        if method == 'OPTIONS':
            out.append(('Access-Control-Allow-Methods', 'OPTIONS, GET, POST'))
            asked = headers.get('access-control-request-headers')
            if asked is not None:
                out.append(('Access-Control-Allow-Headers', asked))
        if self.credentials:
            out.append(('Access-Control-Allow-Credentials', 'true'))
        return out


def unauthorized(message: Any = None) -> Response:
    """The answer to a handshake the application refused (python-engineio's 401 with a JSON body)."""
    body = safejson.dumps('Unauthorized' if message is None else message).encode('utf-8')
    return Response(status=401, headers=[_JSON], body=body)


def refuse(code: int, status: int = 400, message: str | None = None, *,
           headers: list[tuple[str, str]] | None = None, close_connection: bool = False,
           closed: ServerSession | None = None) -> Refusal:
    """A refusal with one of the spec's error codes (its message unless another is given)."""
    return Refusal(status=status, code=code, message=message or ERROR_MESSAGES[code], headers=headers or [],
                   close_connection=close_connection, closed=closed)


def cookie_attributes(cookie: str | dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``cookie`` option as attributes of the sid cookie (None: no cookie)."""
    if not cookie:
        return None
    return cookie if isinstance(cookie, dict) else {'name': cookie, 'path': '/', 'SameSite': 'Lax'}


def content_length_of(value: str | None) -> int | None:
    # int() would take '+5', ' 5' and '5_0'
    return int(value) if value is not None and value.isascii() and value.isdigit() else None
