"""``python -m greensio``: emit to Socket.IO clients from a shell script or a cron job.

Integration ring.  A write-only manager publishes on the message queue the
servers listen to, as an application's own write-only manager would; this
process needs no server and serves no clients.

    python -m greensio emit EVENT DATA [--to ROOM] [--namespace NS]
                       [--message-queue URL] [--channel NAME] [--timeout SECONDS]

Exit status: 0 once the broker confirmed the message; 1 if it could not be
reached (or did not confirm) within ``--timeout``; 2 for bad input (usage,
JSON).  Each error is one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import urllib.parse
from typing import Any, NoReturn

#: Exit status once the broker confirmed every message.
EXIT_OK = 0
#: Exit status when the broker could not be reached or did not confirm in time.
EXIT_UNREACHABLE = 1
#: Exit status for bad input: arguments, DATA that is not JSON (argparse's own).
EXIT_USAGE = 2

#: How long, by default, the command waits for the broker before giving up.
DEFAULT_TIMEOUT = 10.0

#: Where the message queue URL comes from when ``--message-queue`` is not given.
URL_VARIABLE = 'GREENSIO_MESSAGE_QUEUE'

_PROG = 'python -m greensio'


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (scripts grep and log them)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f'{_PROG}: error: {message}\n')


def _parser() -> _Parser:
    parser = _Parser(prog=_PROG, description='Emit to Socket.IO clients through the servers\' message queue.')
    commands = parser.add_subparsers(dest='command', required=True, parser_class=_Parser)
    emit = commands.add_parser('emit', help='emit an event to every client, or to a room or one sid')
    emit.add_argument('event', metavar='EVENT', help='the event name')
    emit.add_argument('data', metavar='DATA', help='the event\'s one argument, as JSON (e.g. \'{"n": 1}\', \'"text"\', \'null\')')
    emit.add_argument('--to', metavar='ROOM', help='a room or a client\'s sid (default: every client)')
    emit.add_argument('--namespace', metavar='NS', default='/', help='the namespace (default: /)')
    emit.add_argument('--message-queue', metavar='URL', default=os.environ.get(URL_VARIABLE),
                      help=f'amqp://... (RabbitMQ) or redis://... (default: ${URL_VARIABLE})')
    emit.add_argument('--channel', metavar='NAME', default='socketio',
                      help='the channel the servers use (default: socketio; Flask-SocketIO apps: flask-socketio)')
    emit.add_argument('--timeout', metavar='SECONDS', type=float, default=DEFAULT_TIMEOUT,
                      help=f'seconds to wait for the broker (default: {DEFAULT_TIMEOUT:g})')
    return parser


def _redacted(url: str) -> str:
    """The URL without its password, for error messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = f'{parts.username or ""}:***@{parts.hostname or ""}' + (f':{parts.port}' if parts.port else '')
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _manager(url: str, channel: str) -> Any:
    """A write-only manager: Redis for ``redis://``, ``rediss://`` and ``unix://``, kombu otherwise."""
    import greensio

    name = 'RedisManager' if url.startswith(('redis://', 'rediss://', 'unix://')) else 'KombuManager'
    try:
        manager_class = getattr(greensio, name)
        return manager_class(url, channel=channel, write_only=True)
    except (ImportError, AttributeError) as exc:
        extra = 'redis' if name == 'RedisManager' else 'kombu'
        raise SystemExit(f"{_PROG}: error: {_redacted(url)} needs the '{extra}' extra: "
                         f"pip install 'greensio[{extra}]' ({exc})") from None


def emit(args: argparse.Namespace) -> int:
    try:
        data = json.loads(args.data)
    except ValueError as exc:
        print(f'{_PROG}: error: DATA is not valid JSON ({exc})', file=sys.stderr)
        return EXIT_USAGE
    if not args.message_queue:
        print(f'{_PROG}: error: no message queue: give --message-queue URL or set ${URL_VARIABLE}', file=sys.stderr)
        return EXIT_USAGE
    if not args.namespace.startswith('/'):
        print(f'{_PROG}: error: a namespace starts with "/", not {args.namespace!r}', file=sys.stderr)
        return EXIT_USAGE
    if args.timeout <= 0:
        print(f'{_PROG}: error: --timeout must be positive', file=sys.stderr)
        return EXIT_USAGE
    # the manager logs outages and retries for long-running servers; here the
    # one line below says what happened
    logging.getLogger('socketio').setLevel(logging.CRITICAL + 1)
    logging.getLogger('greensio').setLevel(logging.CRITICAL + 1)
    manager = _manager(args.message_queue, args.channel)
    try:
        manager.emit(args.event, data, namespace=args.namespace, room=args.to)
        confirmed = manager.flush(args.timeout)
    except Exception as exc:  # noqa: BLE001 - whatever the broker client raised: one line, not a traceback
        confirmed, reason = False, f'{type(exc).__name__}: {exc}'
    else:
        reason = f'no confirmation within {args.timeout:g} s'
    finally:
        manager.close(timeout=0.1)
    if not confirmed:
        print(f'{_PROG}: error: the message queue at {_redacted(args.message_queue)} could not be reached '
              f'({reason}); nothing was sent', file=sys.stderr)
        return EXIT_UNREACHABLE
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return emit(args)


if __name__ == '__main__':
    sys.exit(main())
