"""``python -m examples.chat [--host H] [--port P]``: the chat demo on gevent."""

from gevent import monkey

# first thing: the message-queue managers need a patched process
monkey.patch_all()

import argparse

from .app import app, socketio


def main() -> None:
    parser = argparse.ArgumentParser(description='greensio chat demo')
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=5000, help='0 picks a free port')
    args = parser.parse_args()
    socketio.run(app, host=args.host, port=args.port)  # Ctrl-C stops it and returns


if __name__ == '__main__':
    main()
