"""Engine.IO v4 wire pieces shared by the green and the asyncio engines.

Core ring: pure functions over strings and bytes.  python-engineio carries
the transports; these are the parts of its polling codec and handshake that
greensio replaces (each function says which defect it avoids), written once
so ``engine.py`` (gevent) and ``async_engine.py`` (asyncio) cannot drift.
"""

import base64
import binascii
import re
import urllib.parse
from collections.abc import Iterable
from typing import Any

from . import safejson

OPEN, CLOSE, PING, PONG, MESSAGE, UPGRADE, NOOP = range(7)

#: The body of a successful POST: the spec and the reference server say
#: ``ok``; python-engineio said ``OK``.
OK_BODY = b'ok'


def decode_payload(body: str) -> list[tuple[int, str | bytes]]:
    """Split a polling POST body into ``(packet_type, data)`` pairs.

    Unlike python-engineio, no cap of 16 packets (it dropped the whole POST
    and still answered OK); the body size is bounded by ``maxPayload``.
    Message payloads are kept as text: Socket.IO parses them, not Engine.IO.
    Raises ``ValueError`` on anything malformed: the caller ends the session.
    """
    if body.startswith('d='):  # JSONP form post
        body = urllib.parse.parse_qs(body).get('d', [''])[0]
    packets: list[tuple[int, str | bytes]] = []
    for part in body.split('\x1e'):
        if not part:
            raise ValueError('empty packet in payload')
        head = part[0]
        if head == 'b':
            try:
                packets.append((MESSAGE, base64.b64decode(part[1:], validate=True)))
            except binascii.Error:
                raise ValueError('invalid base64 in payload') from None
        elif head in '123456':
            packets.append((int(head), part[1:]))
        else:
            raise ValueError(f'unknown packet type {head!r}')
    return packets


def handshake(sid: str, upgrades: list[str], ping_interval: float, ping_interval_grace_period: float,
              ping_timeout: float, max_payload: int) -> str:
    """The JSON text of the OPEN packet.

    python-engineio truncated the interval to whole seconds before scaling
    to milliseconds, advertising 0 for any sub-second ``ping_interval``.
    """
    fields = {
        'sid': sid,
        'upgrades': upgrades,
        'pingTimeout': int(ping_timeout * 1000),
        'pingInterval': int((ping_interval + ping_interval_grace_period) * 1000),
        'maxPayload': max_payload,
    }
    return safejson.dumps(fields, separators=(',', ':'))


def ok_response(encoded_packets: Iterable[str] | None = None, headers: list[tuple[str, str]] | None = None,
                jsonp_index: int | None = None) -> dict[str, Any]:
    """python-engineio's response dict for a successful polling request.

    ``encoded_packets`` are packets already encoded for polling (binary as
    ``b<base64>``); ``None`` means a POST answer.  A JSONP body is escaped as
    a JSON string: python-engineio only escaped double quotes, so a payload
    ending in a backslash broke out of the string literal.
    """
    if encoded_packets is None:
        return {'status': '200 OK', 'headers': [('Content-Type', 'text/plain')], 'response': OK_BODY}
    body = '\x1e'.join(encoded_packets)
    if jsonp_index is not None:
        body = f'___eio[{jsonp_index}]({safejson.dumps(body)});'
    return {
        'status': '200 OK',
        'headers': (headers or []) + [('Content-Type', 'text/plain; charset=UTF-8')],
        'response': body.encode('utf-8'),
    }


def cookie_attributes(cookie: str | dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``cookie=`` option as attributes of the session cookie (None: no cookie)."""
    if not cookie:
        return None
    return cookie if isinstance(cookie, dict) else {'name': cookie, 'path': '/', 'SameSite': 'Lax'}


#: Does a query string name a transport?  python-engineio assumed polling
#: when it did not; the spec requires the parameter.
has_transport = re.compile(r'(?:^|&)transport=').search
