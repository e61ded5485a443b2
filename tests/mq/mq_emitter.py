"""An external write-only emitter process (plain threads, no gevent), as a cron job would be.

    python mq_emitter.py --backend kombu|redis|redis-streams --url URL --channel NAME [--impl greensio|socketio]

Commands on stdin, one per line:

- ``emit <event> <count> <interval ms>``: emits ``count`` events numbered
  from 0, then prints ``EMITTED <count> <while degraded>``;
- ``flush``: prints ``FLUSHED True|False``;
- ``state``: prints ``STATE <healthy|degraded>``.

End of input flushes and exits.
"""

import argparse
import logging
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('--backend', choices=['kombu', 'redis', 'redis-streams'], required=True)
    parser.add_argument('--url', required=True)
    parser.add_argument('--channel', required=True)
    parser.add_argument('--impl', choices=['greensio', 'socketio'], default='greensio')
    parser.add_argument('--client-name', default=None, help='Redis CLIENT SETNAME of the publisher')
    parser.add_argument('--batch-size', type=int, default=None, help='messages per broker message (greensio only)')
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format='[emitter %(process)d] %(name)s %(levelname)s %(message)s')
    if args.impl == 'greensio':
        import greensio as socketio
    else:
        import socketio
    batching = {'batch_size': args.batch_size} if args.batch_size else {}
    if args.backend == 'kombu':
        manager = socketio.KombuManager(args.url, channel=args.channel, write_only=True, **batching)
    else:
        options = {'client_name': args.client_name} if args.client_name else None
        streams = {'streams': True} if args.backend == 'redis-streams' else {}
        manager = socketio.RedisManager(args.url, channel=args.channel, write_only=True, redis_options=options, **batching,
                                        **streams)
    print(f'HOST {manager.host_id}', flush=True)

    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == 'emit':
            event, count, interval = words[1], int(words[2]), float(words[3]) / 1000
            degraded = 0
            for i in range(count):
                manager.emit(event, i)
                if getattr(manager, 'state', 'healthy') != 'healthy':
                    degraded += 1
                if interval:
                    time.sleep(interval)
            print(f'EMITTED {count} {degraded}', flush=True)
        elif words[0] == 'flush':
            print(f'FLUSHED {manager.flush(30) if hasattr(manager, "flush") else True}', flush=True)
        elif words[0] == 'state':
            print(f'STATE {getattr(manager, "state", "unknown")}', flush=True)
    if hasattr(manager, 'close'):
        manager.close(timeout=10)


if __name__ == '__main__':
    main()
