"""The whole plugin contract of kerasapps, one hook per function.

A plugin is a module (or object) with functions marked ``@hookimpl`` (from
:mod:`kerasapps.api`, the plugin authors' import surface) whose names match the hooks
below; a marked function whose name matches no hook (a typo) makes the plugin broken. It is found through the ``kerasapps``
entry-point group::

    # pyproject.toml of the plugin distribution
    [project.entry-points.kerasapps]
    my-task = "my_task_plugin"

The plugin module must stay cheap to import: it describes its tasks with
:class:`kerasapps.api.TaskSpec`, whose ``factory`` names the module holding the
model code, imported only when the task runs. ``kerasapps list`` never
imports TensorFlow.

Every hook may be left out. Results of all plugins are collected (none of
these hooks is ``firstresult``).
"""

import pluggy

hookspec = pluggy.HookspecMarker("kerasapps")


@hookspec
def kerasapps_register_tasks():
    """Return the tasks this plugin provides.

    Called once, when the registry is built (``kerasapps list``, ``run`` ...).

    :return: a list of :class:`kerasapps.api.TaskSpec`. Two plugins returning the
        same task name is an error that names both distributions.
    """


@hookspec
def kerasapps_register_datasets():
    """Return named datasets this plugin provides (such as the built-in ``shapes``).

    A task receives ``--dataset NAME`` as a :class:`kerasapps.api.DatasetSource`
    whose ``kind`` is ``"registered"`` (its ``load_registered`` method reads it);
    ``source.load()`` imports the factory.

    :return: a list of :class:`kerasapps.api.DatasetSpec`.
    """


@hookspec
def kerasapps_training_callbacks(task, config, workdir):
    """Return extra ``keras.callbacks.Callback`` objects for a training run.

    Called after the model is built, inside the strategy scope, for every task.

    :param task: the :class:`kerasapps.api.Task` instance being trained.
    :param config: the resolved run configuration (a dict, as saved in the workdir).
    :param workdir: the run's working directory (a ``pathlib.Path``).
    :return: a list of callbacks (may be empty).
    """
