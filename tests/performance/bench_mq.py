"""Cross-worker broadcast throughput: greensio vs python-socketio on RabbitMQ, same run.

    . .venv/bin/activate
    python tests/performance/bench_mq.py                 # 3 runs, ~1 min
    python tests/performance/bench_mq.py --runs 5 --count 5000 --clients 50

Each run, for each implementation (the order alternates): two worker
processes (``tests/mq/mq_server.py``, gevent, ``KombuManager`` on a fresh
channel) and ``--clients`` websocket clients on each.  One client asks
worker A to emit ``--count`` numbered broadcasts to everyone; the clock stops
when every client on both workers has counted all of them.  Printed per
implementation (medians over runs): broadcasts published per second,
messages delivered to clients per second, and the CPU time of each worker
per delivered message (A publishes and delivers to its own clients,
B receives through RabbitMQ and delivers).

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
AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672//'
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
    """A Socket.IO websocket client that only counts occurrences of one event in the stream."""

    def __init__(self, port: int, event: str) -> None:
        self.pattern = f'42["{event}",'.encode()
        self.count = 0
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


def start_worker(impl: str, channel: str) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, SERVER, '--backend', 'kombu', '--url', AMQP_URL, '--channel', channel,
                             '--impl', impl], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
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


def measure(impl: str, clients_per_worker: int, count: int, timeout: float) -> dict[str, float]:
    channel = f'greensio-bench-{uuid.uuid4().hex[:8]}'
    workers = [start_worker(impl, channel) for _ in range(2)]
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
        return {
            'complete': float(complete),
            'seconds': elapsed,
            'published_per_s': count / elapsed,
            'delivered_per_s': delivered / elapsed,
            'lost': float(len(clients) * count - delivered),
            'cpu_a_us': (cpu1[0] - cpu0[0]) * 1e6 / per_worker,
            'cpu_b_us': (cpu1[1] - cpu0[1]) * 1e6 / per_worker,
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
            import kombu

            with kombu.Connection(AMQP_URL, connect_timeout=3) as conn:
                kombu.Exchange(channel)(conn.channel()).delete()
        except Exception as exc:  # noqa: BLE001 - cleanup is best effort
            print(f'(could not delete exchange {channel}: {exc})', file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--count', type=int, default=2000, help='broadcasts per measurement')
    parser.add_argument('--clients', type=int, default=20, help='clients per worker')
    parser.add_argument('--timeout', type=float, default=60)
    parser.add_argument('--impls', default='greensio,socketio')
    args = parser.parse_args()
    impls = args.impls.split(',')
    results: dict[str, list[dict[str, float]]] = {impl: [] for impl in impls}
    for run in range(args.runs):
        order = impls if run % 2 == 0 else impls[::-1]
        for impl in order:
            r = measure(impl, args.clients, args.count, args.timeout)
            results[impl].append(r)
            print(f'run {run + 1} {impl:9s} {r["seconds"]:6.2f} s  {r["published_per_s"]:8.0f} broadcasts/s  '
                  f'{r["delivered_per_s"]:9.0f} deliveries/s  cpu/delivery A {r["cpu_a_us"]:5.1f} µs '
                  f'B {r["cpu_b_us"]:5.1f} µs  lost {int(r["lost"])}', flush=True)
    print(f'\n{args.count} broadcasts from worker A to {args.clients} clients on each of 2 workers '
          f'(medians of {args.runs} runs)')
    keys = [('published_per_s', 'broadcasts published/s', True), ('delivered_per_s', 'messages delivered/s', True),
            ('cpu_a_us', 'worker A CPU µs per delivery', False), ('cpu_b_us', 'worker B CPU µs per delivery', False),
            ('lost', 'messages lost (total)', False)]
    print(f'{"":32s}' + ''.join(f'{impl:>14s}' for impl in impls) + ('      ratio' if len(impls) == 2 else ''))
    for key, label, higher_better in keys:
        values = [statistics.median(r[key] for r in results[impl]) for impl in impls]
        line = f'{label:32s}' + ''.join(f'{v:14.1f}' for v in values)
        if len(impls) == 2 and key != 'lost' and min(values) > 0:
            ratio = values[0] / values[1] if higher_better else values[1] / values[0]
            line += f'   {ratio:6.2f}x'
        print(line)


if __name__ == '__main__':
    main()
