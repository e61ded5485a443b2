"""``python -m greensio``: reach Socket.IO clients from a shell script or a cron job.

Integration ring.  This process needs no server and serves no clients; it
talks to the servers through the message queue they share.

    python -m greensio emit EVENT DATA [--to ROOM] [--namespace NS] [options]
    python -m greensio call EVENT DATA --to SID [--namespace NS] [options]
    python -m greensio sockets [--to ROOM] [--namespace NS] [--json] [options]
    python -m greensio rooms [--namespace NS] [--json] [options]
    python -m greensio workers [--json] [options]

    options: [--message-queue URL] [--channel NAME] [--streams] [--timeout SECONDS]

``emit`` publishes with a write-only manager, as an application's own
write-only manager would.  The other commands need the workers' answers:
their manager listens on the channel as a client of the cluster, never as a
worker (no worker waits for it), asks the workers to announce themselves,
then sends its request (``call()`` to a sid, ``fetch_sockets``) and
gathers the answers.

Exit status: 0 on success; 1 if the broker could not be reached (or did not
confirm) within ``--timeout``; 2 for bad input (usage, JSON); 3 when the
workers did not answer in time (no client answered the call, a worker
missing from a listing, no worker on the channel).  Each error is one line
on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
import urllib.parse
from typing import Any, NoReturn

#: Exit status on success (``emit``: once the broker confirmed the message).
EXIT_OK = 0
#: Exit status when the broker could not be reached or did not confirm in time.
EXIT_UNREACHABLE = 1
#: Exit status for bad input: arguments, DATA that is not JSON (argparse's own).
EXIT_USAGE = 2
#: Exit status when answers did not come in time: no client answered a call,
#: a worker did not answer a listing, or no worker is on the channel.
EXIT_NO_ANSWER = 3

#: How long, by default, a command waits for the broker and the answers before giving up.
DEFAULT_TIMEOUT = 10.0
#: Longest wait for the first worker to announce itself.  Workers answer this
#: process's hello at once; one that does not (an older greensio) still sends
#: a heartbeat every 2 s by default.
DISCOVERY_TIMEOUT = 3.0
#: Once a worker announced itself, the others are taken to be known when none
#: more did for this long (they all answer the same hello, within milliseconds).
DISCOVERY_QUIET = 0.3

#: Where the message queue URL comes from when ``--message-queue`` is not given.
URL_VARIABLE = 'GREENSIO_MESSAGE_QUEUE'

_PROG = 'python -m greensio'


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (scripts grep and log them)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f'{_PROG}: error: {message}\n')


def _parser() -> _Parser:
    parser = _Parser(prog=_PROG, description='Reach Socket.IO clients through the servers\' message queue.')
    commands = parser.add_subparsers(dest='command', required=True, parser_class=_Parser)

    def command(name: str, help: str, data: bool = False, to: str | None = None, listing: bool = False) -> Any:
        sub = commands.add_parser(name, help=help)
        if data:
            sub.add_argument('event', metavar='EVENT', help='the event name')
            sub.add_argument('data', metavar='DATA',
                             help='the event\'s one argument, as JSON (e.g. \'{"n": 1}\', \'"text"\', \'null\')')
        if to is not None:
            sub.add_argument('--to', metavar=to.split(':')[0], required=name == 'call', help=to.split(':', 1)[1] + " (a sid may start with '-': write --to=SID)")
        if name != 'workers':
            sub.add_argument('--namespace', metavar='NS', default='/', help='the namespace (default: /)')
        if listing:
            sub.add_argument('--json', action='store_true', help='print JSON instead of lines of text')
        sub.add_argument('--message-queue', metavar='URL', default=os.environ.get(URL_VARIABLE),
                         help=f'amqp://... (RabbitMQ) or redis://... (default: ${URL_VARIABLE})')
        sub.add_argument('--channel', metavar='NAME', default='socketio',
                         help='the channel the servers use (default: socketio; Flask-SocketIO apps: flask-socketio)')
        sub.add_argument('--streams', action='store_true',
                         help='Redis: the servers use a stream (RedisManager(..., streams=True)), not pub/sub')
        sub.add_argument('--timeout', metavar='SECONDS', type=float, default=DEFAULT_TIMEOUT,
                         help=f'seconds to wait for the broker and the answers (default: {DEFAULT_TIMEOUT:g})')
        sub.set_defaults(run=globals()[name])

    command('emit', 'emit an event to every client, or to a room or one sid', data=True,
            to="ROOM:a room or a client's sid (default: every client)")
    command('call', "emit an event to one client and print its answer as JSON", data=True,
            to="SID:the client's sid (a room: the list of its clients' answers)")
    command('sockets', 'list the clients of every worker', to='ROOM:only the clients in this room (or this sid)',
            listing=True)
    command('rooms', 'list the rooms of every worker with their number of clients', listing=True)
    command('workers', 'list the ids of the live workers', listing=True)
    return parser


def _redacted(url: str) -> str:
    """The URL without its password, for error messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = f'{parts.username or ""}:***@{parts.hostname or ""}' + (f':{parts.port}' if parts.port else '')
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _is_redis(url: str) -> bool:
    return url.startswith(('redis://', 'rediss://', 'unix://'))


def _manager(args: argparse.Namespace, write_only: bool = True) -> Any:
    """A manager without a server: Redis for ``redis://``, ``rediss://`` and ``unix://``, kombu otherwise."""
    import greensio

    url = args.message_queue
    name = 'RedisManager' if _is_redis(url) else 'KombuManager'
    options = {'streams': True} if args.streams else {}
    try:
        manager_class = getattr(greensio, name)
        manager = manager_class(url, channel=args.channel, write_only=write_only, **options)
    except (ImportError, AttributeError) as exc:
        extra = 'redis' if name == 'RedisManager' else 'kombu'
        raise SystemExit(f"{_PROG}: error: {_redacted(url)} needs the '{extra}' extra: "
                         f"pip install 'greensio[{extra}]' ({exc})") from None
    manager.idle_tick = min(manager.idle_tick, 0.1)  # its listener notices close() that soon: a prompt exit
    return manager


def _fail(message: str, status: int) -> int:
    print(f'{_PROG}: error: {message}', file=sys.stderr)
    return status


def _check(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments argparse let through, or None."""
    if not args.message_queue:
        return f'no message queue: give --message-queue URL or set ${URL_VARIABLE}'
    if not getattr(args, 'namespace', '/').startswith('/'):
        return f'a namespace starts with "/", not {args.namespace!r}'
    if args.timeout <= 0:
        return '--timeout must be positive'
    if args.streams and not _is_redis(args.message_queue):
        return '--streams is for Redis URLs (redis://, rediss://, unix://)'
    return None


def _quiet() -> None:
    # the managers log outages and retries for long-running servers; here one
    # line says what happened
    logging.getLogger('socketio').setLevel(logging.CRITICAL + 1)
    logging.getLogger('greensio').setLevel(logging.CRITICAL + 1)


def emit(args: argparse.Namespace, data: Any) -> int:
    manager = _manager(args)
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
        return _fail(f'the message queue at {_redacted(args.message_queue)} could not be reached '
                     f'({reason}); nothing was sent', EXIT_UNREACHABLE)
    return EXIT_OK


# -- the commands that gather answers --------------------------------------------------------

class _Cluster:
    """A manager listening on the channel as a client of the workers, until ``deadline``."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.deadline = time.monotonic() + args.timeout
        self.manager = _manager(args, write_only=False)

    def remaining(self) -> float:
        return max(self.deadline - time.monotonic(), 0.001)

    def connect(self) -> str | None:
        """Listen and learn the live workers; an error message, or None."""
        try:
            listening = self.manager._listen_as_client(self.args.timeout)
        except Exception as exc:  # noqa: BLE001 - whatever the broker client raised: one line
            listening, detail = False, f'{type(exc).__name__}: {exc}'
        else:
            detail = f'not subscribed within {self.args.timeout:g} s'
        if not listening:
            return f'the message queue at {_redacted(self.args.message_queue)} could not be reached ({detail})'
        return None

    def workers(self) -> list[str]:
        """The workers that announced themselves (see ``DISCOVERY_TIMEOUT`` and ``DISCOVERY_QUIET``)."""
        first = min(self.deadline, time.monotonic() + DISCOVERY_TIMEOUT)
        known: list[str] = []
        quiet_until = first
        while time.monotonic() < (quiet_until if known else first):
            live = self.manager.workers()[1:]
            if len(live) > len(known):
                known = live
                quiet_until = min(self.deadline, time.monotonic() + DISCOVERY_QUIET)
            time.sleep(0.02)
        return self.manager.workers()[1:]

    def wait(self, gathering: Any) -> None:
        """Block until every answer came or the gathering's deadline passed."""
        wake = threading.Event()
        gathering.on_change = wake.set
        for wait in self.manager._waits(gathering):
            wake.clear()
            wake.wait(wait)

    def no_workers(self) -> int:
        return _fail(f'no greensio worker announced itself on channel {self.args.channel!r} '
                     f'within {min(self.args.timeout, DISCOVERY_TIMEOUT):g} s', EXIT_NO_ANSWER)

    def close(self) -> None:
        self.manager.close(timeout=0.1)


def call(cluster: _Cluster, data: Any) -> int:
    from ._core.cluster import UNKNOWN

    args = cluster.args
    gathering = cluster.manager._emit_gathering(args.event, data, args.namespace, args.to, None, cluster.remaining())
    gathering.want_one = True  # a sid of a worker that counts nothing (python-socketio) answers all the same
    cluster.wait(gathering)
    counted = sum(gathering.counts.values())
    if gathering.client or (counted == 0 and UNKNOWN in gathering.answered):  # one client: its answer
        if gathering.answers:
            print(_dumps(gathering.answers[0]))
            return EXIT_OK
        return _fail(f'no answer from {args.to} within {args.timeout:g} s', EXIT_NO_ANSWER)
    if counted == 0:
        return _fail(f'no answer within {args.timeout:g} s: no client {args.to} in namespace {args.namespace} '
                     f'on the {len(gathering.expected)} worker(s) that answered', EXIT_NO_ANSWER)
    print(_dumps(gathering.answers))  # a room: every answer that came
    if gathering.missing:
        return _fail(f'{gathering.missing} of the clients in {args.to} did not answer within {args.timeout:g} s',
                     EXIT_NO_ANSWER)
    return EXIT_OK


def _fetch(cluster: _Cluster, to: Any) -> tuple[list[dict[str, Any]], int]:
    from ._core.pubsub import FETCH_SOCKETS

    args = cluster.args
    gathering = cluster.manager._start_request(FETCH_SOCKETS, args.namespace, cluster.remaining(), to=to, skip=None)
    cluster.wait(gathering)
    return list(gathering.answers), gathering.missing


def _incomplete(missing: int, args: argparse.Namespace) -> int:
    if not missing:
        return EXIT_OK
    return _fail(f'{missing} worker(s) did not answer within {args.timeout:g} s: the list is incomplete',
                 EXIT_NO_ANSWER)


def sockets(cluster: _Cluster, _data: Any) -> int:
    found, missing = _fetch(cluster, cluster.args.to)
    found.sort(key=lambda s: s['sid'])
    if cluster.args.json:
        print(_dumps(found))
    for socket in [] if cluster.args.json else found:
        rooms = ','.join(str(room) for room in socket['rooms'] if room != socket['sid'])
        print(f'{socket["sid"]}\t{socket["handshake"].get("address", "")}\t{rooms}')
    return _incomplete(missing, cluster.args)


def rooms(cluster: _Cluster, _data: Any) -> int:
    found, missing = _fetch(cluster, None)
    counts: dict[Any, int] = {}
    for socket in found:
        for room in socket['rooms']:
            if room != socket['sid']:  # every client's own room is not listed
                counts[room] = counts.get(room, 0) + 1
    ordered = sorted(counts.items(), key=lambda item: str(item[0]))
    if cluster.args.json:
        print(_dumps({str(room): count for room, count in ordered}))
    for room, count in [] if cluster.args.json else ordered:
        print(f'{room}\t{count}')
    return _incomplete(missing, cluster.args)


def workers(cluster: _Cluster, _data: Any) -> int:
    live = cluster.manager.workers()[1:]
    print(_dumps(live) if cluster.args.json else '\n'.join(live))
    return EXIT_OK


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=repr)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    data = None
    if hasattr(args, 'data'):
        try:
            data = json.loads(args.data)
        except ValueError as exc:
            return _fail(f'DATA is not valid JSON ({exc})', EXIT_USAGE)
    problem = _check(args)
    if problem is not None:
        return _fail(problem, EXIT_USAGE)
    _quiet()
    if args.run is emit:
        return emit(args, data)
    cluster = _Cluster(args)
    try:
        problem = cluster.connect()
        if problem is not None:
            return _fail(problem, EXIT_UNREACHABLE)
        if not cluster.workers():
            return cluster.no_workers()
        return args.run(cluster, data)
    finally:
        cluster.close()


if __name__ == '__main__':
    sys.exit(main())
