"""A plain ``greensio.engineio.AsyncServer`` in its own process, for the tests.

``python async_engineio_app.py FRAMEWORK [OPTIONS_JSON]`` serves an echo
server on 127.0.0.1 and a free port, at ``/socket.io/``, under ``asgi``
(uvicorn), ``aiohttp``, ``tornado`` or ``sanic``, and prints the port.  The echo
handler answers each message with the same message; a message ``"close"``
makes the server close the session.  ``GET /reasons`` answers the
disconnect reasons seen so far, as JSON ``{sid: reason}``.  The test process
is gevent-monkey-patched, so the asyncio server runs here, in a plain
interpreter that must never import gevent.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from typing import Any

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


def listening_socket() -> socket.socket:
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
    # uvicorn writes a response's head and body apart (without it: a 40 ms delayed-ACK stall)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(('127.0.0.1', 0))
    sock.listen(128)
    return sock


async def serve_asgi(eio: engineio.AsyncServer, sock: socket.socket) -> None:
    import uvicorn

    app = engineio.ASGIApp(eio, engineio_path='socket.io', other_asgi_app=reasons_asgi)
    config = uvicorn.Config(app, lifespan='off', log_level='warning', ws_max_size=eio.max_http_buffer_size)
    await uvicorn.Server(config).serve(sockets=[sock])


async def reasons_asgi(scope: dict, receive: Any, send: Any) -> None:
    await send({'type': 'http.response.start', 'status': 200, 'headers': [(b'content-type', b'application/json')]})
    await send({'type': 'http.response.body', 'body': json.dumps(REASONS).encode()})


async def serve_aiohttp(eio: engineio.AsyncServer, sock: socket.socket) -> None:
    from aiohttp import web

    async def reasons(request: web.Request) -> web.Response:
        return web.json_response(REASONS)

    app = web.Application()
    eio.attach(app, 'socket.io')
    app.router.add_get('/reasons', reasons)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    await asyncio.Event().wait()


async def serve_tornado(eio: engineio.AsyncServer, sock: socket.socket) -> None:
    import tornado.httpserver
    import tornado.web

    class Reasons(tornado.web.RequestHandler):
        def get(self) -> None:
            self.write(REASONS)

    app = tornado.web.Application([(r'/socket.io/', engineio.get_tornado_handler(eio)), (r'/reasons', Reasons)])
    server = tornado.httpserver.HTTPServer(app)
    sock.setblocking(False)
    server.add_sockets([sock])
    await asyncio.Event().wait()


async def serve_sanic(eio: engineio.AsyncServer, sock: socket.socket) -> None:
    from sanic import Sanic, response

    app = Sanic('greensio_test')
    eio.attach(app, 'socket.io')

    @app.get('/reasons')
    async def reasons(request: Any) -> Any:
        return response.json(REASONS)

    server = await app.create_server(sock=sock, return_asyncio_server=True, access_log=False)
    await server.startup()
    await server.serve_forever()


async def main(mode: str, options: dict[str, Any]) -> None:
    eio = make_server(mode, options)
    sock = listening_socket()
    print(sock.getsockname()[1], flush=True)
    serve = {'asgi': serve_asgi, 'aiohttp': serve_aiohttp, 'tornado': serve_tornado, 'sanic': serve_sanic}[mode]
    await serve(eio, sock)


if __name__ == '__main__':
    asyncio.run(main(sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}))
