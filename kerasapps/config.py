"""Typed task configs: dataclass defaults, ``--set KEY=VALUE`` and config files.

A task's config is a dataclass subclassing :class:`TaskConfig`; its defaults
are the task's recommended hyperparameters and each field's ``help`` metadata
is shown by ``kerasapps info``. Nothing here imports TensorFlow.

Example::

    @dataclasses.dataclass
    class MyConfig(TaskConfig):
        units: int = field(64, "hidden units")

    cfg = apply_overrides(MyConfig(), {"units": "128", "epochs": "3"})
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import pathlib
import types
import typing

from kerasapps.errors import UsageError


def field(default, help: str = "", *, minimum=None, maximum=None, above=None, below=None, choices=None, **kwargs):
    """A dataclass field with a help text (shown by ``kerasapps info``) and the values it allows.

    Returns a ``dataclasses.field`` whose metadata holds the help text and the bounds.

    ``minimum``/``maximum`` bound a number (or each item of a tuple) inclusively, ``above``/``below``
    exclusively; ``choices`` lists the allowed values. :func:`apply_overrides` checks them whenever
    a config is resolved, so a wrong value is one message before any data or model is built::

        image_size: int = field(64, "input side in pixels", minimum=16, maximum=4096)
        dropout: float = field(0.2, "dropout rate", minimum=0, below=1)
    """
    limits = {"minimum": minimum, "maximum": maximum, "above": above, "below": below, "choices": choices}
    metadata = {"help": help, **{k: v for k, v in limits.items() if v is not None}}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata, **kwargs)
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


@dataclasses.dataclass
class TaskConfig:
    """Hyperparameters every task has; tasks subclass it and change the defaults."""

    epochs: int = field(10, "training epochs", minimum=1)
    batch_size: int = field(64, "global batch size (split across replicas)", minimum=1)
    steps_per_epoch: typing.Optional[int] = field(None, "steps per epoch; default: one pass over the training split",
                                                  minimum=1)
    learning_rate: float = field(1e-3, "optimizer learning rate", above=0)
    early_stopping_patience: typing.Optional[int] = field(
        None, "stop after this many epochs without improvement of the monitored metric", minimum=0
    )
    restore_best_weights: bool = field(
        True, "evaluate and export the weights of the epoch with the best validation score (the task's "
        "monitored metric); false: the last epoch's, so validation only watches the run")
    steps_per_execution: int = field(1, "training steps run per call into the graph", minimum=1)
    allow_links_outside_folder: bool = field(
        False, "folder: read files through symbolic links that lead outside the dataset folder")

    def xla_problem(self) -> str | None:
        """Why this config's training step cannot be compiled with XLA, or None (the default) if
        it can. A reason turns XLA off for the run where it would be the default (GPU), and makes
        ``--jit-compile`` and TPUs, which compile every step, a clear error quoting it.

        Example::

            def xla_problem(self):
                if self.reward == "host":
                    return "reward=host scores samples in Python (tf.numpy_function), which XLA cannot compile"
                return None
        """
        return None

    def estimated_memory_bytes(self) -> int:
        """A rough upper estimate of the memory the requested sizes need (0: nothing to estimate).

        The default counts the generated or loaded examples as uint8 images with a target of the
        same size (``train_examples``, ``eval_examples`` and ``image_size`` fields, where the task
        has them) and a float32 batch with room for its activations. Tasks whose memory grows
        differently override it.
        """
        size = getattr(self, "image_size", None) or 64
        sides = list(size) * 2 if isinstance(size, (tuple, list)) else [size, size]
        pixels = int(sides[0]) * int(sides[-1])
        examples = int(getattr(self, "train_examples", 0) or 0) + 2 * int(getattr(self, "eval_examples", 0) or 0)
        if not hasattr(self, "image_size"):
            return 0
        activations = 64  # float32 feature maps per input pixel, forward and backward, a generous bound
        return examples * pixels * 3 * 2 + int(self.batch_size) * pixels * 3 * 4 * activations


def _type_name(tp, choices=None) -> str:
    """``tp`` as ``info`` shows it; a field's ``choices`` show as a ``Literal``'s values do."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if choices is not None:
            return " | ".join(map(repr, choices)) + " | None"
        return " | ".join(_type_name(a) for a in args) + " | None"
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        items = (_type_name(a, choices) for a in typing.get_args(tp) if a is not Ellipsis)
        return f"{origin.__name__}[{', '.join(items)}]"
    if choices is not None:
        return " | ".join(map(repr, choices))
    return getattr(tp, "__name__", str(tp))


def _coerce(tp, value, key: str):
    """Convert ``value`` (a string from the command line, or a JSON/YAML value) to ``tp``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            if type(None) in args:
                return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, key)
            except UsageError as exc:
                errors.append(str(exc))
        raise UsageError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        if value in choices:
            return value
        raise UsageError(f"{key}: expected one of {', '.join(map(str, choices))}; got {value!r}")
    if origin in (list, tuple):
        (item_type, *_rest) = typing.get_args(tp) or (str,)
        items = value
        if isinstance(value, str):
            items = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(items, (list, tuple)):
            raise UsageError(f"{key}: expected a comma-separated list, got {value!r}")
        return origin(_coerce(item_type, v, key) for v in items)
    if tp is bool:
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise UsageError(f"{key}: expected true or false, got {value!r}")
    if tp in (int, float):
        if isinstance(value, bool):
            raise UsageError(f"{key}: expected {tp.__name__}, got {value!r}")
        try:
            number = tp(value)
        except (TypeError, ValueError):
            raise UsageError(f"{key}: expected {tp.__name__}, got {value!r}") from None
        if tp is int and isinstance(value, float) and value != number:
            raise UsageError(f"{key}: expected int, got {value!r}")
        return number
    if tp is str:
        if not isinstance(value, (str, int, float)):
            raise UsageError(f"{key}: expected a string, got {value!r}")
        return str(value)
    return value


def config_fields(config_class) -> dict[str, dataclasses.Field]:
    hints = typing.get_type_hints(config_class)
    fields = {}
    for f in dataclasses.fields(config_class):
        f.type = hints[f.name]
        fields[f.name] = f
    return fields


def apply_overrides(config, overrides: dict):
    """Return a copy of ``config`` with ``overrides`` applied, each value typed by its field.

    Raises UsageError for an unknown key (with the closest valid one) or an ill-typed value.
    """
    fields = config_fields(type(config))
    changes = {}
    for key, value in overrides.items():
        name = str(key).replace("-", "_")
        if name not in fields:
            close = difflib.get_close_matches(name, fields, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UsageError(
                f"unknown config key {key!r}{hint} (valid keys: {', '.join(sorted(fields))})"
            )
        changes[name] = _coerce(fields[name].type, value, name)
    new = dataclasses.replace(config, **changes)
    check_limits(new)
    validate = getattr(new, "validate", None)
    if validate is not None:
        validate()
    return new


def _limit_problem(value, meta) -> str | None:
    """What is wrong with one value under a field's declared limits (None: nothing)."""
    if "choices" in meta and value not in meta["choices"]:
        return f"expected one of {', '.join(map(str, meta['choices']))}"
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    if value != value:
        return "expected a number, not NaN"
    bounds = [(meta.get("minimum"), ">=", lambda lo: value >= lo), (meta.get("above"), ">", lambda lo: value > lo),
              (meta.get("maximum"), "<=", lambda hi: value <= hi), (meta.get("below"), "<", lambda hi: value < hi)]
    failed = [f"{sign} {bound}" for bound, sign, ok in bounds if bound is not None and not ok(bound)]
    if not failed:
        return None
    allowed = " and ".join(f"{sign} {bound}" for bound, sign, _ in bounds if bound is not None)
    return f"expected a value {allowed}"


def _declared_limits(config_class, name: str) -> dict:
    """A field's limits, inherited: a task that redeclares ``epochs`` with its own default
    keeps the base class's ``minimum`` unless it declares its own."""
    limits = {}
    for klass in reversed(config_class.__mro__):
        own = klass.__dict__.get("__dataclass_fields__", {}).get(name)
        if own is not None:
            limits.update({k: v for k, v in own.metadata.items() if k != "help"})
    return limits


def check_limits(config) -> None:
    """Check every field of ``config`` against its declared ``minimum``/``maximum``/``above``/
    ``below``/``choices`` (each item of a tuple too); UsageError naming the field, the value
    and what is allowed."""
    for name, f in config_fields(type(config)).items():
        value = getattr(config, name)
        items = value if isinstance(value, (tuple, list)) else [value]
        limits = _declared_limits(type(config), name)
        for item in items:
            if item is None:
                continue
            problem = _limit_problem(item, limits)
            if problem:
                raise UsageError(f"{name}: {problem}; got {value!r}")


def memory_available_bytes() -> int | None:
    """Memory the system can give this process now (MemAvailable), None where it cannot tell."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(config, available: int | None = None) -> None:
    """UsageError if the sizes ``config`` asks for cannot fit in memory (checked before any data
    is generated or allocated)."""
    needed = config.estimated_memory_bytes() if hasattr(config, "estimated_memory_bytes") else 0
    available = memory_available_bytes() if available is None else available
    if not needed or available is None or needed <= available:
        return
    sizes = ", ".join(f"{k}={getattr(config, k)}" for k in ("image_size", "train_examples", "eval_examples",
                                                            "batch_size") if hasattr(config, k))
    raise UsageError(
        f"the requested sizes ({sizes}) need about {needed / 2**30:.1f} GiB of memory, more than the "
        f"{available / 2**30:.1f} GiB available; lower them with --set KEY=VALUE"
    )


@dataclasses.dataclass
class RunSettings:
    """The run options beside the task's hyperparameters (``kerasapps run --help``), typed and
    checked like a task config, whether they come from the command line or a config file."""

    dataset: str = field("shapes", "--dataset")
    data_dir: typing.Optional[str] = field(None, "--data-dir")
    strategy: typing.Literal["auto", "default", "one-device", "mirrored", "multi-worker", "tpu"] = field(
        "auto", "--strategy")
    tpu: typing.Optional[str] = field(None, "--tpu")
    precision: typing.Literal["auto", "float32", "mixed_float16", "mixed_bfloat16"] = field("auto", "--precision")
    jit_compile: typing.Optional[bool] = field(None, "--jit-compile")
    seed: int = field(0, "--seed", minimum=0, maximum=2**32 - 1)
    workdir: str = field("runs", "--workdir")
    export_dir: str = field("saved_models", "--export-dir")


def check_run_settings(run: dict) -> dict:
    """``run`` (run option -> value) with every value typed and checked (see :class:`RunSettings`)."""
    for key, value in run.items():
        if key in ("dataset", "workdir", "export_dir", "data_dir", "tpu") and value is not None:
            if not isinstance(value, str):
                raise UsageError(f"{key}: expected a string (a {'dataset spec' if key == 'dataset' else 'name or path'})"
                                 f", got {value!r}")
            if not value.strip():
                raise UsageError(f"{key}: must not be empty")
    return dataclasses.asdict(apply_overrides(RunSettings(), run))


def parse_set_options(pairs) -> dict:
    """Turn ``("a=1", "b=x")`` into ``{"a": "1", "b": "x"}``."""
    out = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set expects KEY=VALUE, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def load_config_file(path) -> dict:
    """Read a YAML or JSON config file into a dict (``kerasapps run --config FILE``)."""
    path = pathlib.Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"config file {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if "\x00" in text:
        raise UsageError(f"config file {path} holds binary data (NUL bytes), not YAML or JSON text")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"config file {path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {first}") from None
    if not isinstance(data, dict):
        raise UsageError(f"config file {path} must hold a mapping of keys to values")
    return data


def describe_fields(config_class) -> list[dict]:
    """Field name, type, default and help, for ``kerasapps info``."""
    rows = []
    for name, f in config_fields(config_class).items():
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        choices = _declared_limits(config_class, name).get("choices")
        rows.append({"name": name, "type": _type_name(f.type, choices), "default": default,
                     "help": f.metadata.get("help", "")})
    return rows
