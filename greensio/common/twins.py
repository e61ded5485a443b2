"""One docstring for each pair of twins, so the sync and asyncio APIs read the same.

Shell ring helper.  The green and asyncio classes document their public
methods once, on a shared base class; ``inherit_docstrings`` hands each
undocumented method of a subclass the docstring of the same name higher up,
so ``help(greensio.AsyncServer.emit)`` and ``help(greensio.Server.emit)``
read the same text and cannot drift.  ``drive`` and ``drive_async`` run a
flow written once (a generator of steps) for the green and the asyncio twin.
"""

from __future__ import annotations

import inspect
from collections.abc import Generator
from typing import Any

_COROUTINE_NOTE = 'This method is a coroutine.'


def inherit_docstrings(cls: type) -> None:
    """Give every undocumented method of ``cls`` its base class's docstring."""
    for name, attr in vars(cls).items():
        fn = attr.__func__ if isinstance(attr, (staticmethod, classmethod)) else attr
        if not inspect.isfunction(fn) or fn.__doc__:
            continue
        for base in cls.__mro__[1:]:
            doc = getattr(getattr(base, name, None), '__doc__', None)
            if doc:
                if inspect.iscoroutinefunction(fn) and _COROUTINE_NOTE not in doc:
                    doc = doc.rstrip() + '\n\n' + ' ' * _indent(doc) + _COROUTINE_NOTE
                fn.__doc__ = doc
                break


def _indent(doc: str) -> int:
    """The indentation of a docstring's body (0 for a one-line docstring)."""
    for line in doc.splitlines()[1:]:
        if line.strip():
            return len(line) - len(line.lstrip())
    return 0


class SharedDocs:
    """Mixin: subclasses inherit the docstrings of the methods they override."""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        inherit_docstrings(cls)


# -- flows: one generator, two drivers (httpx's ``Auth.auth_flow`` pattern) --------------------
#
# A flow yields steps ``(callable, *args)``; the driver calls each one and
# sends its result back in (or throws its exception in, ``BaseException``
# included, so that a flow's ``finally`` and ``except BaseException`` see
# Ctrl-C and cancellation).  ``drive`` is the green driver; ``drive_async``
# also awaits a step's result when it is awaitable.  The flow's return value
# is the driver's.


def drive(flow: Generator[tuple[Any, ...], Any, Any]) -> Any:
    """Run a flow with plain calls; return its value."""
    try:
        step = next(flow)
        while True:
            try:
                result = step[0](*step[1:])
            except BaseException as exc:  # noqa: BLE001 - the flow decides what it handles
                step = flow.throw(exc)
            else:
                step = flow.send(result)
    except StopIteration as stop:
        return stop.value


async def drive_async(flow: Generator[tuple[Any, ...], Any, Any]) -> Any:
    """Run a flow, awaiting each step's result when it is awaitable; return its value."""
    try:
        step = next(flow)
        while True:
            try:
                result = step[0](*step[1:])
                if inspect.isawaitable(result):
                    result = await result
            except BaseException as exc:  # noqa: BLE001 - the flow decides what it handles
                step = flow.throw(exc)
            else:
                step = flow.send(result)
    except StopIteration as stop:
        return stop.value
