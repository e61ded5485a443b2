"""What the green ``Server`` and the asyncio ``AsyncServer`` of ``greensio.engineio`` share.

Shell ring: python-engineio's options and their checks, the handler
registry, and the answers to the core's two questions that run user code
(a callable ``cors_allowed_origins``, callable cookie attributes).  Each
twin adds its runtime: requests, timers, tasks or greenlets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .._core.eio_http import ServerConfig
from .._core.eio_server import Reason, generate_sid
from .._core.handlers import accepts

default_logger = logging.getLogger('greensio.engineio')


class BaseServer:
    """Options, handlers and ids of an Engine.IO server (not used directly)."""

    compression_methods = ['gzip', 'deflate']  # noqa: RUF012 - python-engineio's class attributes
    event_names = ['connect', 'disconnect', 'message']  # noqa: RUF012
    valid_transports = ['polling', 'websocket']  # noqa: RUF012
    reason = Reason

    def __init__(self, ping_interval: float | tuple[float, float] = 25, ping_timeout: float = 20,
                 max_http_buffer_size: int = 1000000, allow_upgrades: bool = True, http_compression: bool = True,
                 compression_threshold: int = 1024, cookie: Any = None, cors_allowed_origins: Any = None,
                 cors_credentials: bool = True, logger: Any = False, json: Any = None, async_handlers: bool = True,
                 transports: Any = None) -> None:
        if isinstance(ping_interval, tuple):
            self.ping_interval, self.ping_interval_grace_period = ping_interval
        else:
            self.ping_interval, self.ping_interval_grace_period = ping_interval, 0
        self.ping_timeout = ping_timeout
        self.max_http_buffer_size = max_http_buffer_size
        self.allow_upgrades = allow_upgrades
        self.http_compression = http_compression
        self.compression_threshold = compression_threshold
        self.cookie = cookie
        self.cors_allowed_origins = cors_allowed_origins
        self.cors_credentials = cors_credentials
        self.async_handlers = async_handlers
        #: the JSON module ``send`` encodes other data than str and bytes with (None: greensio's)
        self.json = json
        self.handlers: dict[str, Callable] = {}
        self._reason_arg = True  # the disconnect handler takes the reason
        if not isinstance(logger, bool):
            self.logger = logger
        else:
            self.logger = default_logger
            if self.logger.level == logging.NOTSET:
                self.logger.setLevel(logging.INFO if logger else logging.ERROR)
                self.logger.addHandler(logging.StreamHandler())
        if transports is not None:
            if isinstance(transports, str):
                transports = [transports]
            transports = [t for t in transports if t in self.valid_transports]
            if not transports:
                raise ValueError('No valid transports provided')
        self.transports = transports or list(self.valid_transports)

    def _config(self) -> ServerConfig:
        """The core's options."""
        return ServerConfig(
            ping_interval=self.ping_interval, ping_interval_grace_period=self.ping_interval_grace_period,
            ping_timeout=self.ping_timeout, max_payload=self.max_http_buffer_size, transports=tuple(self.transports),
            allow_upgrades=self.allow_upgrades, cors_allowed_origins=self.cors_allowed_origins,
            cors_credentials=self.cors_credentials, cookie=self.cookie)

    def on(self, event: str, handler: Callable | None = None) -> Any:
        """Register a handler for ``'connect'`` ``(sid, environ)``, ``'message'`` ``(sid, data)``
        or ``'disconnect'`` ``(sid[, reason])``; a decorator when ``handler`` is omitted.

        A connect handler returning ``False`` (or raising) refuses the client.
        """
        if event not in self.event_names:
            raise ValueError('Invalid event')

        def set_handler(handler: Callable) -> Callable:
            self.handlers[event] = handler
            if event == 'disconnect':
                self._reason_arg = accepts(handler, 2)
            return handler

        if handler is None:
            return set_handler
        set_handler(handler)
        return None

    #: Prepended to every session id this process issues.  greensio's gunicorn
    #: worker sets it to the worker's tag, which names the worker that owns a
    #: session to the others (see ``greensio.forwarding``).
    sid_prefix = ''

    def generate_id(self) -> str:
        """A fresh session id."""
        return self.sid_prefix + generate_sid()

    def _origin_verdict(self, origin: str | None, environ: Any) -> bool | None:
        """A callable ``cors_allowed_origins``'s answer for a request with an Origin (else None).

        python-engineio calls it with ``(origin, environ)``, or ``(origin)``
        when it takes one argument; ``environ`` may be a callable building it.
        """
        check = self.cors_allowed_origins
        if origin is None or not callable(check):
            return None
        if accepts(check, 2):
            return bool(check(origin, environ() if callable(environ) else environ))
        return bool(check(origin))

    @staticmethod
    def _cookie(attributes: dict[str, Any] | None) -> dict[str, Any] | None:
        """The sid cookie's attributes with python-engineio's callable values called."""
        if attributes is None or not any(callable(v) for v in attributes.values()):
            return attributes
        return {name: value() if callable(value) else value for name, value in attributes.items()}
