"""Shared pieces of the cross-worker tests: brokers, workers, recording clients.

Every wait is bounded and polls a condition; nothing sleeps to "let things
settle".  Channels are unique per test and cleaned up after it.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import socketio as pysocketio
from e2e_helpers import wait_until  # the one polling wait of every suite

AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672//'
REDIS_URL = 'redis://127.0.0.1:6379/0'
HERE = __file__.rsplit('/', 1)[0]


def unique_channel() -> str:
    return f'greensio-test-{uuid.uuid4().hex[:10]}'


def rabbitmq_up() -> bool:
    try:
        import kombu

        with kombu.Connection(AMQP_URL, connect_timeout=2) as conn:
            conn.connect()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not available"
        return False


def redis_up() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except Exception:  # noqa: BLE001 - any failure means "not available"
        return False


def delete_exchange(channel: str) -> None:
    """Remove a test channel's exchanges: the channel's own and greensio's durable one."""
    import kombu

    from greensio.managers.amqp import workers_exchange

    with kombu.Connection(AMQP_URL, connect_timeout=3) as conn:
        conn.connect()
        for name in (channel, workers_exchange(channel)):
            kombu.Exchange(name)(conn.channel()).delete()  # RabbitMQ: deleting a missing exchange is fine


def delete_stream(channel: str, url: str = REDIS_URL) -> None:
    """Remove a test channel's Redis stream (``streams=True``)."""
    import redis

    from greensio.managers.redis_streams import stream_key

    client = redis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        client.delete(stream_key(channel))
    finally:
        client.close()


def declare_python_socketio_exchange(channel: str) -> None:
    """What an existing python-socketio fleet has on the broker: a non-durable fanout exchange."""
    import kombu

    with kombu.Connection(AMQP_URL, connect_timeout=3) as conn:
        conn.connect()
        kombu.Exchange(channel, type='fanout', durable=False)(conn.channel()).declare()


def delete_queues(names: list[str]) -> None:
    import kombu

    with kombu.Connection(AMQP_URL, connect_timeout=3) as conn:
        conn.connect()
        for name in names:
            kombu.Queue(name)(conn.channel()).delete()


class RedisServer:
    """A private redis-server on a free port: stopped and started again by a test
    without disturbing anyone else's Redis."""

    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(('127.0.0.1', 0))
            self.port = sock.getsockname()[1]
        self.url = f'redis://127.0.0.1:{self.port}/0'
        self.proc: subprocess.Popen | None = None
        self.start()

    @staticmethod
    def available() -> bool:
        return shutil.which('redis-server') is not None

    def start(self) -> None:
        import redis

        self.proc = subprocess.Popen(['redis-server', '--port', str(self.port), '--bind', '127.0.0.1', '--save', '',
                                      '--appendonly', 'no'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False
        try:
            wait_until(answers, 20, f'redis-server on port {self.port}')
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # redis-server closes every client connection and exits
            self.proc.wait(20)
        self.proc = None

    @contextlib.contextmanager
    def stopped(self) -> Iterator[None]:
        self.stop()
        try:
            yield
        finally:
            self.start()


class Recorder:
    """A python-socketio client that records every event it receives, in order.

    ``answer(event, args)`` (optional) gives the ack value for events that
    ask for one.
    """

    def __init__(self, url: str, name: str = '', answer: Callable[[str, tuple], Any] | None = None,
                 namespace: str = '/') -> None:
        self.name = name
        self.url = url
        self.namespace = namespace
        self.events: list[tuple[str, tuple]] = []
        self._answer = answer
        self.client = pysocketio.Client(reconnection=False)
        self.client.on('*', self._on_any, namespace=namespace)
        self.client.connect(url, transports=['websocket'], namespaces=[namespace], wait_timeout=10)
        self.sid = self.client.get_sid(namespace)

    def _on_any(self, event: str, *args: Any) -> Any:
        self.events.append((event, args))
        if self._answer is not None:
            return self._answer(event, args)
        return None

    def of(self, event: str) -> list[tuple]:
        return [args for name, args in self.events if name == event]

    def wait_for(self, event: str, count: int = 1, timeout: float = 10.0) -> list[tuple]:
        wait_until(lambda: len(self.of(event)) >= count, timeout, f'{count} "{event}" on {self.name or self.sid}')
        return self.of(event)

    def fence(self, emit: Callable[..., Any], timeout: float = 10.0) -> None:
        """Emit a unique ``fence`` event to this client through ``emit`` and wait for it.

        Events from one sender to one client arrive in order, so once the
        fence is here, anything sent before it has arrived too.
        """
        token = uuid.uuid4().hex
        emit('fence', token, to=self.sid, namespace=self.namespace)
        wait_until(lambda: (token,) in self.of('fence'), timeout, f'fence on {self.name or self.sid}')

    def disconnect(self) -> None:
        with contextlib.suppress(Exception):  # already disconnected by the test
            self.client.disconnect()


def check_sequence(received: list[int], expected: int) -> dict[str, int]:
    """Lost, duplicated and out-of-order counts of a stream numbered 0..expected-1."""
    seen: set[int] = set()
    dup = out_of_order = 0
    last = -1
    for i in received:
        if i in seen:
            dup += 1
            continue
        seen.add(i)
        if i < last:
            out_of_order += 1
        last = max(last, i)
    return {'lost': len(set(range(expected)) - seen), 'duplicated': dup, 'out_of_order': out_of_order}


class Process:
    """A helper script in a subprocess that prints ``KEY value`` lines we can wait for."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1, cwd=HERE)
        self.lines: list[str] = []
        self.stderr: list[str] = []
        self._readers = [gevent.spawn(self._read, self.proc.stdout, self.lines),
                         gevent.spawn(self._read, self.proc.stderr, self.stderr)]

    @staticmethod
    def _read(stream: Any, into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip('\n'))

    def value(self, key: str, timeout: float = 20.0, nth: int = 0) -> str:
        """The value of the ``nth`` (from 0) ``KEY value`` line printed."""
        def find() -> str | None:
            found = [line[len(key) + 1:] for line in self.lines if line.startswith(key + ' ')]
            if len(found) > nth:
                return found[nth]
            if self.proc.poll() is not None:
                raise AssertionError(f'process exited ({self.proc.returncode}) before printing {key}:\n'
                                     + '\n'.join(self.stderr[-30:]))
            return None
        return wait_until(find, timeout, f'{key} from {self.proc.args[1]}')

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + '\n')
        self.proc.stdin.flush()

    def ask(self, command: str, key: str, timeout: float = 20.0) -> str:
        """Send ``command`` and return the value of the ``KEY value`` line it answers with."""
        nth = sum(line.startswith(key + ' ') for line in self.lines)
        self.send(command)
        return self.value(key, timeout, nth=nth)

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(Exception):
                self.proc.stdin.close()  # the scripts exit cleanly on EOF
            deadline = time.monotonic() + timeout
            while self.proc.poll() is None and time.monotonic() < deadline:
                gevent.sleep(0.02)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
        gevent.joinall(self._readers, timeout=2)


class Fleet:
    """Worker processes and an external emitter on one channel, started in parallel."""

    def __init__(self, backend: str, url: str, channel: str, servers: int = 2, impl: str = 'greensio',
                 emitter: bool = True, server_args: tuple[str, ...] = (), emitter_args: tuple[str, ...] = (),
                 own_args: list[tuple[str, ...]] | None = None) -> None:
        """``own_args``: more arguments for each server, in order (``server_args`` go to all)."""
        self.channel = channel
        common = ('--backend', backend, '--url', url, '--channel', channel, '--impl', impl)
        own = own_args or [()] * servers
        self.servers = [Process('mq_server.py', *common, *server_args, *own[i]) for i in range(servers)]
        self.emitter = Process('mq_emitter.py', *common, *emitter_args) if emitter else None
        self.urls = [f'http://127.0.0.1:{p.value("PORT", 30)}' for p in self.servers]
        self.host_ids = [p.value('HOST') for p in self.servers]
        self.queues = [p.value('QUEUE') for p in self.servers] if backend == 'kombu' and impl == 'greensio' else []
        if self.emitter is not None:
            self.emitter.value('HOST', 30)

    def emit(self, event: str, count: int, interval_ms: float = 0) -> None:
        assert self.emitter is not None
        self.emitter.send(f'emit {event} {count} {interval_ms}')

    def stop(self) -> None:
        for proc in [*self.servers, *([self.emitter] if self.emitter else [])]:
            proc.stop()

    def stderr(self) -> str:
        return '\n'.join(line for p in [*self.servers, *([self.emitter] if self.emitter else [])] for line in p.stderr)
