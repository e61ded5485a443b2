"""sanic for the asyncio Engine.IO server (``eio.attach(app)``).

Integration ring: a ``sanic.Request`` behind the driver seam described in
``async_drivers``.  Every HTTP method is routed to the server (the spec
answers the unused ones 400); a websocket is accepted with the handshake
of sanic's websocket protocol, after the core has routed the request.
"""

from __future__ import annotations

from typing import Any

from sanic.response import HTTPResponse  # type: ignore[import-not-found,unused-ignore]

from ..._core.eio_http import Response
from . import CLOSE_NORMAL, wsgi_environ

_METHODS = ['GET', 'POST', 'OPTIONS', 'PUT', 'DELETE', 'PATCH', 'HEAD']


def create_route(app: Any, engineio_server: Any, engineio_endpoint: str) -> None:
    app.add_route(engineio_server.handle_request, engineio_endpoint, methods=_METHODS)
    app.enable_websocket()


async def translate(server: Any, request: Any) -> SanicRequest:
    return SanicRequest(request)


def _response(response: Response) -> HTTPResponse:
    headers = {}
    content_type = None
    for name, value in response.headers:
        if name.lower() == 'content-type':
            content_type = value
        else:
            headers[name] = value
    if response.close_connection:
        headers['Connection'] = 'close'
    return HTTPResponse(body=response.body, status=response.status, headers=headers, content_type=content_type)


class SanicRequest:
    __slots__ = ('_environ', 'headers', 'method', 'path', 'query', 'request', 'scheme', 'websocket')

    def __init__(self, request: Any) -> None:
        self.request = request
        self.method = request.method
        self.path = request.path
        self.query = request.query_string or ''
        self.headers = request.headers  # case-insensitive
        self.scheme = 'https' if request.scheme in ('https', 'wss') else 'http'
        self.websocket = (request.headers.get('upgrade') or '').lower() == 'websocket'
        self._environ: dict | None = None

    def environ(self) -> dict:
        if self._environ is None:
            ip = self.request.ip
            self._environ = wsgi_environ(self.method, self.path, self.query, self.headers.items(), self.scheme,
                                         'sanic', (ip, self.request.port) if ip else None,
                                         **{'sanic.request': self.request})
        return self._environ

    async def read_body(self, limit: int) -> bytes:
        return (self.request.body or b'')[:limit]  # sanic read it whole (its REQUEST_MAX_SIZE bounds it)

    async def respond(self, response: Response) -> HTTPResponse:
        return _response(response)

    async def accept_websocket(self, headers: list[tuple[str, str]]) -> SanicWebSocket | None:
        protocol = self.request.transport.get_protocol()
        ws = await protocol.websocket_handshake(self.request)
        return SanicWebSocket(ws)

    async def refuse_websocket(self, response: Response) -> HTTPResponse:
        return _response(response)

    def result(self) -> None:
        return None


class SanicWebSocket:
    __slots__ = ('ws',)

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def receive(self) -> str | bytes | None:
        try:
            return await self.ws.recv()
        except Exception:  # noqa: BLE001 - sanic raises its ConnectionClosed: the end, as None says
            return None

    async def send(self, message: str | bytes) -> None:
        await self.ws.send(message)

    async def close(self, code: int = CLOSE_NORMAL) -> None:
        await self.ws.close(code=code)
