"""Plugin discovery: which tasks and datasets exist, and who provides them.

Nothing here imports TensorFlow. Plugins are loaded from the ``kerasapps``
entry-point group (the first-party tasks and the core's own ``shapes``
dataset included), unless switched off:

- ``-p no:NAME`` on the command line blocks the entry point ``NAME``;
- ``KERASAPPS_DISABLE_PLUGIN_AUTOLOAD=1`` loads no entry point at all except
  those named with ``-p NAME``.

Example::

    from kerasapps.registry import discover
    registry = discover()
    spec = registry.task("classification")
    task_class = spec.load()
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import importlib.util
import os
import warnings

import pluggy

from kerasapps import hookspecs
from kerasapps.errors import UsageError

ENTRY_POINT_GROUP = "kerasapps"
AUTOLOAD_ENV = "KERASAPPS_DISABLE_PLUGIN_AUTOLOAD"


def _import_object(path: str):
    module_name, _, attr = path.partition(":")
    obj = importlib.import_module(module_name)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


def _describe_fault(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r})"
    return f"{type(exc).__name__}: {exc}"


def _missing_module(factory: str) -> str | None:
    """The module of ``"package.module:object"`` when it cannot be found (without importing it)."""
    module_name = factory.partition(":")[0]
    try:
        found = importlib.util.find_spec(module_name)
    except (Exception, SystemExit):  # a parent package that is missing or fails at import
        found = None
    return None if found is not None else module_name


@dataclasses.dataclass(frozen=True)
class _LazySpec:
    name: str
    factory: str
    summary: str = ""

    def load(self):
        """Import and return the factory object (TensorFlow may load here, not before)."""
        try:
            return _import_object(self.factory)
        except (Exception, SystemExit) as exc:  # the plugin's fault, not a crash of kerasapps
            raise UsageError(f"{self.name!r} cannot be loaded from {self.factory}: {_describe_fault(exc)}") from None


class TaskSpec(_LazySpec):
    """A light description of a task; the model code loads only on demand.

    Args:
        name: the task's command-line name (``kerasapps run NAME``).
        factory: ``"package.module:TaskClass"``, imported when the task runs.
        summary: one line for ``kerasapps list``.

    Example::

        TaskSpec("classification", "kerasapps_classification.task:ClassificationTask",
                 "image classification (LeNet-5, ResNet-20)")
    """


class DatasetSpec(_LazySpec):
    """A named dataset that tasks can read with ``--dataset NAME``.

    ``factory`` is ``"package.module:object"``; what the object is (a module of
    generator functions, a builder class) is agreed between the dataset and the
    tasks that read it.
    """


@dataclasses.dataclass(frozen=True)
class PluginInfo:
    """Where a plugin comes from, as ``kerasapps list`` shows it."""

    name: str  # entry-point name
    value: str  # module path
    distribution: str
    version: str
    error: str | None = None  # why it failed to load, if it did


@dataclasses.dataclass
class Registry:
    """Everything the loaded plugins registered."""

    plugins: list[PluginInfo]
    tasks: dict[str, tuple[TaskSpec, PluginInfo]]
    datasets: dict[str, tuple[DatasetSpec, PluginInfo]]
    plugin_manager: pluggy.PluginManager

    @property
    def broken(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.error]

    def task(self, name: str) -> TaskSpec:
        """Return the spec of task ``name`` or raise a UsageError listing the known ones."""
        if name in self.tasks:
            return self.tasks[name][0]
        known = ", ".join(sorted(self.tasks)) or "none (is any task plugin installed?)"
        hint = ""
        for info in self.broken:
            hint += f"\nplugin {info.name!r} ({info.distribution} {info.version}) failed to load: {info.error}"
        raise UsageError(f"unknown task {name!r}; known tasks: {known}{hint}")

    def dataset(self, name: str) -> DatasetSpec | None:
        entry = self.datasets.get(name)
        return entry[0] if entry else None


def _entry_points():
    seen = set()
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        # The same distribution can be visible twice (e.g. editable + site-packages path).
        if ep.name in seen:
            continue
        seen.add(ep.name)
        yield ep


def _dist_of(ep) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "unknown", "?"
    return dist.metadata["Name"], dist.version


def parse_plugin_options(options) -> tuple[set[str], list[str]]:
    """Split ``-p`` values into (blocked names, explicitly requested names)."""
    blocked, requested = set(), []
    for value in options or ():
        if value.startswith("no:"):
            blocked.add(value[3:])
        else:
            requested.append(value)
    return blocked, requested


def _broken(info: PluginInfo, error: str) -> PluginInfo:
    """``info`` marked broken (shown by ``kerasapps list``), with a warning on stderr."""
    error = f"{info.error}; {error}" if info.error else error
    warnings.warn(f"kerasapps plugin {info.name!r} from {info.distribution} {info.version} is broken: {error}",
                  stacklevel=3)
    return dataclasses.replace(info, error=error)


def discover(plugin_options=(), autoload: bool | None = None) -> Registry:
    """Load plugins and collect what they register.

    Args:
        plugin_options: ``-p`` values: ``no:NAME`` blocks an entry point, ``NAME``
            loads an entry point (or an importable module) even when autoloading
            is off.
        autoload: load every entry point of the group; default: on unless
            ``KERASAPPS_DISABLE_PLUGIN_AUTOLOAD`` is set to a non-empty value.
    """
    if autoload is None:
        autoload = not os.environ.get(AUTOLOAD_ENV)
    blocked, requested = parse_plugin_options(plugin_options)
    pm = pluggy.PluginManager("kerasapps")
    pm.add_hookspecs(hookspecs)
    plugins: list[PluginInfo] = []
    by_name = {ep.name: ep for ep in _entry_points()}

    def load(name, target, distribution, version):
        try:
            plugin = _import_object(target)
        except (Exception, SystemExit) as exc:  # a broken plugin must not take the others down
            plugins.append(_broken(PluginInfo(name, str(target), distribution, version), _describe_fault(exc)))
            return
        pm.register(plugin, name=name)
        plugins.append(PluginInfo(name, str(target), distribution, version))

    names = list(by_name) if autoload else []
    names += [n for n in requested if n not in names]
    for name in names:
        if name in blocked:
            continue
        ep = by_name.get(name)
        if ep is not None:
            load(name, ep.value, *_dist_of(ep))
        else:  # ``-p some.module`` loads a module that is not an entry point
            load(name, name, "(-p option)", "")

    info_by_plugin = {p.name: p for p in plugins if not p.error}

    def mark_broken(name, error):
        index = next(i for i, p in enumerate(plugins) if p.name == name)
        plugins[index] = _broken(plugins[index], error)

    tasks: dict[str, tuple[TaskSpec, PluginInfo]] = {}
    datasets: dict[str, tuple[DatasetSpec, PluginInfo]] = {}
    for kind, hook, table in (
        ("task", pm.hook.kerasapps_register_tasks, tasks),
        ("dataset", pm.hook.kerasapps_register_datasets, datasets),
    ):
        for impl in hook.get_hookimpls():
            info = info_by_plugin[impl.plugin_name]
            try:
                specs = list(impl.function() or ())
            except (Exception, SystemExit) as exc:  # a faulty hook: that plugin is broken, the others work
                specs = []
                mark_broken(info.name, f"its {hook.name} hook failed: {_describe_fault(exc)}")
            for spec in specs:
                if spec.name in table:
                    other = table[spec.name][1]
                    raise UsageError(
                        f"{kind} {spec.name!r} is registered twice: by plugin {other.name!r} "
                        f"({other.distribution} {other.version}) and by plugin {info.name!r} "
                        f"({info.distribution} {info.version}); uninstall one, or switch one off "
                        f"with `kerasapps -p no:{info.name} ...`"
                    )
                table[spec.name] = (spec, info)
    for name, (spec, info) in list(tasks.items()):
        missing = _missing_module(spec.factory)
        if missing:  # `kerasapps list` names it; `run` says the task is unknown and why
            del tasks[name]
            mark_broken(info.name, f"task {name!r} names module {missing!r}, which cannot be found")
    return Registry(plugins=plugins, tasks=tasks, datasets=datasets, plugin_manager=pm)
