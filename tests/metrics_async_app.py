"""An ``AsyncServer`` with greensio.metrics and greensio.health mounted, on uvicorn, for test_metrics.py.

Binds 127.0.0.1 on a free port and prints the port.  Handlers: ``echo``
(acks its argument), ``ask_slow`` (``call()``s the client's ``slow`` with a
0.2 s timeout and acks ``'timed out'`` or ``'answered'``), ``tick_all``
(emits ``tick`` to every client of ``/``), ``ask_everyone`` (emits ``slow`` to
every client with a callback and a 0.2 s timeout, and acks how many acks
were missing then).
"""

from __future__ import annotations

import asyncio
import socket

import uvicorn

import greensio
from greensio.health import Health
from greensio.metrics import Metrics


def build() -> greensio.ASGIApp:
    sio = greensio.AsyncServer(async_mode='asgi')

    @sio.on('echo')
    async def echo(sid, data):
        return data

    @sio.on('ask_slow')
    async def ask_slow(sid):
        try:
            await sio.call('slow', to=sid, timeout=0.2)
        except greensio.exceptions.TimeoutError:
            return 'timed out'
        return 'answered'

    @sio.on('tick_all')
    async def tick_all(sid):
        await sio.emit('tick', 1)

    @sio.on('ask_everyone')
    async def ask_everyone(sid):
        done = asyncio.get_running_loop().create_future()
        await sio.emit('slow', callback=lambda answers, missing: done.set_result(missing), timeout=0.2)
        return await done

    metrics = Metrics(sio, worker='w1')
    return greensio.ASGIApp(sio, Health(sio).asgi_app(metrics.asgi_app()))


async def main() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(('127.0.0.1', 0))
    sock.listen(128)
    server = uvicorn.Server(uvicorn.Config(build(), lifespan='off', log_level='warning'))
    print(sock.getsockname()[1], flush=True)
    await server.serve(sockets=[sock])


if __name__ == '__main__':
    asyncio.run(main())
