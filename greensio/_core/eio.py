"""Engine.IO v4 wire pieces shared by the green and the asyncio engines.

Core ring: pure functions over strings and bytes.  python-engineio carries
the transports; these are the parts of its polling codec and handshake that
greensio replaces, written once so ``engine.py`` (gevent) and
``async_engine.py`` (asyncio) cannot drift.  The codec itself lives in
``eio_codec``; the protocol state machines in ``eio_server`` (its HTTP face in
``eio_http``) and ``eio_client``.
"""

import re
from collections.abc import Iterable
from typing import Any

from .eio_codec import (  # noqa: F401 - the shells import these from here
    CLOSE,
    MESSAGE,
    NOOP,
    OK_BODY,
    OPEN,
    PING,
    PONG,
    UPGRADE,
    decode_payload,
    handshake,
    jsonp_wrap,
)
from .eio_http import cookie_attributes  # noqa: F401 - the shells import it from here


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
        body = jsonp_wrap(body, jsonp_index)
    return {
        'status': '200 OK',
        'headers': (headers or []) + [('Content-Type', 'text/plain; charset=UTF-8')],
        'response': body.encode('utf-8'),
    }


#: Does a query string name a transport?  python-engineio assumed polling
#: when it did not; the spec requires the parameter.
has_transport = re.compile(r'(?:^|&)transport=').search
