"""Broadcast to the chat from outside the web server, through RabbitMQ.

An external process (a cron job, a Celery task) has no clients of its own: a
write-only ``KombuManager`` publishes on the channel the web workers listen
on, and every worker delivers to its own clients.  Run the chat with the
same queue::

    GREENSIO_MESSAGE_QUEUE=amqp://guest:guest@127.0.0.1:5672// python -m examples.chat
    python -m examples.chat.broadcaster --count 3 --message 'tea is ready'
"""

from gevent import monkey

monkey.patch_all()  # the message-queue managers need a patched process

import argparse
import time

import greensio

from .config import CHANNEL, MESSAGE_QUEUE

DEFAULT_URL = 'amqp://guest:guest@127.0.0.1:5672//'


def main() -> None:
    parser = argparse.ArgumentParser(description='broadcast chat messages through the message queue')
    parser.add_argument('--url', default=MESSAGE_QUEUE or DEFAULT_URL)
    parser.add_argument('--room', default='lobby')
    parser.add_argument('--message', default='hello from the broadcaster')
    parser.add_argument('--count', type=int, default=1, help='how many messages (default 1)')
    parser.add_argument('--interval', type=float, default=1.0, help='seconds between messages')
    args = parser.parse_args()
    manager_class = getattr(greensio, 'KombuManager', None)
    if manager_class is None:
        raise SystemExit('this greensio has no KombuManager yet')
    manager = manager_class(args.url, channel=CHANNEL, write_only=True)
    for i in range(args.count):
        text = args.message if args.count == 1 else f'{args.message} ({i + 1}/{args.count})'
        manager.emit('message', {'username': 'broadcaster', 'message': text, 'room': args.room,
                                 'timestamp': time.time()}, namespace='/chat', room=args.room)
        print(f'sent to #{args.room}: {text}', flush=True)
        if i + 1 < args.count:
            time.sleep(args.interval)
    # emits go through an outbox: wait until the broker has confirmed them all
    if not manager.close():
        raise SystemExit('the broker did not confirm every message')


if __name__ == '__main__':
    main()
