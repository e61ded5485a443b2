"""Cross-worker broadcasts: greensio vs python-socketio on RabbitMQ or Redis, same run.

    . .venv/bin/activate
    python tests/performance/bench_mq.py                 # RabbitMQ, 3 runs, ~1 min
    python tests/performance/bench_mq.py --runs 5 --count 20000 --clients 50
    python tests/performance/bench_mq.py --backend redis,redis-streams

Each run, for each backend and implementation (the order alternates): two
worker processes (``tests/mq/mq_server.py``, gevent, ``KombuManager`` or
``RedisManager`` on a fresh channel) and ``--clients`` websocket clients on
each.  One client asks worker A to emit ``--count`` numbered broadcasts to
everyone; the clock stops when every client on both workers has counted all
of them.  Printed per implementation (medians over runs, with the range):
broadcasts published per second, messages delivered to clients per second,
the CPU time of each worker per delivered message (A publishes and delivers
to its own clients, B receives through the broker and delivers), and the
latency from ``emit()`` on A to a client of B (p50, p99), measured apart on
``--latency-count`` broadcasts emitted ``--latency-interval`` seconds apart,
each stamped with the emitting time.

Implementations: ``greensio`` (every message its own broker message, which
python-socketio workers on the same channel understand), ``greensio-batch``
(``batch_size=--batch-size``: greensio-only channels) and ``socketio``.
python-socketio cannot read a Redis stream: it is skipped on ``redis-streams``.

The clients are raw websocket connections that count ``42["seq",`` in the
byte stream, so the load generator stays cheap next to the servers.
greensio publishes persistent, confirmed messages on a durable topology;
python-socketio publishes transient ones without confirms.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse
import base64
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import uuid

import gevent
import gevent.event

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, '..', 'mq', 'mq_server.py')
URLS = {'kombu': 'amqp://guest:guest@127.0.0.1:5672//', 'redis': 'redis://127.0.0.1:6379/0',
        'redis-streams': 'redis://127.0.0.1:6379/0'}
#: A stamped broadcast as it reaches a client: ``42["lat",[<i>,<monotonic time of the emit>]]``.
STAMPED = re.compile(rb'42\["lat",\[\d+,([0-9.]+)\]\]')
CLK_TCK = os.sysconf('SC_CLK_TCK')


def masked_text_frame(text: str) -> bytes:
    """A client-to-server websocket text frame (clients must mask)."""
    payload = text.encode()
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    n = len(payload)
    if n < 126:
        header = bytes([0x81, 0x80 | n])
    else:
        header = bytes([0x81, 0x80 | 126]) + n.to_bytes(2, 'big')
    return header + mask + body


class CountingClient:
    """A Socket.IO websocket client that only counts occurrences of one event in the stream.

    ``stamped``: also records, for each stamped ``lat`` broadcast, the seconds
    from its emit to its arrival here.
    """

    def __init__(self, port: int, event: str, stamped: bool = False) -> None:
        self.pattern = f'42["{event}",'.encode()
        self.count = 0
        self.stamped = stamped
        self.latencies: list[float] = []
        self.sock = socket.create_connection(('127.0.0.1', port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f'GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n'
                           f'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n'
                           'Sec-WebSocket-Version: 13\r\n\r\n').encode())
        buf = b''
        while b'\r\n\r\n' not in buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError('handshake failed')
            buf += chunk
        self._tail = buf.split(b'\r\n\r\n', 1)[1]
        self.sock.sendall(masked_text_frame('40'))
        self.connected = gevent.event.Event()
        self.reader = gevent.spawn(self._read)

    def _read(self) -> None:
        pattern, keep = self.pattern, len(self.pattern) - 1
        # ``tail`` is shorter than the pattern, so it never holds a whole match:
        # a match found in tail + chunk is new, even one split across reads
        data, tail = self._tail, b''
        while True:
            combined = tail + data
            if not self.connected.is_set() and b'40{"sid"' in combined:
                self.connected.set()
            self.count += combined.count(pattern)
            if self.stamped:
                # a latency client gets only one paced broadcast at a time: none is split across reads
                now = time.monotonic()
                self.latencies += [now - float(m) for m in STAMPED.findall(data)]
            tail = combined[-keep:]
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return

    def send(self, text: str) -> None:
        self.sock.sendall(masked_text_frame(text))

    def close(self) -> None:
        self.reader.kill()
        self.sock.close()


def cpu_seconds(pid: int) -> float:
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def start_worker(impl: str, backend: str, channel: str, batch_size: int) -> tuple[subprocess.Popen, int]:
    command = [sys.executable, SERVER, '--backend', backend, '--url', URLS[backend], '--channel', channel,
               '--impl', 'socketio' if impl == 'socketio' else 'greensio']
    if impl == 'greensio-batch':
        command += ['--batch-size', str(batch_size)]
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith('PORT '):
            return proc, int(line.split()[1])
        if not line and proc.poll() is not None:
            break
    raise RuntimeError(f'{impl} worker did not start')


def wait_counts(clients: list[CountingClient], target: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(c.count >= target for c in clients):
            return True
        gevent.sleep(0.002)
    return False


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(impl: str, backend: str, args: argparse.Namespace) -> dict[str, float]:
    clients_per_worker, count, timeout = args.clients, args.count, args.timeout
    channel = f'greensio-bench-{uuid.uuid4().hex[:8]}'
    workers = [start_worker(impl, backend, channel, args.batch_size) for _ in range(2)]
    clients: list[CountingClient] = []
    try:
        for _proc, port in workers:
            clients += [CountingClient(port, 'seq') for _ in range(clients_per_worker)]
        for c in clients:
            if not c.connected.wait(10):
                raise RuntimeError('client did not connect')
        control = clients[0]  # on worker A
        # warm up: both workers subscribed, connections and code paths hot
        warm = [CountingClient(workers[1][1], 'warm')]
        warm[0].connected.wait(10)
        for _ in range(100):
            control.send('42["blast",{"event":"warm","count":1}]')
            if wait_counts(warm, 1, 0.2):
                break
        else:
            raise RuntimeError('worker B never received a broadcast from worker A')
        warm[0].close()
        control.send('42["blast",{"event":"seq","count":200}]')
        if not wait_counts(clients, 200, timeout):
            raise RuntimeError('warm-up broadcasts were lost')
        base = {c: c.count for c in clients}
        cpu0 = [cpu_seconds(p.pid) for p, _ in workers]
        started = time.perf_counter()
        control.send(f'42["blast",{{"event":"seq","count":{count}}}]')
        complete = wait_counts(clients, 200 + count, timeout)
        elapsed = time.perf_counter() - started
        cpu1 = [cpu_seconds(p.pid) for p, _ in workers]
        delivered = sum(c.count - base[c] for c in clients)
        per_worker = clients_per_worker * count
        lost = len(clients) * count - delivered
        # latency, apart from the throughput phase: paced broadcasts to one more client of B
        probe = CountingClient(workers[1][1], 'lat', stamped=True)
        clients.append(probe)
        probe.connected.wait(10)
        n = args.latency_count
        control.send(f'42["blast",{{"event":"lat","count":{n},"stamp":true,"interval":{args.latency_interval}}}]')
        wait_counts([probe], n, timeout + n * args.latency_interval)
        latencies = probe.latencies or [float('nan')]
        return {
            'complete': float(complete),
            'seconds': elapsed,
            'published_per_s': count / elapsed,
            'delivered_per_s': delivered / elapsed,
            'lost': float(lost),
            'cpu_a_us': (cpu1[0] - cpu0[0]) * 1e6 / per_worker,
            'cpu_b_us': (cpu1[1] - cpu0[1]) * 1e6 / per_worker,
            'latency_p50_ms': percentile(latencies, 0.5) * 1e3,
            'latency_p99_ms': percentile(latencies, 0.99) * 1e3,
            'latency_lost': float(n - len(probe.latencies)),
        }
    finally:
        for c in clients:
            c.close()
        for proc, _ in workers:
            proc.stdin.close()
        for proc, _ in workers:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        try:
            cleanup(backend, channel)
        except Exception as exc:  # noqa: BLE001 - cleanup is best effort
            print(f'(could not delete {backend} channel {channel}: {exc})', file=sys.stderr)


def cleanup(backend: str, channel: str) -> None:
    if backend == 'kombu':
        import kombu

        with kombu.Connection(URLS[backend], connect_timeout=3) as conn:
            kombu.Exchange(channel)(conn.channel()).delete()
            kombu.Exchange(f'greensio.{channel}')(conn.channel()).delete()
    elif backend == 'redis-streams':
        import redis
        from greensio._redis_streams import stream_key

        redis.Redis.from_url(URLS[backend]).delete(stream_key(channel))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--count', type=int, default=2000, help='broadcasts per measurement')
    parser.add_argument('--clients', type=int, default=20, help='clients per worker')
    parser.add_argument('--timeout', type=float, default=60)
    parser.add_argument('--impls', default='greensio-batch,greensio,socketio')
    parser.add_argument('--backend', default='kombu', help='kombu, redis, redis-streams (comma-separated)')
    parser.add_argument('--batch-size', type=int, default=256, help='greensio-batch: messages per broker message')
    parser.add_argument('--latency-count', type=int, default=300, help='stamped broadcasts for the latency')
    parser.add_argument('--latency-interval', type=float, default=0.002, help='seconds between them')
    args = parser.parse_args()
    for backend in args.backend.split(','):
        impls = [i for i in args.impls.split(',') if not (backend == 'redis-streams' and i == 'socketio')]
        report(backend, impls, args)


def report(backend: str, impls: list[str], args: argparse.Namespace) -> None:
    results: dict[str, list[dict[str, float]]] = {impl: [] for impl in impls}
    for run in range(args.runs):
        order = impls if run % 2 == 0 else impls[::-1]
        for impl in order:
            r = measure(impl, backend, args)
            results[impl].append(r)
            print(f'{backend} run {run + 1} {impl:14s} {r["seconds"]:6.2f} s  {r["published_per_s"]:8.0f} '
                  f'broadcasts/s  {r["delivered_per_s"]:9.0f} deliveries/s  cpu/delivery A {r["cpu_a_us"]:5.1f} µs '
                  f'B {r["cpu_b_us"]:5.1f} µs  lost {int(r["lost"])}  latency p50 {r["latency_p50_ms"]:.2f} ms '
                  f'p99 {r["latency_p99_ms"]:.2f} ms', flush=True)
    print(f'\n{backend}: {args.count} broadcasts from worker A to {args.clients} clients on each of 2 workers '
          f'(medians of {args.runs} runs, [min-max])')
    keys = [('published_per_s', 'broadcasts published/s', True), ('delivered_per_s', 'messages delivered/s', True),
            ('cpu_a_us', 'worker A CPU µs per delivery', False), ('cpu_b_us', 'worker B CPU µs per delivery', False),
            ('latency_p50_ms', 'emit -> client of B p50, ms', False),
            ('latency_p99_ms', 'emit -> client of B p99, ms', False),
            ('lost', 'messages lost (total)', False), ('latency_lost', 'stamped messages lost', False)]
    ratio = len(impls) >= 2
    print(f'{"":30s}' + ''.join(f'{impl:>27s}' for impl in impls)
          + (f'   {impls[0]} vs {impls[-1]}' if ratio else ''))
    for key, label, higher_better in keys:
        runs = [[r[key] for r in results[impl]] for impl in impls]
        values = [statistics.median(v) for v in runs]
        cells = ''.join(f'{f"{m:.1f} [{min(v):.0f}-{max(v):.0f}]" if m >= 100 else f"{m:.2f} [{min(v):.2f}-{max(v):.2f}]":>27s}'
                        for m, v in zip(values, runs))
        line = f'{label:30s}' + cells
        if ratio and 'lost' not in key and min(values[0], values[-1]) > 0:
            line += f'   {values[0] / values[-1] if higher_better else values[-1] / values[0]:6.2f}x'
        print(line)
    print()


if __name__ == '__main__':
    main()
