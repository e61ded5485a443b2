"""A greensio worker for the cluster tests and benchmark, driven by JSON commands on stdin.

    python cluster_worker.py --backend kombu|redis --url URL --channel NAME [--heartbeat SECONDS]

Prints ``PORT <n>`` and ``HOST <host id>``.  Each stdin line is a JSON object
``{"cmd": ..., ...}``; the answer is one ``RESULT <json>`` line (``ERROR <text>``
on an exception).  Commands: ``workers``; ``broadcast`` (emit with a callback
and a timeout; prints ``REQUEST <id>`` when sent, the result when the callback
ran); ``call``; ``fetch``; ``join``/``leave``/``disconnect`` (the selector
operations); ``server_call``; ``server_events`` (how many server-side events
this worker's handler saw).  Clients: a ``connect`` with ``auth={"user": ...}``
stores the user in the shared session; the ``join`` event enters a room.
End of input stops the worker.
"""

from gevent import monkey

monkey.patch_all()

import argparse
import json
import logging
import sys
import time

import gevent
from gevent.fileobject import FileObjectPosix

import greensio
from greensio.cluster import BroadcastTimeoutError


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('--backend', choices=['kombu', 'redis'], required=True)
    parser.add_argument('--url', required=True)
    parser.add_argument('--channel', required=True)
    parser.add_argument('--heartbeat', type=float, default=0.5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format='[worker %(process)d] %(name)s %(levelname)s %(message)s')
    if args.backend == 'kombu':
        manager = greensio.KombuManager(args.url, channel=args.channel)
    else:
        manager = greensio.RedisManager(args.url, channel=args.channel)
    manager.heartbeat_interval = args.heartbeat
    sio = greensio.Server(client_manager=manager, async_mode='gevent')
    sio.shared_session_keys = ('user',)
    server_events: list = []

    @sio.on('connect')
    def connect(sid, environ, auth):
        sio.save_session(sid, {'user': (auth or {}).get('user'), 'token': 'never shared'})
        sio.enter_room(sid, f'host-{manager.host_id}')

    @sio.on('join')
    def join(sid, room):
        sio.enter_room(sid, room)
        return 'joined'

    @sio.on_server('whoami')
    def whoami(data):
        server_events.append(data)
        return {'host': manager.host_id, 'data': data}

    app = greensio.WSGIApp(sio)
    server = greensio.make_server(app, '127.0.0.1', 0)
    server.start()
    print(f'PORT {server.server_port}', flush=True)
    print(f'HOST {manager.host_id}', flush=True)

    def result(value):
        print('RESULT ' + json.dumps(value), flush=True)

    def broadcast(cmd):
        started = time.monotonic()

        def done(answers, missing):
            result({'answers': answers, 'missing': missing, 'seconds': time.monotonic() - started})

        sio.emit(cmd['event'], cmd.get('data'), to=cmd.get('to'), skip_sid=cmd.get('skip'), callback=done,
                 timeout=cmd['timeout'])
        print(f'REQUEST {manager.host_id}.g{manager._requests}', flush=True)

    def call(cmd):
        started = time.monotonic()
        try:
            answers = sio.call(cmd['event'], cmd.get('data'), to=cmd['to'], timeout=cmd['timeout'])
            result({'answers': answers, 'missing': 0, 'seconds': time.monotonic() - started})
        except BroadcastTimeoutError as exc:
            result({'answers': exc.answers, 'missing': exc.missing, 'seconds': time.monotonic() - started})
        except greensio.exceptions.TimeoutError:  # one client, no answer
            result({'answers': None, 'missing': 1, 'seconds': time.monotonic() - started})

    def fetch(cmd):
        started = time.monotonic()
        found = sio.fetch_sockets(cmd.get('to'), skip=cmd.get('skip'), timeout=cmd.get('timeout', 5))
        if cmd.get('count_only'):
            result({'count': len(found), 'seconds': time.monotonic() - started})
            return
        sockets = [{'sid': s.sid, 'rooms': s.rooms, 'handshake': s.handshake, 'data': s.data} for s in found]
        result({'sockets': sockets, 'seconds': time.monotonic() - started})

    commands = {
        'workers': lambda cmd: result(manager.workers()),
        'broadcast': broadcast,
        'call': call,
        'fetch': fetch,
        'join': lambda cmd: result(sio.sockets_join(cmd['room'], to=cmd.get('to'), skip=cmd.get('skip'))),
        'leave': lambda cmd: result(sio.sockets_leave(cmd['room'], to=cmd.get('to'), skip=cmd.get('skip'))),
        'disconnect': lambda cmd: result(sio.disconnect_sockets(to=cmd.get('to'), skip=cmd.get('skip'),
                                                                close=cmd.get('close', False))),
        'server_call': lambda cmd: result(sio.server_side_call(cmd['event'], cmd.get('data'), timeout=cmd['timeout'])),
        'server_events': lambda cmd: result(server_events),
        'stats': lambda cmd: result(manager.stats),
    }

    serve_stdin(commands, sio, server)


def serve_stdin(commands, sio, server):
    """Run each stdin line's command on a greenlet of its own; at end of input stop the worker."""

    def run(cmd):
        try:
            commands[cmd['cmd']](cmd)
        except Exception as exc:  # noqa: BLE001 - reported to the test
            print(f'ERROR {type(exc).__name__}: {exc}', flush=True)

    stdin = FileObjectPosix(sys.stdin.fileno(), 'r')
    for line in stdin:
        if line.strip():
            gevent.spawn(run, json.loads(line))
    sio.shutdown()
    server.stop(timeout=1)


if __name__ == '__main__':
    main()
