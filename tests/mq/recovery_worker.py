"""A greensio worker with connection state recovery, for the cross-worker recovery tests.

    python recovery_worker.py --backend kombu|redis|redis-streams --url URL --channel NAME [--heartbeat S] [--window S]

Prints ``PORT <n>`` and ``HOST <host id>``.  Each stdin line is a JSON
command; the answer is one ``RESULT <json>`` line (``ERROR <text>`` on an
exception): ``emit`` (``event``, ``data``, ``to``, ``skip``), ``workers``,
``rounds`` (``count`` rounds of ``<prefix>_room``/``<prefix>_direct`` to room
``room`` and sid ``sid``, ``interval`` seconds apart).  Client events:
``join`` enters a room and keeps its name in the session; ``whoami`` answers
``[session room, sorted rooms]``; ``taint`` puts a value JSON cannot carry in
the session.  End of input stops the worker.
"""

from gevent import monkey

monkey.patch_all()

import argparse
import json
import logging
import sys

import gevent
from cluster_worker import serve_stdin

import greensio


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('--backend', choices=['kombu', 'redis', 'redis-streams'], required=True)
    parser.add_argument('--url', required=True)
    parser.add_argument('--channel', required=True)
    parser.add_argument('--heartbeat', type=float, default=2.0)
    parser.add_argument('--window', type=float, default=30.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format='[worker %(process)d] %(name)s %(levelname)s %(message)s')
    logging.getLogger('greensio.pubsub').setLevel(logging.WARNING)
    if args.backend == 'kombu':
        manager = greensio.KombuManager(args.url, channel=args.channel)
    else:
        manager = greensio.RedisManager(args.url, channel=args.channel, streams=args.backend == 'redis-streams')
    manager.heartbeat_interval = args.heartbeat
    sio = greensio.Server(client_manager=manager, async_mode='gevent', logger=True,
                          connection_state_recovery={'max_disconnection_duration': args.window})

    @sio.on('join')
    def join(sid, room):
        sio.enter_room(sid, room)
        with sio.session(sid) as session:
            session['room'] = room
        return 'joined'

    @sio.on('whoami')
    def whoami(sid):
        return sio.get_session(sid).get('room'), sorted(sio.rooms(sid))

    @sio.on('taint')
    def taint(sid):
        with sio.session(sid) as session:
            session['lock'] = object()
        return 'tainted'

    app = greensio.WSGIApp(sio)
    server = greensio.make_server(app, '127.0.0.1', 0)
    server.start()
    print(f'PORT {server.server_port}', flush=True)
    print(f'HOST {manager.host_id}', flush=True)

    def result(value):
        print('RESULT ' + json.dumps(value), flush=True)

    def rounds(cmd):
        prefix, sid = cmd['prefix'], cmd['sid']
        for i in range(cmd['start'], cmd['start'] + cmd['count']):
            sio.emit(f'{prefix}_room', i, to='room')
            sio.emit(f'{prefix}_direct', i, to=sid)
            sio.emit(f'{prefix}_elsewhere', i, to='other room')
            gevent.sleep(cmd.get('interval', 0))
        result(cmd['count'])

    commands = {
        'emit': lambda cmd: result(sio.emit(cmd['event'], cmd.get('data'), to=cmd.get('to'),
                                            skip_sid=cmd.get('skip'))),
        'workers': lambda cmd: result(manager.workers()),
        'rounds': rounds,
    }

    serve_stdin(commands, sio, server)


if __name__ == '__main__':
    main()
