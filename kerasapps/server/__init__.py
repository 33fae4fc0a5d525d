"""``kerasapps serve``: TensorFlow Serving's REST API for exported SavedModels, on Starlette + uvicorn.

This package imports TensorFlow and the web stack only (never Keras or a task plugin), so it
serves any SavedModel a kerasapps task exported, in a process as light as TF Serving's.

Example::

    from kerasapps.server import ServerSettings, run_server
    run_server(ServerSettings(root="saved_models"), host="127.0.0.1", port=8501)
"""

from __future__ import annotations

import os

from kerasapps.server.app import ServerSettings, create_app


def run_server(settings: ServerSettings, host: str = "127.0.0.1", port: int = 8501, ready_message=print) -> None:
    """Serve until interrupted; ``ready_message`` gets one line once the models are loaded."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import uvicorn

    app = create_app(settings)

    class _Server(uvicorn.Server):
        async def startup(self, sockets=None):
            await super().startup(sockets)
            repository = app.state.repository
            bound = self.servers[0].sockets[0].getsockname()[1] if self.servers else port
            models = ", ".join(f"{n}/{v.number} ({v.state.lower()})" for (n, _), v in sorted(repository.versions.items()))
            ready_message(f"serving {models or 'no models yet'} from {settings.root} at http://{host}:{bound}/")

    _Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")).run()


__all__ = ["ServerSettings", "create_app", "run_server"]
