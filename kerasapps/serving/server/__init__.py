"""``kerasapps serve``: TensorFlow Serving's REST API for exported SavedModels, on Starlette + uvicorn.

This package imports TensorFlow and the web stack only, never Keras or a task plugin: an
export's ``serving_default`` holds everything it needs, and the server runs even where Keras
cannot be imported.

Example::

    from kerasapps.serving.server import ServerSettings, run_server
    run_server(ServerSettings(root="saved_models"), host="127.0.0.1", port=8501)
"""

from __future__ import annotations

import os
import socket

from kerasapps.errors import UsageError
from kerasapps.serving.server.app import ServerSettings, create_app


def _listening_socket(host: str, port: int) -> socket.socket:
    """Bind here rather than in uvicorn, so a taken port is one clear error, not a log line."""
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(info[0], socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(info[4])
        sock.listen(2048)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def run_server(settings: ServerSettings, host: str = "127.0.0.1", port: int = 8501, ready_message=print) -> None:
    """Serve until interrupted; ``ready_message`` gets one line once the models are loaded."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import uvicorn

    sock = _listening_socket(host, port)
    bound = sock.getsockname()[1]
    app = create_app(settings)

    class _Server(uvicorn.Server):
        async def startup(self, sockets=None):
            await super().startup(sockets)
            repository = app.state.repository
            models = ", ".join(f"{n}/{v.number} ({v.state.lower()})" for (n, _), v in sorted(repository.versions.items()))
            ready_message(f"serving {models or 'no models yet'} from {settings.root} at http://{host}:{bound}/")

    _Server(uvicorn.Config(app, log_level="warning", lifespan="on")).run(sockets=[sock])


__all__ = ["ServerSettings", "create_app", "run_server"]
