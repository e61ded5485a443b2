"""The web frameworks the asyncio Engine.IO server runs on: one small module each.

Integration ring.  A driver module has ``translate(server, *args)``, which
turns the framework's request into an object with the seam the shell
(``greensio.engineio.async_server``) uses, and, where the framework routes
by path, ``create_route(app, server, path)`` for ``attach``:

- ``method``, ``path``, ``query`` (raw), ``headers`` (``get`` by lower-case
  name), ``scheme`` (``http``/``https``), ``websocket`` (a websocket request);
- ``environ()``: the WSGI-style environ the connect handler gets (with the
  framework's own request object under its python-engineio key);
- ``read_body(limit)``, ``respond(response)`` (returns what the framework's
  handler returns);
- ``accept_websocket(headers)`` (a websocket with ``receive()`` → str, bytes
  or None at the end, ``send(msg)``, ``close(code)``; None if the client went
  away), ``refuse_websocket(response)``, ``result()`` (the handler's return
  value once a websocket request is done).
"""

from __future__ import annotations

import sys
from typing import Any

#: A websocket closed normally (RFC 6455).
CLOSE_NORMAL = 1000


def wsgi_environ(method: str, path: str, query: str, headers: Any, scheme: str, server_software: str,
                 remote: tuple[str, int] | None, **extra: Any) -> dict[str, Any]:
    """The WSGI-style environ python-engineio's drivers build (``headers``: (name, value) pairs)."""
    environ: dict[str, Any] = {
        'wsgi.errors': sys.stderr,
        'wsgi.version': (1, 0),
        'wsgi.async': True,
        'wsgi.multithread': False,
        'wsgi.multiprocess': False,
        'wsgi.run_once': False,
        'SERVER_SOFTWARE': server_software,
        'REQUEST_METHOD': method,
        'PATH_INFO': path,
        'QUERY_STRING': query,
        'RAW_URI': path + ('?' + query if query else ''),
        'SCRIPT_NAME': '',
        'SERVER_PROTOCOL': 'HTTP/1.1',
        'REMOTE_ADDR': remote[0] if remote else '127.0.0.1',
        'REMOTE_PORT': str(remote[1]) if remote else '0',
        'SERVER_NAME': server_software,
        'SERVER_PORT': '0',
        **extra,
    }
    for name, value in headers:
        name = name.upper()
        if name == 'CONTENT-TYPE':
            environ['CONTENT_TYPE'] = value
            continue
        if name == 'CONTENT-LENGTH':
            environ['CONTENT_LENGTH'] = value
            continue
        key = 'HTTP_' + name.replace('-', '_')
        environ[key] = f'{environ[key]},{value}' if key in environ else value
    environ['wsgi.url_scheme'] = environ.get('HTTP_X_FORWARDED_PROTO', scheme)
    return environ
