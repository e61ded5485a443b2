"""The chat's Socket.IO side: a class-based namespace in the shape of the seed's ``ChatNamespace``.

Handlers take the ``sid`` first (plain ``greensio.Namespace``); the username
lives in the client's Socket.IO session.  Everything a browser sends is
checked: this is the part of a real app that faces the internet.
"""

from __future__ import annotations

import os
import time
from typing import Any

import greensio as socketio

#: A chat line longer than this is cut: one client must not flood the others' screens.
MAX_MESSAGE_LENGTH = 500
#: Usernames and room names are labels, not payloads.
MAX_NAME_LENGTH = 32
#: Rooms offered on the page; clients may also name their own.
DEFAULT_ROOMS = ('lobby', 'general', 'random')


def _name(data: Any, key: str) -> str | None:
    """A cleaned-up short name from ``data[key]``, or None if there is none."""
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, str):
        return None
    value = ' '.join(value.split())[:MAX_NAME_LENGTH]
    return value or None


class ChatNamespace(socketio.Namespace):
    """Rooms, usernames and messages for the ``/chat`` namespace."""

    def on_connect(self, sid: str, environ: dict) -> None:
        self.enter_room(sid, 'lobby')
        self.emit('welcome', {'message': 'Welcome to the greensio chat!', 'rooms': list(DEFAULT_ROOMS),
                              'worker': os.getpid()}, room=sid)

    def on_disconnect(self, sid: str, reason: str) -> None:
        username = self.get_session(sid).get('username')
        if username:
            for room in self.rooms(sid):
                if room != sid:
                    self.emit('user_left', {'username': username, 'room': room}, room=room, skip_sid=sid)

    def on_set_username(self, sid: str, data: Any) -> dict:
        username = _name(data, 'username')
        if username is None:
            return {'success': False, 'error': 'pick a name'}
        with self.session(sid) as session:
            session['username'] = username
        self.emit('username_set', {'success': True, 'username': username}, room=sid)
        return {'success': True, 'username': username}

    def on_join_room(self, sid: str, data: Any) -> dict:
        room = _name(data, 'room')
        if room is None or room == sid:
            return {'success': False, 'error': 'bad room name'}
        username = self.get_session(sid).get('username', 'Anonymous')
        self.enter_room(sid, room)
        self.emit('status', {'message': f'Joined {room}', 'room': room}, room=sid)
        self.emit('user_joined', {'username': username, 'room': room}, room=room, skip_sid=sid)
        return {'success': True, 'room': room}

    def on_leave_room(self, sid: str, data: Any) -> dict:
        room = _name(data, 'room')
        if room is None or room not in self.rooms(sid) or room == sid:
            return {'success': False, 'error': 'not in that room'}
        self.leave_room(sid, room)
        username = self.get_session(sid).get('username', 'Anonymous')
        self.emit('user_left', {'username': username, 'room': room}, room=room)
        return {'success': True, 'room': room}

    def on_chat_message(self, sid: str, data: Any) -> dict:
        text = data.get('message') if isinstance(data, dict) else None
        if not isinstance(text, str) or not text.strip():
            return {'success': False, 'error': 'empty message'}
        room = _name(data, 'room') or 'lobby'
        if room not in self.rooms(sid):
            return {'success': False, 'error': f'join {room} first'}
        with self.session(sid) as session:
            username = session.get('username', 'Anonymous')
        self.emit('message', {'username': username, 'message': text[:MAX_MESSAGE_LENGTH], 'room': room,
                              'timestamp': time.time()}, room=room)
        return {'success': True}
