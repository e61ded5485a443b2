"""Errors that say whose fault it is: the peer's or this process's.

A ``RemoteProtocolError`` means the peer broke the protocol: the shell closes
only that connection.  A ``LocalProtocolError`` means this process misused the
API.  Both subclass ``ValueError`` because python-socketio raises
``ValueError`` for malformed packets and code in the wild catches that.
"""


class ProtocolError(ValueError):
    """Base of the Socket.IO/Engine.IO protocol errors."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow."""


class LocalProtocolError(ProtocolError):
    """This process asked for something the protocol does not allow."""
