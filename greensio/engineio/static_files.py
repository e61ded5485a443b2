"""Static file rules of ``WSGIApp`` and ``ASGIApp`` (python-engineio's ``static_files`` option).

Integration ring, shared by the green and the asyncio apps: a URL path and
the rules give a local file name and a content type, or None.
"""

from __future__ import annotations

from typing import Any

#: Content types by file extension; anything else is served as
#: ``application/octet-stream`` unless its rule gives a ``content_type``.
CONTENT_TYPES = {
    'css': 'text/css',
    'gif': 'image/gif',
    'html': 'text/html',
    'jpg': 'image/jpeg',
    'js': 'application/javascript',
    'json': 'application/json',
    'png': 'image/png',
    'txt': 'text/plain',
}


def get_static_file(path: str, static_files: dict[str, Any]) -> dict[str, str] | None:
    """``{'filename': ..., 'content_type': ...}`` for a request path, or None when no rule matches.

    A rule maps a URL path to a file, or a URL prefix to a directory (a
    request for the directory itself gets its ``index.html``, or the file
    the ``''`` rule names).  A path climbing out with ``../`` matches nothing.
    """
    extra_path = ''
    rule = static_files.get(path)
    if rule is None:
        while path != '':
            path, last = path.rsplit('/', 1)
            extra_path = '/' + last + extra_path
            rule = static_files.get(path) or static_files.get(path + '/')
            if rule is not None:
                break
    if '../' in extra_path or not rule:
        return None
    found = {'filename': rule} if isinstance(rule, str) else dict(rule)
    if found['filename'].endswith('/') and extra_path.startswith('/'):
        extra_path = extra_path[1:]
    found['filename'] += extra_path
    if found['filename'].endswith('/'):
        index = static_files.get('')
        if index is None:
            found['filename'] += 'index.html'
        elif isinstance(index, str):
            found['filename'] += index
        else:
            found['filename'] += index['filename']
            if 'content_type' in index:
                found['content_type'] = index['content_type']
    if 'content_type' not in found:
        found['content_type'] = CONTENT_TYPES.get(found['filename'].rsplit('.')[-1], 'application/octet-stream')
    return found
