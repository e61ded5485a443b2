"""The Sphinx site builds with warnings as errors (what ``tox -e docs`` runs)."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

sphinx = pytest.importorskip('sphinx', reason='sphinx is not installed (pip install -e .[dev])')


@pytest.mark.timeout(120)
def test_docs_build_without_warnings(tmp_path):
    out = tmp_path / 'html'
    run = subprocess.run([sys.executable, '-m', 'sphinx', '-W', '--keep-going', '-q', '-b', 'html',
                          os.path.join(ROOT, 'docs'), str(out)], capture_output=True, text=True, timeout=110,
                         check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    api = (out / 'api.html').read_text()
    for name in ('greensio.Server.emit', 'greensio.flask.SocketIO', 'greensio.gunicorn.GeventWebSocketWorker',
                 'greensio.flask_testing.SocketIOTestClient'):
        assert f'id="{name}"' in api, name
