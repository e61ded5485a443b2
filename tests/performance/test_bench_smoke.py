"""Smoke test for the benchmark harness: every scenario produces figures for every impl.

Tiny durations and counts, one run: this proves bench.py, server_app.py, server_node.js,
loadgen.js and chart.py work together; it asserts nothing about speed.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BENCH = os.path.join(HERE, 'bench.py')
CHART = os.path.join(HERE, 'chart.py')
SMOKE_TIMEOUT_S = 150  # the run takes ~25 s; npm ci on a fresh checkout adds a few seconds
TINY = ['--quick', '--runs', '1', '--warmup', '0.2', '--duration', '0.5',
        '--rtt-clients', '5', '--poll-clients', '5', '--broadcast-clients', '20',
        '--broadcast-count', '10', '--broadcast-warmup-count', '2', '--idle-clients', '20']


@pytest.mark.benchmark
@pytest.mark.timeout(SMOKE_TIMEOUT_S + 30)
@pytest.mark.skipif(shutil.which('node') is None, reason='Node.js is needed for loadgen.js')
def test_bench_produces_figures_for_every_impl_and_a_chart(tmp_path):
    impls = 'greensio,socketio,node'
    out = tmp_path / 'bench.json'
    proc = subprocess.run(
        [sys.executable, BENCH, *TINY, '--impls', impls, '--json', str(out)],
        cwd=REPO, timeout=SMOKE_TIMEOUT_S, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]

    data = json.loads(out.read_text())
    assert data['errors'] == []
    labels = data['labels']
    assert labels == impls.split(',')
    main_metric = {'rtt': 'cpu_us_per_unit', 'broadcast': 'cpu_us_per_unit',
                   'burst': 'units_per_s', 'binary': 'mb_per_s', 'polling': 'units_per_s',
                   'polling-raw': 'units_per_s', 'idle': 'kib_per_conn'}
    for scenario, key in main_metric.items():
        for label in labels:
            runs = data['runs'][scenario][label]
            assert len(runs) == 1, (scenario, label)
            assert runs[0]['count'] > 0, (scenario, label)
            assert data['summary'][scenario][key][label] is not None, (scenario, label, key)
        assert set(data['summary'][scenario][key]['factors']) == {'socketio', 'node'}
    assert data['summary']['rtt']['cpu_us_per_unit']['verdict'] in ('PASS', 'FAIL')
    assert 'vs node' in proc.stdout

    png = tmp_path / 'chart.png'
    chart = subprocess.run([sys.executable, CHART, str(out), str(png)], cwd=REPO, timeout=60,
                           capture_output=True, text=True, check=False)
    assert chart.returncode == 0, chart.stderr
    assert png.read_bytes().startswith(b'\x89PNG')
    table = chart.stdout
    assert table.startswith('.. list-table::')
    assert 'greensio vs node' in table and 'connections set up / s' in table
