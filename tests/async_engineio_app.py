"""A plain ``greensio.engineio.AsyncServer`` in its own process, for the tests.

``python async_engineio_app.py FRAMEWORK [OPTIONS_JSON [socketio]]`` serves an echo
server on 127.0.0.1 and a free port, at ``/socket.io/``, under ``asgi``
(uvicorn), ``aiohttp``, ``tornado`` or ``sanic``, and prints the port.  The echo
handler answers each message with the same message; a message ``"close"``
makes the server close the session.  ``GET /reasons`` answers the
disconnect reasons seen so far, as JSON ``{sid: reason}``.  With ``socketio``
it is a ``greensio.AsyncServer`` instead, served as python-socketio documents
for each framework (``ASGIApp``, ``attach``, ``get_tornado_handler``), with an
``echo`` event that acks its argument.  The test process
is gevent-monkey-patched, so the asyncio server runs here, in a plain
interpreter that must never import gevent.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from typing import Any

import greensio as socketio
import greensio.engineio as engineio  # noqa: PLR0402 - the drop-in idiom python-engineio apps use

REASONS: dict[str, str] = {}


def make_server(mode: str, options: dict[str, Any]) -> engineio.AsyncServer:
    eio = engineio.AsyncServer(async_mode=mode, **options)

    @eio.on('message')
    async def message(sid: str, data: Any) -> None:
        if data == 'close':
            await eio.disconnect(sid)
        else:
            await eio.send(sid, data)

    @eio.on('disconnect')
    def disconnect(sid: str, reason: str) -> None:
        REASONS[sid] = reason

    return eio


def make_socketio_server(mode: str, options: dict[str, Any]) -> socketio.AsyncServer:
    sio = socketio.AsyncServer(async_mode=mode, **options)

    @sio.event
    async def echo(sid: str, data: Any) -> Any:
        return data

    @sio.event
    def disconnect(sid: str, reason: str) -> None:
        REASONS[sid] = reason

    return sio


def listening_socket() -> socket.socket:
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
    # uvicorn writes a response's head and body apart (without it: a 40 ms delayed-ACK stall)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(('127.0.0.1', 0))
    sock.listen(128)
    return sock


async def serve_asgi(server: Any, sock: socket.socket) -> None:
    import uvicorn

    if isinstance(server, socketio.AsyncServer):
        app = socketio.ASGIApp(server, other_asgi_app=reasons_asgi)
    else:
        app = engineio.ASGIApp(server, engineio_path='socket.io', other_asgi_app=reasons_asgi)
    config = uvicorn.Config(app, lifespan='off', log_level='warning', ws_max_size=1_000_000)
    await uvicorn.Server(config).serve(sockets=[sock])


async def reasons_asgi(scope: dict, receive: Any, send: Any) -> None:
    await send({'type': 'http.response.start', 'status': 200, 'headers': [(b'content-type', b'application/json')]})
    await send({'type': 'http.response.body', 'body': json.dumps(REASONS).encode()})


async def serve_aiohttp(server: Any, sock: socket.socket) -> None:
    from aiohttp import web

    async def reasons(request: web.Request) -> web.Response:
        return web.json_response(REASONS)

    app = web.Application()
    server.attach(app, 'socket.io')
    app.router.add_get('/reasons', reasons)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    await asyncio.Event().wait()


async def serve_tornado(server: Any, sock: socket.socket) -> None:
    import tornado.httpserver
    import tornado.web

    class Reasons(tornado.web.RequestHandler):
        def get(self) -> None:
            self.write(REASONS)

    handler = (socketio if isinstance(server, socketio.AsyncServer) else engineio).get_tornado_handler(server)
    app = tornado.web.Application([(r'/socket.io/', handler), (r'/reasons', Reasons)])
    server = tornado.httpserver.HTTPServer(app)
    sock.setblocking(False)
    server.add_sockets([sock])
    await asyncio.Event().wait()


async def serve_sanic(server: Any, sock: socket.socket) -> None:
    from sanic import Sanic, response

    app = Sanic('greensio_test')
    server.attach(app, 'socket.io')

    @app.get('/reasons')
    async def reasons(request: Any) -> Any:
        return response.json(REASONS)

    server = await app.create_server(sock=sock, return_asyncio_server=True, access_log=False)
    await server.startup()
    await server.serve_forever()


async def main(mode: str, options: dict[str, Any], kind: str) -> None:
    server = make_socketio_server(mode, options) if kind == 'socketio' else make_server(mode, options)
    sock = listening_socket()
    print(sock.getsockname()[1], flush=True)
    serve = {'asgi': serve_asgi, 'aiohttp': serve_aiohttp, 'tornado': serve_tornado, 'sanic': serve_sanic}[mode]
    await serve(server, sock)


if __name__ == '__main__':
    asyncio.run(main(sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else {},
                     sys.argv[3] if len(sys.argv) > 3 else 'engineio'))
