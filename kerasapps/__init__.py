"""kerasapps: deep-learning applications as Keras 3 task plugins.

The core knows no task. Tasks arrive through the ``kerasapps`` entry-point
group and are run by one engine under any ``tf.distribute`` strategy.

Importing this package is cheap: TensorFlow is imported only when a task runs.

Users run tasks from Python with :func:`run`, :func:`train`, :func:`evaluate`, :func:`export` and
:func:`load` (:mod:`kerasapps.runs`, what the command line itself calls); plugin authors import
from :mod:`kerasapps.api`, the supported surface for plugins.

Example::

    import kerasapps

    result = kerasapps.run("classification", epochs=2)        # result.metrics, result.model
    kerasapps.load(result.export_path).predict(["cat.png"])

    from kerasapps.api import TaskSpec, hookimpl

    @hookimpl
    def kerasapps_register_tasks():
        return [TaskSpec("my-task", "mypkg.task:MyTask", "what it does")]
"""

import pluggy

from kerasapps import _moved
from kerasapps.errors import UsageError
from kerasapps.registry import DatasetSpec, TaskSpec

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("kerasapps")

_moved.install()  # the flat layout's import paths (kerasapps.images, ...), deprecated

_PYTHON_API = {"run", "train", "evaluate", "export", "load", "RunResult"}


def __getattr__(name):
    # The Python API loads on first use: `import kerasapps` stays free of TensorFlow (`kerasapps list`).
    if name in _PYTHON_API:
        from kerasapps import runs

        return getattr(runs, name)
    raise AttributeError(f"module 'kerasapps' has no attribute {name!r}")


__all__ = ["DatasetSpec", "RunResult", "TaskSpec", "UsageError", "__version__", "evaluate", "export", "hookimpl",
           "load", "run", "train"]
