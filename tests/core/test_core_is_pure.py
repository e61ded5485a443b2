"""greensio._core is sans-IO (the protocol core under the runtime shells): it imports no I/O
framework, so the green and asyncio shells can share it.  Checked twice: by
importing every core module in a fresh interpreter, and by reading the sources
(which also catches imports hidden inside functions)."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest

import greensio

#: I/O frameworks the core must never load, directly or through a dependency.
FRAMEWORKS = {'gevent', 'geventwebsocket', 'asyncio', 'engineio', 'socketio', 'kombu', 'redis', 'flask',
              'eventlet', 'aiohttp', 'requests', 'websocket'}
#: The core's own sources must not touch sockets or threads either (the optional
#: ``websockets.speedups`` accelerator's package loads ``socket`` itself, which
#: is why these are checked on the sources only).
FORBIDDEN = FRAMEWORKS | {'socket', 'ssl', 'select', 'selectors', 'threading', 'subprocess'}
CORE = pathlib.Path(greensio.__file__).parent / '_core'
CORE_MODULES = sorted(f'greensio._core.{p.stem}' for p in CORE.glob('*.py') if p.stem != '__init__')


def test_core_modules_exist() -> None:
    assert {'greensio._core.packet', 'greensio._core.rooms', 'greensio._core.session',
            'greensio._core.handlers', 'greensio._core.websocket', 'greensio._core.eio_codec',
            'greensio._core.eio_http', 'greensio._core.eio_server', 'greensio._core.eio_client'} <= set(CORE_MODULES)


@pytest.mark.timeout(60)
def test_importing_the_core_loads_no_io_framework() -> None:
    # greensio/__init__ imports the shells; load the core package by path so
    # only the core itself is measured
    code = (
        'import importlib.util, sys, types\n'
        f'pkg = types.ModuleType("greensio"); pkg.__path__ = [{str(CORE.parent)!r}]\n'
        'sys.modules["greensio"] = pkg\n'
        f'for name in {CORE_MODULES!r}: __import__(name)\n'
        f'print(sorted(m for m in sys.modules if m.split(".")[0] in {sorted(FRAMEWORKS)!r}))\n'
    )
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == '[]', out.stdout


def _imported_roots(source: str) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split('.')[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split('.')[0])
        elif isinstance(node, ast.Call) and getattr(node.func, 'id', getattr(node.func, 'attr', '')) in (
            '__import__', 'import_module'
        ):
            roots.add('<dynamic import>')
    return roots


@pytest.mark.parametrize('path', sorted(CORE.glob('*.py')), ids=lambda p: p.name)
def test_core_sources_import_no_io_framework(path: pathlib.Path) -> None:
    assert not _imported_roots(path.read_text()) & (FORBIDDEN | {'<dynamic import>'})


def test_the_source_check_sees_imports_inside_functions() -> None:
    sample = 'import os\nfrom . import packet\ndef f():\n    from gevent import sleep\n    import asyncio.tasks\n'
    assert _imported_roots(sample) == {'os', 'gevent', 'asyncio'}
    assert _imported_roots('importlib.import_module("redis")') == {'<dynamic import>'}
