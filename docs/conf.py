"""Sphinx configuration for the greensio documentation (``tox -e docs`` builds it with -W)."""

import os
import sys

sys.path.insert(0, os.path.abspath('..'))

project = 'greensio'
author = 'the greensio authors'
copyright = 'the greensio authors'

import greensio

release = greensio.__version__
version = '.'.join(release.split('.')[:2])

extensions = [
    'sphinx.ext.autodoc',
    'sphinx.ext.intersphinx',
    'sphinx.ext.viewcode',
]
# no network at build time: intersphinx only resolves what is cached locally
intersphinx_mapping: dict = {}

autodoc_member_order = 'bysource'
autodoc_default_options = {'members': True, 'show-inheritance': False}
autodoc_typehints = 'description'
autodoc_typehints_format = 'short'
# annotations name classes of optional dependencies; do not chase them
nitpicky = False

templates_path: list = []
exclude_patterns = ['_build']
html_theme = 'alabaster'
html_static_path = ['_static']
html_theme_options = {
    'description': 'A gevent-first Socket.IO server and client',
    'fixed_sidebar': True,
}


def _skip_foreign_classes(app, what, name, obj, skip, options):
    """Leave out classes borrowed from python-engineio (``Server.reason`` is
    engineio's): the server and the client share them, and Sphinx would
    describe the same object twice."""
    if isinstance(obj, type) and (getattr(obj, '__module__', '') or '').startswith('engineio'):
        return True
    return None


def setup(app):
    app.connect('autodoc-skip-member', _skip_foreign_classes)
