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
import pathlib
import types
import typing

from kerasapps.errors import UsageError


def field(default, help: str = "", **kwargs):
    """A dataclass field with a help text (shown by ``kerasapps info``)."""
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"help": help}, **kwargs)
    return dataclasses.field(default=default, metadata={"help": help}, **kwargs)


@dataclasses.dataclass
class TaskConfig:
    """Hyperparameters every task has; tasks subclass it and change the defaults."""

    epochs: int = field(10, "training epochs")
    batch_size: int = field(64, "global batch size (split across replicas)")
    steps_per_epoch: typing.Optional[int] = field(None, "steps per epoch; default: one pass over the training split")
    learning_rate: float = field(1e-3, "optimizer learning rate")
    early_stopping_patience: typing.Optional[int] = field(
        None, "stop after this many epochs without improvement of the monitored metric"
    )
    steps_per_execution: int = field(1, "training steps run per call into the graph")


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return " | ".join(_type_name(a) for a in args) + " | None"
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in typing.get_args(tp) if a is not Ellipsis)}]"
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
        name = key.replace("-", "_")
        if name not in fields:
            close = difflib.get_close_matches(name, fields, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UsageError(
                f"unknown config key {key!r}{hint} (valid keys: {', '.join(sorted(fields))})"
            )
        changes[name] = _coerce(fields[name].type, value, name)
    new = dataclasses.replace(config, **changes)
    validate = getattr(new, "validate", None)
    if validate is not None:
        validate()
    return new


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
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:
        raise UsageError(f"config file {path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"config file {path} must hold a mapping of keys to values")
    return data


def describe_fields(config_class) -> list[dict]:
    """Field name, type, default and help, for ``kerasapps info``."""
    rows = []
    for name, f in config_fields(config_class).items():
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        rows.append({"name": name, "type": _type_name(f.type), "default": default, "help": f.metadata.get("help", "")})
    return rows
