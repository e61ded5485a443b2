"""Benchmark server, asyncio: the bench's Socket.IO app on an ``AsyncServer`` under uvicorn.

Run by bench.py for ``--impls greensio-asgi,socketio-asgi`` (pinned to one core), one fresh
process per measurement:

    python async_server_app.py --impl greensio-asgi|socketio-asgi --port P [--scenario NAME]

greensio's ``AsyncServer`` and python-socketio's get the same handlers as server_app.py's
(``echo``, ``bin_echo``, ``start_broadcast``), the same options, the same ``ASGIApp`` and the
same uvicorn, so the figures compare the asyncio Engine.IO and Socket.IO layers alone.
Prints the same ready line as server_app.py.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import socket

import uvicorn

HOST = '127.0.0.1'
TICK_TEXT = 'tick payload: a short broadcast message'  # server_app.py's


def build_app(socketio):
    sio = socketio.AsyncServer(async_mode='asgi', cors_allowed_origins='*', ping_interval=25,
                               max_http_buffer_size=10_000_000)

    @sio.event
    async def echo(sid, *args):
        return args

    @sio.event
    async def bin_echo(sid, data):
        return data

    @sio.event
    async def start_broadcast(sid, options):
        # one fan-out after another, as server_app.py's
        count = int(options.get('count', 0))
        for i in range(count):
            await sio.emit('tick', {'i': i, 'text': TICK_TEXT})
            await asyncio.sleep(0)
        await sio.emit('done', count)

    return socketio.ASGIApp(sio)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--impl', required=True, choices=['greensio-asgi', 'socketio-asgi'])
    parser.add_argument('--port', type=int, required=True)
    parser.add_argument('--scenario', default='', help='informational only (shown in logs)')
    args = parser.parse_args()
    socketio = importlib.import_module(args.impl.split('-')[0])
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
    # uvicorn writes a response's head and body apart (without it: a 40 ms delayed-ACK stall)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, args.port))
    sock.listen(1024)
    config = uvicorn.Config(build_app(socketio), lifespan='off', log_level='error', access_log=False,
                            ws_max_size=10_000_000, backlog=1024)
    print(json.dumps({'ready': True, 'port': args.port, 'impl': args.impl, 'serving': 'uvicorn',
                      'scenario': args.scenario, 'pid': os.getpid()}), flush=True)
    await uvicorn.Server(config).serve(sockets=[sock])


if __name__ == '__main__':
    asyncio.run(main())
