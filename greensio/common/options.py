"""Options every shell reads the same way: python-socketio's ``logger=`` and ``serializer=``.

Shell ring helpers, shared by the servers and the clients of both runtimes
(and ``greensio.engineio``), so that a client imports neither a server
module nor gevent to read its options.
"""

from __future__ import annotations

import logging
from typing import Any

from .._core import packet as pk


def setup_logger(logger: Any, default: logging.Logger) -> logging.Logger:
    """python-socketio's ``logger=`` convention: bool or a logger object."""
    if not isinstance(logger, bool):
        return logger
    if default.level == logging.NOTSET:
        default.setLevel(logging.INFO if logger else logging.ERROR)
        default.addHandler(logging.StreamHandler())
    return default


def packet_class(serializer: Any) -> type[pk.Packet]:
    """The Socket.IO packet class for ``serializer=``."""
    if serializer == 'default':
        return pk.Packet
    if serializer == 'msgpack':
        from ..msgpack_packet import MsgPackPacket

        return MsgPackPacket
    if isinstance(serializer, type) and issubclass(serializer, pk.Packet):
        return serializer
    raise ValueError(f"serializer must be 'default', 'msgpack' or a Packet subclass, not {serializer!r}")
