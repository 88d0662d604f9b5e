"""docker/mlflow-site/sitecustomize.py: uvicorn's own listening socket gets TCP_NODELAY.

Run in a fresh interpreter, as the mlflow server's processes are: the module works by being
imported at start-up from PYTHONPATH, and it patches uvicorn for the whole process.
"""

import json
import os
import subprocess
import sys

from tests.support.mlflow_server import MLFLOW_SITE

# Binds like `uvicorn --workers 2` (Config.bind_socket), accepts one loopback connection and
# reports TCP_NODELAY on the listening and the accepted socket.
PROBE = """
import json, socket
from uvicorn.config import Config
listener = Config(app="x:y", host="127.0.0.1", port=0).bind_socket()
listener.listen(1)
client = socket.create_connection(listener.getsockname())
accepted, _ = listener.accept()
nodelay = lambda s: s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
print(json.dumps({"listener": nodelay(listener), "accepted": nodelay(accepted)}))
"""


def probe(pythonpath: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_uvicorn_workers_socket_gets_tcp_nodelay_with_the_site_on_pythonpath():
    assert probe(str(MLFLOW_SITE)) == {"listener": True, "accepted": True}


def test_without_it_uvicorn_leaves_nagle_on_so_the_module_is_still_needed():
    # uvicorn issue #3149. When this fails, uvicorn sets the protocol itself: drop the module.
    assert probe(None) == {"listener": False, "accepted": False}
