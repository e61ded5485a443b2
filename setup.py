from setuptools import find_packages, setup

setup(
    name='greensio',
    version='0.1.0',
    description='A gevent-first Socket.IO server and client, drop-in for python-socketio',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['greensio', 'greensio.*']),
    package_data={'greensio': ['py.typed']},
    python_requires='>=3.10',
    install_requires=[
        'gevent>=23.9',
        'gevent-websocket>=0.10.1',
        'websockets>=12',  # its C extension unmasks client frames (34 GB/s here)
    ],
    extras_require={
        'client': ['requests>=2.21', 'websocket-client>=0.54'],
        'kombu': ['kombu>=5.3'],
        'redis': ['redis>=4.5'],
        'msgpack': ['msgpack>=1.0'],
        'flask': ['flask>=2.2'],
        'gunicorn': ['gunicorn>=22'],
        'metrics': ['prometheus-client>=0.17'],
        'asyncio': ['aiohttp>=3.9', 'uvicorn>=0.23', 'aio-pika>=9'],
        'admin': ['bcrypt>=4'],  # bcrypt password hashes in Server.instrument(auth=...)
        'sanic': ['sanic>=23'],  # AsyncServer.attach() to a sanic app
        'dev': [
            'pytest>=8', 'pytest-timeout>=2.2', 'python-socketio[client]>=5.14',
            'requests>=2.21', 'websocket-client>=0.54', 'kombu>=5.3',
            'redis>=4.5', 'msgpack>=1.0', 'flask>=2.2', 'ruff', 'mypy>=1.8', 'psutil', 'gunicorn>=22', 'sphinx>=7',
            'uvicorn>=0.23', 'aiohttp>=3.9', 'aio-pika>=9', 'prometheus-client>=0.17',
            'bcrypt>=4', 'tornado>=6.1',
            'matplotlib>=3.5',  # tests/performance/chart.py
        ],
    },
    classifiers=[
        'Programming Language :: Python :: 3',
        'Framework :: Flask',
    ],
)
