"""TCP_NODELAY for `mlflow server --workers N` (N > 1): imported by every Python process that
has this directory on PYTHONPATH (the mlflow image, and the servers tests and benchmarks start).

With more than one worker, uvicorn binds the listening socket itself and leaves its protocol
at 0; asyncio only turns TCP_NODELAY on for accepted sockets whose protocol is TCP, so Nagle's
algorithm stays on and every request after the first on a kept-alive connection (how MLflow's
client talks) waits about 40 ms for the peer's delayed ACK. Uvicorn issue #3149, open as of
uvicorn 0.54 (pull requests #3154/#3155 pass IPPROTO_TCP instead). Linux copies TCP_NODELAY from
a listening socket to the connections it accepts, so setting it on the socket uvicorn binds is
enough. Nothing else changes; without uvicorn this does nothing. Remove it once uvicorn sets
the protocol itself.
"""

import socket

try:
    from uvicorn.config import Config
except ImportError:  # not the server's environment
    Config = None

if Config is not None:
    _bind_socket = Config.bind_socket

    def bind_socket(self):
        sock = _bind_socket(self)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    Config.bind_socket = bind_socket
