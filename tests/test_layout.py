"""The package layout shows the rings, and imports point inwards only.

Read statically from the source (every ``import``, also those inside
functions), so a lazy import that would break a rule is caught before any
process runs it:

- the core (``_core/``) imports nothing outside itself (``tests/core``
  checks the third-party side);
- ``common/``, the runtime-neutral half of the servers and clients, imports
  neither runtime's shell;
- the green shell never imports the asyncio one, nor asyncio itself;
- everything asyncio (``aio/``, the ``async_*`` managers and the asyncio
  Engine.IO shell) never reaches gevent or a green module, through any chain
  of greensio's own imports;
- no shell, manager or core module imports an integration (Flask, gunicorn,
  the WSGI/ASGI apps, the gevent server, metrics, health, the CLI).
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / 'greensio'

#: The top-level modules that are integrations: only they may know a web
#: framework, a process manager or an HTTP server.
INTEGRATIONS = {'greensio.flask', 'greensio.flask_testing', 'greensio.serving', 'greensio.gunicorn',
                'greensio.tornado', 'greensio.asgi', 'greensio.middleware', 'greensio.testing', 'greensio.metrics',
                'greensio.health', 'greensio.__main__', 'greensio._reload', 'greensio.forwarding'}
GEVENT = ('gevent', 'geventwebsocket')


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix('').parts)
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def imports_of(path: pathlib.Path) -> set[str]:
    """Every module ``path`` imports, absolute names (``from . import x`` gives ``pkg.x``)."""
    name = module_name(path)
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if not node.level:
                found.add(node.module or '')
                continue
            base = package.split('.')[:len(package.split('.')) - node.level + 1]
            target = '.'.join(base + ([node.module] if node.module else []))
            if node.module is None:
                found.update(f'{target}.{alias.name}' for alias in node.names)
            else:
                found.add(target)
    return found


MODULES = {module_name(path): imports_of(path) for path in PACKAGE.rglob('*.py')}


def own(name: str) -> str | None:
    """The greensio module ``name`` refers to (a module, or the module holding an imported name)."""
    while name and name not in MODULES:
        name = name.rpartition('.')[0]
    return name or None


def is_asyncio(name: str) -> bool:
    leaf = name.rpartition('.')[2]
    return (name.startswith(('greensio.aio.', 'greensio.engineio.async_drivers')) or name == 'greensio.engineio.asgi'
            or (name.startswith(('greensio.managers.', 'greensio.engineio.')) and leaf.startswith('async_')))


def is_green(name: str) -> bool:
    return name.startswith('greensio.green.') or name in {
        'greensio.engineio.server', 'greensio.engineio.client', 'greensio.engineio.websocket',
        'greensio.managers.pubsub_manager', 'greensio.managers.kombu_manager', 'greensio.managers.redis_manager'}


def closure(name: str) -> set[str]:
    """``name`` and every greensio module it reaches through imports, lazy ones included."""
    seen, todo = set(), [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo.extend(m for m in map(own, MODULES[current]) if m and m.startswith('greensio.') and m != 'greensio')
    return seen


def third_party(names: set[str]) -> set[str]:
    return {imported.partition('.')[0] for module in names for imported in MODULES[module]}


def test_the_rings_are_folders() -> None:
    folders = {path.name for path in PACKAGE.iterdir() if path.is_dir() and path.name != '__pycache__'}
    assert {'_core', 'common', 'green', 'aio', 'managers', 'engineio'} <= folders
    assert all(is_asyncio(m) or is_green(m) or m.startswith('greensio.managers.') for m in MODULES
               if m.startswith(('greensio.green.', 'greensio.aio.')))


def test_core_imports_only_core() -> None:
    for module, imported in MODULES.items():
        if module.startswith('greensio._core'):
            outside = {own(n) for n in imported if n.startswith('greensio')} - {None}
            assert all(m.startswith('greensio._core') for m in outside), (module, outside)


def test_common_imports_no_runtime_shell() -> None:
    for module in MODULES:
        if module.startswith('greensio.common.'):
            reached = closure(module)
            assert not {m for m in reached if is_green(m) or is_asyncio(m)}, module
            assert not third_party(reached) & {*GEVENT, 'asyncio'}, module


@pytest.mark.parametrize('module', sorted(m for m in MODULES if is_green(m)))
def test_green_never_imports_asyncio(module: str) -> None:
    reached = closure(module)
    assert not {m for m in reached if is_asyncio(m)}
    assert 'asyncio' not in third_party(reached)


@pytest.mark.parametrize('module', sorted(m for m in MODULES if is_asyncio(m)))
def test_asyncio_never_reaches_gevent(module: str) -> None:
    reached = closure(module)
    assert not {m for m in reached if is_green(m)}
    assert not third_party(reached) & set(GEVENT)


def test_only_integrations_import_integrations() -> None:
    for module, imported in MODULES.items():
        if module not in INTEGRATIONS and module != 'greensio':
            assert not {own(n) for n in imported} & INTEGRATIONS, module
