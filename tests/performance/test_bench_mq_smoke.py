"""Smoke test for bench_mq.py: both implementations produce figures and lose nothing.

One tiny run; asserts nothing about speed.
"""

import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from mq.helpers import rabbitmq_up
from mq.multiworker import nginx_executable


@pytest.mark.benchmark
@pytest.mark.timeout(120)
@pytest.mark.skipif(not rabbitmq_up(), reason='RabbitMQ is not running on 127.0.0.1:5672')
def test_bench_mq_runs_both_implementations():
    out = subprocess.run([sys.executable, os.path.join(HERE, 'bench_mq.py'), '--runs', '1', '--count', '200',
                          '--clients', '2'], capture_output=True, text=True, timeout=110, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    table = out.stdout.split('medians of 1 runs, [min-max])')[1]
    assert 'greensio-batch' in table and 'socketio' in table
    lost = next(line for line in table.splitlines() if line.startswith('messages lost'))
    assert lost.split()[3:] == ['0.00', '[0.00-0.00]'] * 3, out.stdout


@pytest.mark.benchmark
@pytest.mark.timeout(150)
@pytest.mark.skipif(not rabbitmq_up(), reason='RabbitMQ is not running on 127.0.0.1:5672')
def test_bench_cluster_runs_small():
    """bench_cluster.py: broadcast acks and fetch_sockets, every ack and socket counted."""
    out = subprocess.run([sys.executable, os.path.join(HERE, 'bench_cluster.py'), '--ack-clients', '40',
                          '--fetch-clients', '30', '--runs', '1'], capture_output=True, text=True, timeout=140,
                         check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'broadcast with acks to 40 clients on 2 workers' in out.stdout
    assert 'fetch_sockets of 30 clients on 3 workers' in out.stdout


@pytest.mark.benchmark
@pytest.mark.timeout(120)
@pytest.mark.skipif(not rabbitmq_up(), reason='RabbitMQ is not running on 127.0.0.1:5672')
@pytest.mark.skipif(nginx_executable() is None, reason='nginx is not installed (apt-get install -y nginx)')
def test_bench_nosticky_runs_small():
    """bench_nosticky.py: a figure for every setup, on both transports."""
    setups = ['sticky', 'forwarded', 'machines']
    out = subprocess.run([sys.executable, os.path.join(HERE, 'bench_nosticky.py'), '--clients', '8', '--duration', '1',
                          '--warmup', '0.5', '--runs', '1', '--setups', ','.join(setups)],
                         capture_output=True, text=True, timeout=110, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [line.split() for line in out.stdout.split('workers used')[1].splitlines() if line.strip()]
    assert {(row[0], row[1]) for row in rows} == {(s, t) for s in setups for t in ('polling', 'upgrade')}, out.stdout
    # behind nginx ip_hash every worker has clients; the kernel may give a few clients to fewer workers
    assert all(row[2].isdigit() and int(row[2]) > 0 and (row[-1] == '4' if row[0] == 'sticky' else int(row[-1]) >= 1)
               for row in rows), out.stdout + out.stderr
