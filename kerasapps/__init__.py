"""kerasapps: deep-learning applications as Keras 3 task plugins.

The core knows no task. Tasks arrive through the ``kerasapps`` entry-point
group and are run by one engine under any ``tf.distribute`` strategy.

Importing this package is cheap: TensorFlow is imported only when a task runs.

Plugin authors import from :mod:`kerasapps.api`, the supported surface.

Example::

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

__all__ = ["DatasetSpec", "TaskSpec", "UsageError", "__version__", "hookimpl"]
