"""A Socket.IO worker on a message queue, for the multi-process tests and the benchmark.

    python mq_server.py --backend kombu|redis|redis-streams --url URL --channel NAME [--impl greensio|socketio]

Serves on 127.0.0.1, port 0, and prints ``PORT <n>``, ``HOST <host id>``
and (kombu) ``QUEUE <name>``.  Commands on stdin, one per line: ``state``
(prints ``STATE <healthy|degraded>``), ``outbox`` (prints ``OUTBOX <messages
not yet confirmed by the broker>``); end of input stops the worker cleanly.
``--batch-size N``: greensio publishes up to N messages per broker message.
``--instrument``: the Admin UI's namespace, without authentication, with
stats every 0.2 s.  Handlers: ``join`` (enter a room), ``blast`` (emit a numbered stream of
broadcasts from this worker), ``relay_call`` (``call()`` a client that may
be on another worker and ack its answer).
"""

from gevent import monkey

monkey.patch_all()

import argparse
import logging
import sys
import time

import gevent
from gevent.fileobject import FileObjectPosix


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('--backend', choices=['kombu', 'redis', 'redis-streams'], required=True)
    parser.add_argument('--url', required=True)
    parser.add_argument('--channel', required=True)
    parser.add_argument('--impl', choices=['greensio', 'socketio'], default='greensio')
    parser.add_argument('--exchange-durable', choices=['default', 'yes', 'no'], default='default')
    parser.add_argument('--client-name', default=None, help='Redis CLIENT SETNAME of the connections')
    parser.add_argument('--instrument', action='store_true', help='serve the Admin UI namespace (greensio only)')
    parser.add_argument('--batch-size', type=int, default=None, help='messages per broker message (greensio only)')
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format=f'[{args.impl} %(process)d] %(name)s %(levelname)s %(message)s')

    if args.impl == 'greensio':
        import greensio as socketio
    else:
        import socketio

    options = {'batch_size': args.batch_size} if args.batch_size else {}
    if args.backend == 'kombu':
        if args.exchange_durable != 'default':
            options['exchange_options'] = {'durable': args.exchange_durable == 'yes'}
        manager = socketio.KombuManager(args.url, channel=args.channel, **options)
    else:
        if args.client_name:
            options['redis_options'] = {'client_name': args.client_name}
        if args.backend == 'redis-streams':
            options['streams'] = True  # greensio only: python-socketio cannot read a stream
        manager = socketio.RedisManager(args.url, channel=args.channel, **options)
    sio = socketio.Server(client_manager=manager, async_mode='gevent')
    if args.instrument:
        sio.instrument(auth=False, server_stats_interval=0.2)

    @sio.on('join')
    def join(sid, room):
        sio.enter_room(sid, room)
        return 'joined'

    @sio.on('blast')
    def blast(sid, spec):
        # a stream of broadcasts numbered from ``start`` (0), published by this
        # worker; ``stamp``: each also carries the emitting time (CLOCK_MONOTONIC,
        # which every process of the machine shares); ``interval``: seconds between them
        start, stamp, interval = spec.get('start', 0), spec.get('stamp'), spec.get('interval')
        for i in range(start, start + spec['count']):
            sio.emit(spec['event'], [i, time.monotonic()] if stamp else i, room=spec.get('room'))
            if interval:
                gevent.sleep(interval)
            elif i % 64 == 63:
                gevent.sleep(0)
        return spec['count']

    @sio.on('relay_call')
    def relay_call(sid, spec):
        return sio.call('question', spec['data'], to=spec['sid'], timeout=10)

    app = socketio.WSGIApp(sio)
    if args.impl == 'greensio':
        import greensio

        server = greensio.make_server(app, '127.0.0.1', 0)
    else:
        from gevent import pywsgi
        from geventwebsocket.handler import WebSocketHandler

        server = pywsgi.WSGIServer(('127.0.0.1', 0), app, handler_class=WebSocketHandler, log=None)
    server.start()
    print(f'PORT {server.server_port}', flush=True)
    print(f'HOST {manager.host_id}', flush=True)
    if args.impl == 'greensio' and args.backend == 'kombu':
        print(f'QUEUE {manager.queue_name}', flush=True)

    stdin = FileObjectPosix(sys.stdin.fileno(), 'r')
    for line in stdin:
        if line.strip() == 'state':
            print(f'STATE {getattr(manager, "state", "unknown")}', flush=True)
        elif line.strip() == 'outbox':
            print(f'OUTBOX {getattr(manager, "outbox_length", 0)}', flush=True)
    sio.shutdown()  # greensio's also flushes the outbox and deletes this worker's queue
    server.stop(timeout=1)


if __name__ == '__main__':
    main()
