"""``ASGIApp``: the asyncio Engine.IO server as an ASGI application (python-engineio's).

Integration ring: routes the Engine.IO path to the server, other paths to
static files or another ASGI application, and answers the lifespan protocol.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from typing import Any

from .static_files import get_static_file


class ASGIApp:
    """An ASGI application serving a :class:`greensio.engineio.AsyncServer`.

    :param engineio_server: the server; one created without ``async_mode``
        is moved onto ASGI, one created for another framework is refused.
    :param other_asgi_app: an ASGI application that gets every other request.
    :param static_files: static file rules (``{'/': 'index.html'}``...).
    :param engineio_path: where Engine.IO is served; ``None`` serves it on
        every path (and ignores ``static_files`` and ``other_asgi_app``).
    :param on_startup: called (or awaited) on ASGI lifespan startup.
    :param on_shutdown: called (or awaited) on ASGI lifespan shutdown.

    Run it with uvicorn, for example ``uvicorn.run(app, ws_max_size=
    eio.max_http_buffer_size)``: ``ws_max_size`` lets uvicorn refuse an
    oversize websocket message from its frame header instead of reading it.
    """

    def __init__(self, engineio_server: Any, other_asgi_app: Any = None, static_files: dict | None = None,
                 engineio_path: str | None = 'engine.io', on_startup: Any = None, on_shutdown: Any = None) -> None:
        if engineio_server.async_mode != 'asgi':
            if not engineio_server.mode_detected:
                raise ValueError(f"ASGIApp needs a server with async_mode='asgi', not {engineio_server.async_mode!r}")
            engineio_server._use_driver('asgi')  # picked another installed framework by itself
        self.engineio_server = engineio_server
        self.other_asgi_app = other_asgi_app
        if engineio_path is not None:
            engineio_path = '/' + engineio_path.strip('/') + '/'
            if engineio_path == '//':
                engineio_path = '/'
        self.engineio_path = engineio_path
        self.static_files = static_files or {}
        self.on_startup = on_startup
        self.on_shutdown = on_shutdown

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        kind = scope['type']
        if kind == 'lifespan':
            await self.lifespan(scope, receive, send)
        elif kind in ('http', 'websocket') and (
                self.engineio_path is None or (scope['path'].rstrip('/') + '/').startswith(self.engineio_path)):
            await self.engineio_server.handle_request(scope, receive, send)
        else:
            static_file = get_static_file(scope['path'], self.static_files) \
                if kind == 'http' and self.static_files else None
            if static_file is not None and os.path.exists(static_file['filename']):
                await self.serve_static_file(static_file, receive, send)
            elif self.other_asgi_app is not None:
                await self.other_asgi_app(scope, receive, send)
            elif kind == 'http':
                await self.not_found(receive, send)
            else:
                await send({'type': 'websocket.close'})

    async def serve_static_file(self, static_file: dict, receive: Any, send: Any) -> None:
        """Answer with a static file."""
        event = await receive()
        if event['type'] == 'http.request':
            payload = await asyncio.to_thread(_read, static_file['filename'])  # off the event loop
            await send({'type': 'http.response.start', 'status': 200,
                        'headers': [(b'Content-Type', static_file['content_type'].encode('utf-8'))]})
            await send({'type': 'http.response.body', 'body': payload})

    async def lifespan(self, scope: dict, receive: Any, send: Any) -> None:
        """The ASGI lifespan protocol; another ASGI app gets it when no hooks are given here."""
        if self.other_asgi_app is not None and self.on_startup is None and self.on_shutdown is None:
            await self.other_asgi_app(scope, receive, send)
            return
        while True:
            event = await receive()
            if event['type'] == 'lifespan.startup':
                if not await _run_hook(self.on_startup):
                    await send({'type': 'lifespan.startup.failed'})
                    return
                await send({'type': 'lifespan.startup.complete'})
            elif event['type'] == 'lifespan.shutdown':
                if not await _run_hook(self.on_shutdown):
                    await send({'type': 'lifespan.shutdown.failed'})
                    return
                await send({'type': 'lifespan.shutdown.complete'})
                return

    async def not_found(self, receive: Any, send: Any) -> None:
        """Answer 404 Not Found."""
        await send({'type': 'http.response.start', 'status': 404, 'headers': [(b'Content-Type', b'text/plain')]})
        await send({'type': 'http.response.body', 'body': b'Not Found'})


def _read(filename: str) -> bytes:
    with open(filename, 'rb') as f:
        return f.read()


async def _run_hook(hook: Any) -> bool:
    if hook is None:
        return True
    try:
        result = hook()
        if inspect.isawaitable(result):
            await result
    except Exception:  # noqa: BLE001 - reported to the ASGI server as a failed startup/shutdown
        return False
    return True
