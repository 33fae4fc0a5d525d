"""The options of ``run``, ``train``, ``evaluate`` and ``export``, declared once.

:data:`RUN_OPTIONS` is the one table: the command line's options are made from it
(``kerasapps.cli``), so are :class:`RunOptions` (what the command line said) and the
defaults of the resolved run (``kerasapps.training.runner.resolve_config``). Nothing here imports
TensorFlow.

Example::

    RunOptions(task="classification", epochs=1, overrides={"dropout": "0.1"})
    [o.name for o in RUN_OPTIONS if o.kind == "run"]   # the keys saved beside the params in config.json
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import click


@dataclasses.dataclass(frozen=True)
class RunOption:
    """One option of a task run.

    ``kind``: "run" (a run setting saved in config.json, ``default`` when not given),
    "param" (a task config field with an option of its own), or "input" (where settings come
    from: ``--set``, ``--recipe``, ``--config``). ``default`` may be a function of (task class, task name).
    ``click`` holds the extra arguments of ``click.option`` (type, multiple, metavar ...).
    """

    name: str
    flags: tuple[str, ...]
    help: str = ""
    kind: str = "run"
    default: Any = None
    click: dict = dataclasses.field(default_factory=dict)

    def resolve_default(self, task_class, task: str):
        return self.default(task_class, task) if callable(self.default) else self.default


POSITIVE = click.IntRange(min=1)

RUN_OPTIONS = (
    RunOption("dataset", ("--dataset",), "shapes (built in), tfds:NAME[/CONFIG] or folder:PATH.",
              default=lambda task_class, task: task_class.default_dataset),
    RunOption("data_dir", ("--data-dir",), "Where TFDS datasets are downloaded and read."),
    RunOption("epochs", ("--epochs",), kind="param", click={"type": POSITIVE}),
    RunOption("steps_per_epoch", ("--steps-per-epoch",), kind="param", click={"type": POSITIVE}),
    RunOption("batch_size", ("--batch-size",), "Global batch size.", kind="param", click={"type": POSITIVE}),
    RunOption("strategy", ("--strategy",), default="auto",
              click={"type": click.Choice(["auto", "default", "one-device", "mirrored", "multi-worker", "tpu"])}),
    RunOption("tpu", ("--tpu",), "TPU name or 'local' (with --strategy tpu)."),
    RunOption("precision", ("--precision",), default="auto",
              click={"type": click.Choice(["auto", "float32", "mixed_float16", "mixed_bfloat16"])}),
    RunOption("jit_compile", ("--jit-compile/--no-jit-compile",), "XLA (default: on GPU/TPU, off on CPU).",
              click={"default": None}),
    RunOption("seed", ("--seed",), default=0, click={"type": int}),
    RunOption("overrides", ("--set",), "Override a task config field (repeatable).", kind="input",
              click={"multiple": True, "metavar": "KEY=VALUE"}),
    RunOption("recipe", ("--recipe",), "A named config file the task's plugin ships (`kerasapps info TASK` "
              "lists them), read before --config.", kind="input", click={"metavar": "NAME"}),
    RunOption("config_file", ("--config",), "YAML or JSON config file.", kind="input",
              click={"type": click.Path(dir_okay=False)}),
    RunOption("workdir", ("--workdir",), "Checkpoints, logs and metrics.json (default runs/TASK).",
              default=lambda task_class, task: f"runs/{task}"),
    RunOption("export_dir", ("--export-dir",), "SavedModel root (default saved_models).", default="saved_models"),
)

# Run options that are not task hyperparameters (saved beside them in config.json).
RUN_KEYS = tuple(o.name for o in RUN_OPTIONS if o.kind == "run")
# Task config fields that also have their own command-line option.
COMMON_CONFIG_OPTIONS = tuple(o.name for o in RUN_OPTIONS if o.kind == "param")


def click_options(func: Callable) -> Callable:
    """Decorate a click command with every option of :data:`RUN_OPTIONS`, in the table's order."""
    for option in reversed(RUN_OPTIONS):
        func = click.option(*option.flags, option.name, help=option.help or None, **option.click)(func)
    return func


def check_option_value(option: RunOption, value):
    """``value`` of ``option`` checked and converted as the command line converts its text (for
    settings given from Python). A bad value is a UsageError with the command line's message:
    ``Invalid value for '--strategy': 'bogus' is not one of 'auto', ...``.

    Returns the converted value.
    """
    from kerasapps.errors import UsageError

    if option.name == "jit_compile":  # an on/off flag: True, False or None (the default: on GPU/TPU)
        if value is None or isinstance(value, bool):
            return value
        raise UsageError(f"Invalid value for '--jit-compile': expected True, False or None, not {value!r}")
    kind = option.click.get("type")
    if kind is None:  # a text option: a name, a spec, a path
        if isinstance(value, bool) or not isinstance(value, (str, int, float)) and not hasattr(value, "__fspath__"):
            raise UsageError(f"Invalid value for '{option.flags[0]}': expected text, not {value!r}")
        return str(value.__fspath__() if hasattr(value, "__fspath__") else value)
    if isinstance(value, bool) and not isinstance(kind, click.Choice):
        raise UsageError(f"Invalid value for '{option.flags[0]}': {value!r} is not a number")
    try:
        return click.types.convert_type(kind).convert(value, None, None)
    except click.BadParameter as exc:
        raise UsageError(f"Invalid value for '{option.flags[0]}': {exc.message}") from None


def _run_options_class():
    fields = [("task", str)]
    fields += [(o.name, Any, dataclasses.field(default=None)) for o in RUN_OPTIONS if o.name != "overrides"]
    fields += [
        ("overrides", dict, dataclasses.field(default_factory=dict)),
        ("fresh", bool, dataclasses.field(default=False)),
        ("progress_bar", Any, dataclasses.field(default=None)),
        # evaluate/export: start from the config the workdir was trained with (when no --config).
        ("use_workdir_config", bool, dataclasses.field(default=False)),
    ]
    cls = dataclasses.make_dataclass("RunOptions", fields)
    cls.__module__ = __name__
    cls.__doc__ = ("What the command line said (None: not given): one field per RUN_OPTIONS entry, plus task, "
                   "fresh, progress_bar and use_workdir_config.")
    return cls


RunOptions = _run_options_class()

__all__ = ["COMMON_CONFIG_OPTIONS", "RUN_KEYS", "RUN_OPTIONS", "RunOption", "RunOptions", "check_option_value",
           "click_options"]
